//! Property tests over arbitrary input for the runtime's decoders: a
//! client may send anything, and bad input must end in an error (which
//! closes that client's session), never in a panic that would take
//! other sockets' task down with it. And what the server encodes, its own
//! decoder reads back as sent.
//!
//! `PROPTEST_CASES` sets the number of cases (256 by default).
// Test code: a failed unwrap is a failed test, with its message.
#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use socketio::sio_packet::{self, Packet};
use socketio::{Frame, eio_packet};

/// Text shaped like packets: type digits, namespaces, ack ids, JSON bits.
fn packet_like() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            Just("4".to_owned()),
            Just("2".to_owned()),
            Just("5".to_owned()),
            Just("1-".to_owned()),
            Just("/".to_owned()),
            Just(",".to_owned()),
            Just("[".to_owned()),
            Just("]".to_owned()),
            Just("{".to_owned()),
            Just("\"".to_owned()),
            Just("\x1e".to_owned()),
            "[0-9]{1,25}",
            ".{0,8}",
        ],
        0..24,
    )
    .prop_map(|pieces| pieces.concat())
}

proptest! {
    #[test]
    fn any_text_decodes_or_fails_without_panic(text in prop_oneof![packet_like(), ".*"]) {
        let _ = eio_packet::decode(&text);
        let _ = eio_packet::check_payload(&text);
        let _ = sio_packet::decode(&text);
        if let Some(rest) = text.strip_prefix('4') {
            let _ = sio_packet::decode(rest);
        }
    }

    #[test]
    fn an_event_the_server_encodes_decodes_back(name in ".{1,20}", text in ".{0,64}", number in any::<i64>()) {
        let data = serde_json::json!({"text": text, "n": number});
        let frame = Frame::event(&name, &data).unwrap();
        let packet = frame.packet();
        let packet = std::str::from_utf8(&packet).unwrap();
        let Ok(eio_packet::Incoming::Message(message)) = eio_packet::decode(packet) else {
            panic!("not a message: {packet}");
        };
        match sio_packet::decode(message).unwrap() {
            Packet::Event { namespace, name: decoded, args, ack } => {
                prop_assert_eq!(namespace, "/");
                prop_assert_eq!(decoded, name);
                prop_assert_eq!(ack, None);
                let back: serde_json::Value = serde_json::from_str(args[0].get()).unwrap();
                prop_assert_eq!(back, data);
            }
            other => panic!("not an event: {other:?}"),
        }
    }
}
