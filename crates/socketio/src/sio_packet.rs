//! Socket.IO v5 packets: those a client sends, decoded in place (no copy
//! of the data), and those the server sends, encoded straight into the
//! text of one Engine.IO message (`4` first).
//!
//! A packet is `<type>[<attachments>-][<namespace>,][<ack id>][<JSON>]`;
//! the namespace `/` is left out.

pub use crate::packet_error::PacketError;
use serde::Serialize;
use serde_json::Value;
use serde_json::value::RawValue;

/// One packet from the client.
#[derive(Debug)]
pub enum Packet<'a> {
    /// `0`: connect to `namespace`, with an optional auth object.
    Connect {
        /// The namespace, `/` when the packet names none.
        namespace: &'a str,
        /// The client's auth object, kept as raw JSON for the app's
        /// connect handler.
        auth: Option<&'a RawValue>,
    },
    /// `1`: leave `namespace`.
    Disconnect {
        /// The namespace left.
        namespace: &'a str,
    },
    /// `2`: an event, its name and arguments, with an ack id if the client
    /// waits for an answer.
    Event {
        /// The namespace the event is sent in.
        namespace: &'a str,
        /// The event's name, the first item of the array.
        name: String,
        /// The other items, as raw JSON: each handler reads its own type.
        args: Vec<&'a RawValue>,
        /// The id to answer with, when the client waits for an answer.
        ack: Option<u64>,
    },
    /// `3`: the answer to an event the server sent with an ack id.
    Ack {
        /// The namespace of the answered event.
        namespace: &'a str,
    },
    /// `5` or `6`: an event or ack with binary attachments, which follow as
    /// binary messages.
    Binary {
        /// The namespace of the packet.
        namespace: &'a str,
        /// The event's name (none for an ack).
        name: Option<String>,
        /// The ack id, when there is one.
        ack: Option<u64>,
    },
}

/// Decodes the text of one Engine.IO message.
pub fn decode(text: &str) -> Result<Packet<'_>, PacketError> {
    let bytes = text.as_bytes();
    let kind = *bytes.first().ok_or(PacketError("empty packet"))?;
    // A first character of several bytes is no packet type.
    let mut rest = text.get(1..).ok_or(PacketError("unknown packet type"))?;
    if matches!(kind, b'5' | b'6') {
        let dash = rest
            .find('-')
            .ok_or(PacketError("binary packet without attachment count"))?;
        if dash == 0 || !rest[..dash].bytes().all(|b| b.is_ascii_digit()) {
            return Err(PacketError("bad attachment count"));
        }
        rest = &rest[dash + 1..];
    }
    let namespace = if rest.starts_with('/') {
        let comma = rest.find(',').unwrap_or(rest.len());
        let namespace = &rest[..comma];
        rest = rest.get(comma + 1..).unwrap_or("");
        namespace
    } else {
        "/"
    };
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let ack = match digits {
        0 => None,
        _ => Some(
            rest[..digits]
                .parse::<u64>()
                .map_err(|_| PacketError("ack id too large"))?,
        ),
    };
    let data = &rest[digits..];
    match kind {
        b'0' => Ok(Packet::Connect {
            namespace,
            auth: match data {
                "" => None,
                data => Some(json(data)?),
            },
        }),
        b'1' => Ok(Packet::Disconnect { namespace }),
        b'2' => {
            let (name, args) = event(data)?;
            Ok(Packet::Event {
                namespace,
                name,
                args,
                ack,
            })
        }
        b'3' => Ok(Packet::Ack { namespace }),
        b'5' | b'6' => Ok(Packet::Binary {
            namespace,
            name: event(data).ok().map(|(name, _)| name),
            ack,
        }),
        // `4` (connect_error) is the server's alone.
        _ => Err(PacketError("unknown packet type")),
    }
}

fn json(data: &str) -> Result<&RawValue, PacketError> {
    serde_json::from_str(data).map_err(|_| PacketError("invalid JSON"))
}

/// An event's data: a JSON array whose first item is the event's name.
fn event(data: &str) -> Result<(String, Vec<&RawValue>), PacketError> {
    let mut items: Vec<&RawValue> =
        serde_json::from_str(data).map_err(|_| PacketError("event data must be a JSON array"))?;
    if items.is_empty() {
        return Err(PacketError("an event needs a name"));
    }
    let name: String = serde_json::from_str(items.remove(0).get())
        .map_err(|_| PacketError("an event's name must be a string"))?;
    Ok((name, items))
}

/// The server's packets, as the text of an Engine.IO message.
pub(crate) mod encode {
    use super::*;
    use std::io::Write;

