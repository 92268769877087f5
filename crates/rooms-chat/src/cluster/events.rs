//! What a member posts (messages, typing) and what an instance reads back
//! from a room's log: each call runs on the room's shard only.

use super::RedisStore;
use super::schema::{record_head, room_channel, room_key};
use crate::room::event::RoomEvent;
use anyhow::{Context, Result};
use protocol::rooms::{RoomMessage, Typing, message_json_tail};
use std::sync::Arc;

impl RedisStore {
    pub(super) async fn append_message(
        &self,
        room: &str,
        from: &str,
        text: &str,
    ) -> Result<RoomMessage> {
        let ts = protocol::now_ms();
        let keys = ["seq", "pos", "history", "log"]
            .into_iter()
            .map(|what| room_key(room, what))
            .collect();
        let args = vec![
            message_json_tail(room, from, text, ts),
            record_head(room, from),
            self.history_keep.to_string(),
            room_channel(room),
        ];
        let shard = self.shard_of(room);
        let id: u64 = self
            .run(shard, &self.scripts.append, keys, args)
            .await
            .context("append")?;
        self.replicated(shard).await.context("replicate")?;
        self.metrics.cluster_messages_out.inc();
        Ok(RoomMessage {
            id,
            room: room.to_owned(),
            from: from.to_owned(),
            text: text.to_owned(),
            ts,
        })
    }

    pub(super) async fn send_typing(&self, room: &str, name: &str, typing: bool) -> Result<()> {
        let notice = serde_json::to_string(&Typing {
            room: room.to_owned(),
            name: name.to_owned(),
            typing,
        })?;
        let args = vec![record_head(room, name), notice, room_channel(room)];
        let shard = self.shard_of(room);
        let keys = vec![room_key(room, "pos")];
        let _position: u64 = self
            .run(shard, &self.scripts.typing, keys, args)
            .await
            .context("typing")?;
        Ok(())
    }

    /// The entries of `list` numbered above `after` by `counter` (the log
    /// by position, the history by id).
    async fn entries_after(
        &self,
        room: &str,
        counter: &str,
        list: &str,
        after: u64,
    ) -> Result<Vec<String>> {
        let keys = vec![room_key(room, counter), room_key(room, list)];
        let shard = self.shard_of(room);
        self.run(shard, &self.scripts.after, keys, vec![after.to_string()])
            .await
    }

    pub(super) async fn room_events_after(
        &self,
        room: &str,
        after: u64,
    ) -> Result<Vec<Arc<RoomEvent>>> {
        let records = self
            .entries_after(room, "pos", "log", after)
            .await
            .context("read the room's log")?;
        records
            .iter()
            .map(|record| RoomEvent::from_record(record))
            .collect()
    }

    pub(super) async fn room_history_after(
        &self,
        room: &str,
        after: u64,
    ) -> Result<Vec<RoomMessage>> {
        let entries = self
            .entries_after(room, "seq", "history", after)
            .await
            .context("read the history")?;
        entries
            .iter()
            .map(|entry| serde_json::from_str(entry).context("parse the history"))
            .collect()
    }
}
