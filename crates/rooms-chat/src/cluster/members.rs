//! Joining and leaving a room: the room's own script decides (one shard),
//! then the room list learns the count it answered.

use super::RedisStore;
use super::schema::{EMPTY_ROOM_KEEP_SECS, MemberRecord, record_head, room_channel, room_key};
use crate::store::{JoinOutcome, Joined, Joiner};
use anyhow::{Context, Result, anyhow};
use fred::types::Value;
use protocol::rooms::{LeaveReason, RoomMessage, UserJoined, UserLeft};
use protocol::validate::name_key;

/// Whom a leave removes: the socket that holds the name, or whichever
/// socket of a dead instance does.
pub enum Holder<'a> {
    Socket(&'a str),
    Instance(&'a str),
}

/// A room's keys in the order the member scripts take them.
fn member_keys(room: &str) -> Vec<String> {
    ["members", "seq", "pos", "history", "log"]
        .into_iter()
        .map(|what| room_key(room, what))
        .collect()
}

impl RedisStore {
    /// After Redis lost its data: registers a local member again, quietly.
    pub(crate) async fn rejoin(&self, room: &str, member: &Joiner) -> Result<JoinOutcome> {
        self.join_room(room, member, Some(u64::MAX), true).await
    }

    pub(super) async fn join_room(
        &self,
        room: &str,
        member: &Joiner,
        since: Option<u64>,
        quiet: bool,
    ) -> Result<JoinOutcome> {
        // Subscribed before the join takes its place: every later event of
        // the room reaches this instance live, or as a gap it repairs.
        self.watch
            .watch(room)
            .await
            .context("subscribe to the room")?;
        let record = serde_json::to_string(&MemberRecord {
            name: &member.name,
            sid: &member.sid,
            instance: &self.instance,
            client_id: member.client_id.as_deref(),
            sub: member.sub.as_deref(),
        })?;
        let notice = serde_json::to_string(&UserJoined {
            room: room.to_owned(),
            name: member.name.clone(),
            ts: protocol::now_ms(),
        })?;
        let since = since.map_or_else(|| "-1".to_owned(), |since| since.to_string());
        let args = vec![
            room.to_owned(),
            name_key(&member.name),
            record,
            member.sid.clone(),
            member.client_id.clone().unwrap_or_default(),
            since,
            protocol::HISTORY_LEN.to_string(),
            room_channel(room),
            record_head(room, &member.name),
            notice,
            self.history_keep.to_string(),
            if quiet { "1" } else { "0" }.to_owned(),
        ];
        let shard = self.shard_of(room);
        let script = &self.scripts.join;
        let keys = member_keys(room);
        let reply: Vec<Value> = if quiet {
            self.run_to_restore(shard, script, keys, args).await
        } else {
            self.run(shard, script, keys, args).await
        }
        .context("join")?;
        let [status, silent, last_id, position, members, history, count] =
            <[Value; 7]>::try_from(reply)
                .map_err(|reply| anyhow!("unexpected join reply {reply:?}"))?;
        if status.as_u64() == Some(0) {
            return Ok(JoinOutcome::NameTaken);
        }
        let position = position.as_u64().unwrap_or(0);
        let silent = silent.as_u64() == Some(1);
        if !silent || quiet {
            self.tell_count(room, position, count.as_u64().unwrap_or(0))
                .await;
        }
        let members: Vec<String> = serde_json::from_str(&text(members)?)?;
        let history: Vec<RoomMessage> = serde_json::from_str(&text(history)?)?;
        Ok(JoinOutcome::Joined(Joined {
            members,
            history,
            last_id: last_id.as_u64().unwrap_or(0),
            position,
            silent,
        }))
    }

    /// Removes `name` from `room` if `holder` still holds it; true if it did.
    pub(super) async fn remove(
        &self,
        room: &str,
        name: &str,
        holder: Holder<'_>,
        reason: LeaveReason,
    ) -> Result<bool> {
        let notice = serde_json::to_string(&UserLeft {
            room: room.to_owned(),
            name: name.to_owned(),
            ts: protocol::now_ms(),
            reason,
        })?;
        let (field, id) = match holder {
            Holder::Socket(sid) => ("sid", sid),
            Holder::Instance(instance) => ("instance", instance),
        };
        let args = vec![
            name_key(name),
            field.to_owned(),
            id.to_owned(),
            EMPTY_ROOM_KEEP_SECS.to_string(),
            room_channel(room),
            record_head(room, name),
            notice,
            self.history_keep.to_string(),
        ];
        let shard = self.shard_of(room);
        let reply: Vec<u64> = self
            .run(shard, &self.scripts.leave, member_keys(room), args)
            .await
            .context("leave")?;
        let &[1, position, count] = reply.as_slice() else {
            return Ok(false);
        };
        self.tell_count(room, position, count).await;
        Ok(true)
    }

    /// The names a (dead) instance still holds in `room`.
    pub(super) async fn held_by(&self, room: &str, instance: &str) -> Result<Vec<String>> {
        let shard = self.shard_of(room);
        let keys = vec![room_key(room, "members")];
        self.run(
            shard,
            &self.scripts.held_by,
            keys,
            vec![instance.to_owned()],
        )
        .await
        .context("list a dead instance's members")
    }
}

pub(super) fn text(value: Value) -> Result<String> {
    value
        .into_string()
        .context("expected text in a Redis reply")
}
