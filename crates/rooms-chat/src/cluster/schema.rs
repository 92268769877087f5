//! The Redis side written down once: key names, channels and the records
//! on them.
//!
//! Every key carries a hash tag, and every script touches keys of one tag
//! only, so that on a Redis Cluster each script runs on one shard:
//!
//! - a room's keys and channel carry the room (`rooms-chat:{<room>}:…`):
//!   `seq` (last message id), `pos` (last position in the room's order),
//!   `history` (message JSON), `log` (event records, to fill gaps),
//!   `members` (name key → member record), `resumed` (the server a
//!   failover moved the room on to, and from which position), and the
//!   sharded channel
//!   `events` (SPUBLISH from the room's scripts, SSUBSCRIBE by the
//!   instances with local members);
//! - the state across rooms carries the control tag
//!   (`rooms-chat:{rooms-chat}:…`): `rooms` (room → `pos:count:secs`, the
//!   list and counts, kept from what the room scripts answer), `instances`,
//!   `alive:<id>` (heartbeat), `rooms:<id>` (rooms where an instance may
//!   hold members), `departed` (dead instances whose members are being
//!   removed), and the sharded channel `changed` (the room list changed);
//! - each shard's own heartbeat key `rooms-chat:{<shard tag>}:alive:<id>`
//!   tells an instance that the shard restarted empty.
//!
//! On a room's channel: a room event record
//! `{"kind":"m"|"j"|"l"|"t","pos":P[,"id":N],"room":…,"name":…,"data":<the frame's JSON>}`
//! (see `room::event`), or `x{"room":…,"sid":…}` (a socket lost its name to
//! a newer one).

use serde::Serialize;

/// The hash tag of the state across rooms.
pub const CONTROL_TAG: &str = "rooms-chat";

/// How long an empty room keeps its sequence, order and history, in seconds.
pub const EMPTY_ROOM_KEEP_SECS: u64 = 24 * 3600;

/// How long the room list remembers that a room emptied, in seconds, so
/// that a late count from before cannot list it again.
pub const EMPTIED_KEEP_SECS: u64 = 60;

/// One of a room's keys: `what` is `seq`, `pos`, `history`, `log` or `members`.
///
/// Redis hashes what lies between the first `{` and the next `}`: a room
/// whose name starts with `}` would leave that empty, and each of its keys
/// would land on a slot of its own. Such a room gets a space before its
/// name, which no room name has (they are trimmed).
pub fn room_key(room: &str, what: &str) -> String {
    let pad = if room.starts_with('}') { " " } else { "" };
    format!("rooms-chat:{{{pad}{room}}}:{what}")
}

/// The keys `restore_room.lua` takes: sequence, position, history.
pub fn restore_keys(room: &str) -> Vec<String> {
    ["seq", "pos", "history"]
        .into_iter()
        .map(|what| room_key(room, what))
        .collect()
}

/// The keys `resume_room.lua` takes: sequence, position, history, and the
/// record of the last failover the room moved on from.
pub fn resume_keys(room: &str) -> Vec<String> {
    let mut keys = restore_keys(room);
    keys.push(room_key(room, "resumed"));
    keys
}

/// How far a room's order and ids jump after a failover: more than the
/// writes a promoted replica can lack (asynchronous replication lags by
/// milliseconds), so that no position or id is ever handed out twice.
pub const FAILOVER_JUMP: u64 = 1000;

/// The sharded channel of a room's events.
pub fn room_channel(room: &str) -> String {
    room_key(room, "events")
}

/// One of the keys (or channels) of the state across rooms.
pub fn control_key(name: &str) -> String {
    format!("rooms-chat:{{{CONTROL_TAG}}}:{name}")
}

/// The sharded channel that says the room list changed. One channel for
/// all rooms, on purpose: every instance needs every change (each socket
/// is pushed the whole list), a change comes per join or leave rather than
/// per message, and each instance reads the list once per `ROOMS_PUSH_MS`
/// however many come. Sharded rather than classic Pub/Sub so that it is
/// sent by the control shard alone, not copied to every node of a cluster.
pub fn changed_channel() -> String {
    control_key("changed")
}

/// The key that says `instance` is alive (on the control shard).
pub fn alive_key(instance: &str) -> String {
    control_key(&format!("alive:{instance}"))
}

/// The rooms where `instance` may hold members.
pub fn instance_rooms_key(instance: &str) -> String {
    control_key(&format!("rooms:{instance}"))
}

/// A shard's own record of `instance`, on the shard of `tag`.
pub fn shard_alive_key(tag: &str, instance: &str) -> String {
    format!("rooms-chat:{{{tag}}}:alive:{instance}")
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
    fn room_keys_and_channel_share_the_room_as_hash_tag() {
        assert_eq!(room_key("general", "seq"), "rooms-chat:{general}:seq");
        let slot = |key: &str| fred::util::redis_keyslot(key.as_bytes());
        assert_eq!(
            slot(&room_channel("general")),
            slot(&room_key("general", "pos"))
        );
    }

    #[test]
    fn a_room_named_with_a_closing_brace_keeps_one_slot() {
        let slot = |key: String| fred::util::redis_keyslot(key.as_bytes());
        assert_eq!(slot(room_key("}x", "seq")), slot(room_key("}x", "log")));
    }

    #[test]
    fn the_state_across_rooms_shares_one_slot() {
        let slot = |key: String| fred::util::redis_keyslot(key.as_bytes());
        let control = slot(control_key("rooms"));
        assert_eq!(slot(alive_key("a")), control);
        assert_eq!(slot(instance_rooms_key("a")), control);
        assert_eq!(slot(changed_channel()), control);
        assert_eq!(slot(shard_alive_key(CONTROL_TAG, "a")), control);
    }
}