    /// The reply to a successful connect to `/`: `40{"sid":…}`, with the
    /// `pid` a client hands back to recover the socket, when there is one.
    /// The ids are URL-safe base64: nothing to escape. `sid` first, as
    /// socket.io writes it.
    pub fn connected(sid: &str, pid: Option<&str>) -> Vec<u8> {
        match pid {
            Some(pid) => format!(r#"40{{"sid":"{sid}","pid":"{pid}"}}"#),
            None => format!(r#"40{{"sid":"{sid}"}}"#),
        }
        .into_bytes()
    }

    /// A refused connect: `44[<namespace>,]{"message":…[,"data":…]}`.
    pub fn connect_error(namespace: &str, message: &str, data: Option<&Value>) -> Vec<u8> {
        let mut out = b"44".to_vec();
        if namespace != "/" {
            out.extend_from_slice(namespace.as_bytes());
            out.push(b',');
        }
        let error = match data {
            Some(data) => serde_json::json!({ "message": message, "data": data }),
            None => serde_json::json!({ "message": message }),
        };
        // Serializing a JSON value into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut out, &error);
        out
    }

    /// The server disconnects the socket from `/`.
    pub fn disconnect() -> Vec<u8> {
        b"41".to_vec()
    }

    /// An event with one argument, `42["name",data]`, written into `out`
    /// (which may be a WebSocket frame writer).
    pub fn event<W: Write, T: Serialize + ?Sized>(
        out: &mut W,
        name: &str,
        data: &T,
    ) -> serde_json::Result<()> {
        out.write_all(b"42[").map_err(serde_json::Error::io)?;
        serde_json::to_writer(&mut *out, name)?;
        out.write_all(b",").map_err(serde_json::Error::io)?;
        serde_json::to_writer(&mut *out, data)?;
        out.write_all(b"]").map_err(serde_json::Error::io)
    }

    /// An event with one argument and an offset as the last one,
    /// `42["name",data,"offset"]`, written into `out`.
    pub fn event_with_offset<W: Write, T: Serialize + ?Sized>(
        out: &mut W,
        name: &str,
        data: &T,
        offset: &str,
    ) -> serde_json::Result<()> {
        out.write_all(b"42[").map_err(serde_json::Error::io)?;
        serde_json::to_writer(&mut *out, name)?;
        out.write_all(b",").map_err(serde_json::Error::io)?;
        serde_json::to_writer(&mut *out, data)?;
        out.write_all(b",").map_err(serde_json::Error::io)?;
        serde_json::to_writer(&mut *out, offset)?;
        out.write_all(b"]").map_err(serde_json::Error::io)
    }

    /// The answer to the client's event `id`, with one argument:
    /// `43<id>[data]`.
    pub fn ack<T: Serialize + ?Sized>(id: u64, data: &T) -> serde_json::Result<Vec<u8>> {
        let mut out = format!("43{id}[").into_bytes();
        serde_json::to_writer(&mut out, data)?;
        out.push(b']');
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_connects_with_and_without_auth() {
        match decode("0").unwrap() {
            Packet::Connect { namespace, auth } => {
                assert_eq!(namespace, "/");
                assert!(auth.is_none());
            }
            other => panic!("{other:?}"),
        }
        match decode(r#"0/admin,{"token":"x"}"#).unwrap() {
            Packet::Connect { namespace, auth } => {
                assert_eq!(namespace, "/admin");
                assert_eq!(auth.unwrap().get(), r#"{"token":"x"}"#);
            }
            other => panic!("{other:?}"),
        }
        assert!(decode("0{nope").is_err());
    }

    #[test]
    fn decodes_events_with_their_ack_ids() {
        match decode(r#"212["join",{"room":"a"},3]"#).unwrap() {
            Packet::Event {
                namespace,
                name,
                args,
                ack,
            } => {
                assert_eq!(namespace, "/");
                assert_eq!(name, "join");
                assert_eq!(args.len(), 2);
                assert_eq!(args[0].get(), r#"{"room":"a"}"#);
                assert_eq!(ack, Some(12));
            }
            other => panic!("{other:?}"),
        }
        match decode(r#"2/chat,["rooms"]"#).unwrap() {
            Packet::Event { namespace, ack, .. } => {
                assert_eq!(namespace, "/chat");
                assert_eq!(ack, None);
            }
            other => panic!("{other:?}"),
        }
        assert!(decode("2[]").is_err(), "no name");
        assert!(decode("2[1]").is_err(), "a name that is no string");
        assert!(decode("2{}").is_err(), "not an array");
        assert!(decode("299999999999999999999999[\"a\"]").is_err());
        assert!(decode("4{}").is_err(), "connect_error is the server's");
        assert!(decode("é[]").is_err(), "a type of several bytes");
    }

    #[test]
    fn decodes_binary_headers_without_their_attachments() {
        match decode(r#"51-7["upload",{"_placeholder":true,"num":0}]"#).unwrap() {
            Packet::Binary { name, ack, .. } => {
                assert_eq!(name.as_deref(), Some("upload"));
                assert_eq!(ack, Some(7));
            }
            other => panic!("{other:?}"),
        }
        assert!(decode("5[\"a\"]").is_err(), "no attachment count");
    }

    #[test]
    fn encodes_what_the_official_client_expects() {
        assert_eq!(encode::connected("x1", None), br#"40{"sid":"x1"}"#);
        assert_eq!(
            encode::connected("x1", Some("p1")),
            br#"40{"sid":"x1","pid":"p1"}"#
        );
        assert_eq!(
            encode::connect_error("/nope", "Invalid namespace", None),
            br#"44/nope,{"message":"Invalid namespace"}"#
        );
        let data = serde_json::json!({"code": "unauthorized"});
        assert_eq!(
            encode::connect_error("/", "no token", Some(&data)),
            br#"44{"data":{"code":"unauthorized"},"message":"no token"}"#
        );
        let mut out = Vec::new();
        encode::event(&mut out, "message", &serde_json::json!({"a":1})).unwrap();
        assert_eq!(out, br#"42["message",{"a":1}]"#);
        let mut out = Vec::new();
        encode::event_with_offset(&mut out, "m", &1, "a.7").unwrap();
        assert_eq!(out, br#"42["m",1,"a.7"]"#);
        assert_eq!(encode::ack(5, &true).unwrap(), b"435[true]");
    }
}
