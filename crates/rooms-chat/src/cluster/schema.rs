//! The Redis side written down once: key names, the events channel and
//! the records on it.
//!
//! Every key of a room carries the room as a hash tag (`{room}`), so that
//! all of a room's state could live on one Redis Cluster node; scripts get
//! every key they touch through `KEYS`, except the few that follow another
//! record (an old holder's instance set, a room's members when listing
//! rooms or claiming a dead instance), built in Lua from the same prefix.
//!
//! Keys (prefix `rooms-chat:`): `{<room>}:seq` (last message id),
//! `{<room>}:pos` (last position in the room's order), `{<room>}:history`
//! (message JSON), `{<room>}:log` (event records, to fill gaps),
//! `{<room>}:members` (name key → member record); `rooms` (rooms with
//! members), `instances`, `instance:<id>` (heartbeat),
//! `instance-members:<id>` (what an instance's sockets hold).
//!
//! On the channel `rooms-chat:events`: a room event record
//! `{"kind":"m"|"j"|"l"|"t","pos":P[,"id":N],"room":…,"name":…,"data":<the frame's JSON>}`
//! (see `room::event`), `r` (the room list changed), or
//! `x{"room":…,"sid":…}` (a socket lost its name to a newer one).

use serde::Serialize;

/// Every key and the channel start with this.
pub const PREFIX: &str = "rooms-chat:";

/// The channel of room events and room-state changes.
pub const EVENTS_CHANNEL: &str = "rooms-chat:events";

/// How long an empty room keeps its sequence, order and history, in seconds.
pub const EMPTY_ROOM_KEEP_SECS: u64 = 24 * 3600;

/// One of a room's keys: `what` is `seq`, `pos`, `history`, `log` or `members`.
pub fn room_key(room: &str, what: &str) -> String {
    format!("{PREFIX}{{{room}}}:{what}")
}

pub fn key(name: &str) -> String {
    format!("{PREFIX}{name}")
}

pub fn instance_key(instance: &str) -> String {
    format!("{PREFIX}instance:{instance}")
}

pub fn instance_members_key(instance: &str) -> String {
    format!("{PREFIX}instance-members:{instance}")
}

/// What Redis keeps about a member.
#[derive(Serialize)]
pub struct MemberRecord<'a> {
    pub name: &'a str,
    pub sid: &'a str,
    pub instance: &'a str,
    #[serde(rename = "clientId", skip_serializing_if = "Option::is_none")]
    pub client_id: Option<&'a str>,
}

/// The part of an event record after its kind, position and id:
/// `,"room":…,"name":…`; the scripts put the rest around it.
pub fn record_head(room: &str, name: &str) -> String {
    #[derive(Serialize)]
    struct Head<'a> {
        room: &'a str,
        name: &'a str,
    }
    let head = serde_json::to_string(&Head { room, name }).unwrap_or_else(|_| "{}".into());
    // `{"room":…}` becomes `,"room":…` to follow `"pos":P`.
    let inner = head.trim_start_matches('{').trim_end_matches('}');
    format!(",{inner}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::room::event::{Kind, RoomEvent};

    #[test]
    fn a_record_as_the_scripts_build_it_reads_back() {
        let head = record_head("r \"1\"", "bob");
        let data = r#"{"id":7,"room":"r \"1\"","from":"bob","text":"hi","ts":1}"#;
        let record = format!(r#"{{"kind":"m","pos":12,"id":7{head},"data":{data}}}"#);
        let event = RoomEvent::from_record(&record).unwrap();
        assert_eq!(event.room, "r \"1\"");
        assert_eq!(event.name, "bob");
        assert_eq!(event.pos, 12);
        assert_eq!(event.kind, Kind::Message { id: 7 });
        assert_eq!(event.json.get(), data);
    }

    #[test]
    fn room_keys_share_the_room_as_hash_tag() {
        assert_eq!(room_key("general", "seq"), "rooms-chat:{general}:seq");
    }
}
