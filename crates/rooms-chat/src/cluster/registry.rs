//! The state across rooms, under the control tag (one shard): the room
//! list with its counts, and the instances (heartbeats, the rooms where
//! each may hold members, the claim and cleanup of dead ones).
//!
//! No script touches a room and this state at once (they may live on two
//! shards), so each is kept from what the room scripts answered:
//!
//! - the room list takes a room's count with the room position it was
//!   true at, and ignores an older one, so it converges on each room's
//!   latest count whatever order the instances tell it in; a count that
//!   could not be told (control shard down) is told again at the next
//!   heartbeat;
//! - an instance notes a room in its `rooms:<id>` set before its first
//!   member joins there (see `watch`), so the set always covers its
//!   members; whoever cleans up after a dead instance removes, room by
//!   room, the members it still holds (each removal is once, in the room's
//!   script), then forgets the room.

use super::RedisStore;
use super::members::Holder;
use super::schema::{
    EMPTIED_KEEP_SECS, FAILOVER_JUMP, alive_key, changed_channel, control_key, instance_rooms_key,
    restore_keys, resume_keys, shard_alive_key,
};
use super::shards::Shard;
use anyhow::{Context, Result};
use fred::interfaces::{ClientLike, KeysInterface, SetsInterface};
use fred::types::CustomCommand;
use fred::types::Value;
use protocol::rooms::{LeaveReason, RoomCount};
use std::time::Duration;

impl RedisStore {
    /// Tells the room list `room`'s count as of `position`; kept to retry
    /// when the control shard cannot take it now.
    pub(super) async fn tell_count(&self, room: &str, position: u64, count: u64) {
        if let Err(error) = self.send_count(room, position, count).await {
            tracing::debug!(%error, room, "room count kept for the next heartbeat");
            let mut pending = self.pending_counts.lock();
            let entry = pending.entry(room.to_owned()).or_insert((position, count));
            if position >= entry.0 {
                *entry = (position, count);
            }
        }
    }

    async fn send_count(&self, room: &str, position: u64, count: u64) -> Result<()> {
        let control = self.shards.control();
        let args = vec![
            room.to_owned(),
            position.to_string(),
            count.to_string(),
            changed_channel(),
        ];
        let keys = vec![control_key("rooms")];
        let _changed: i64 = self
            .run(control, &self.scripts.count, keys, args)
            .await
            .context("tell the room list")?;
        Ok(())
    }

    /// Tells the room list the counts it missed.
    pub(crate) async fn retry_counts(&self) {
        let pending = std::mem::take(&mut *self.pending_counts.lock());
        for (room, (position, count)) in pending {
            self.tell_count(&room, position, count).await;
        }
    }

    pub(super) async fn room_list(&self) -> Result<Vec<RoomCount>> {
        let control = self.shards.control();
        let keys = vec![control_key("rooms")];
        let args = vec![EMPTIED_KEEP_SECS.to_string()];
        let flat: Vec<Value> = self
            .run(control, &self.scripts.rooms, keys, args)
            .await
            .context("list rooms")?;
        let mut rooms = Vec::with_capacity(flat.len() / 2);
        let mut items = flat.into_iter();
        while let (Some(name), Some(count)) = (items.next(), items.next()) {
            rooms.push(RoomCount {
                name: super::members::text(name)?,
                members: count.as_u64().unwrap_or(0),
            });
        }
        rooms.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(rooms)
    }

    /// Says this instance is alive for `ttl` on `shard` (on the control
    /// shard: for everyone); false when its key there had vanished (first
    /// beat, the shard restarted empty, or declared dead meanwhile).
    pub async fn heartbeat(&self, shard: &Shard, ttl: Duration) -> Result<bool> {
        let mut keys = vec![shard_alive_key(&shard.tag, &self.instance)];
        if self.shards.is_control(shard) {
            keys.push(control_key("instances"));
        }
        let args = vec![self.instance.clone(), ttl.as_millis().to_string()];
        let script = &self.scripts.heartbeat;
        // Not through `on`: the heartbeat is what finds a shard back up.
        let existed: i64 =
            // Twice fred's own timeout, which ends the command first (see `within`).
            tokio::time::timeout(self.timeout * 2, script.run(&shard.client(), keys, args))
                .await
                .context("heartbeat timed out")?
                .context("heartbeat")?;
        Ok(existed == 1)
    }

    /// Instances that said they were alive at some point.
    pub async fn instances(&self) -> Result<Vec<String>> {
        let control = self.shards.control();
        let key = control_key("instances");
        self.on(control, control.client().smembers(key))
            .await
            .context("list instances")
    }

    /// Whether `instance`'s heartbeat key exists.
    pub async fn is_alive(&self, instance: &str) -> Result<bool> {
        let control = self.shards.control();
        let count: i64 = self
            .on(control, control.client().exists(alive_key(instance)))
            .await
            .context("check an instance")?;
        Ok(count > 0)
    }

    /// Claims a dead instance (true for the one caller that did).
    pub async fn claim_dead(&self, dead: &str) -> Result<bool> {
        let control = self.shards.control();
        let keys = vec![
            control_key("instances"),
            alive_key(dead),
            control_key("departed"),
        ];
        let claimed: i64 = self
            .run(
                control,
                &self.scripts.claim_dead,
                keys,
                vec![dead.to_owned()],
            )
            .await
            .context("claim a dead instance")?;
        Ok(claimed == 1)
    }

    /// Dead instances whose members may still be in rooms.
    pub async fn departed(&self) -> Result<Vec<String>> {
        let control = self.shards.control();
        let key = control_key("departed");
        self.on(control, control.client().smembers(key))
            .await
            .context("list departed instances")
    }

    /// Removes every member `dead` still holds, telling their rooms; the
    /// (room, name) pairs removed here. Rooms on a shard that is down wait
    /// for a later call; several instances may clean at once.
    pub async fn clean_up_after(&self, dead: &str) -> Result<Vec<(String, String)>> {
        let control = self.shards.control();
        let rooms_key = instance_rooms_key(dead);
        let rooms: Vec<String> = self
            .on(control, control.client().smembers(&rooms_key))
            .await
            .context("list a dead instance's rooms")?;
        let mut removed = Vec::new();
        let mut unfinished = false;
        for room in rooms {
            let cleaned = async {
                for name in self.held_by(&room, dead).await? {
                    let reason = LeaveReason::Disconnected;
                    if self
                        .remove(&room, &name, Holder::Instance(dead), reason)
                        .await?
                    {
                        removed.push((room.clone(), name));
                    }
                }
                let _: i64 = self
                    .on(control, control.client().srem(&rooms_key, &room))
                    .await?;
                anyhow::Ok(())
            }
            .await;
            if let Err(error) = cleaned {
                tracing::debug!(%error, room, dead, "a dead instance's room waits");
                unfinished = true;
            }
        }
        if !unfinished {
            let departed = control_key("departed");
            let _: i64 = self
                .on(control, control.client().srem(departed, dead))
                .await?;
        }
        Ok(removed)
    }

    /// This instance was taken for dead, or the control shard forgot it:
    /// no one may go on removing its members.
    pub(crate) async fn come_back(&self) -> Result<()> {
        let control = self.shards.control();
        let departed = control_key("departed");
        // Not `on`: this runs while the control shard is being given its
        // state back, before it counts as up.
        let _: i64 = self
            .within(control, control.client().srem(departed, &self.instance))
            .await
            .context("come back")?;
        Ok(())
    }

    /// A clean stop: this instance's members leave at once rather than
    /// when its heartbeat expires. The (room, name) pairs removed.
    pub(crate) async fn retire(&self) -> Result<Vec<(String, String)>> {
        let control = self.shards.control();
        let _: i64 = self
            .on(control, control.client().del(alive_key(&self.instance)))
            .await
            .context("retire")?;
        self.claim_dead(&self.instance).await?;
        self.clean_up_after(&self.instance).await
    }

    /// After a shard lost its data: brings back `room`'s sequence, order
    /// and recent history from what this instance delivered.
    pub(crate) async fn restore_room(
        &self,
        room: &str,
        last_id: u64,
        last_pos: u64,
        recent: Vec<String>,
    ) -> Result<bool> {
        let mut args = vec![last_id.to_string(), last_pos.to_string()];
        args.extend(recent);
        let shard = self.shard_of(room);
        let restored: i64 = self
            .run_to_restore(shard, &self.scripts.restore_room, restore_keys(room), args)
            .await
            .context("restore a room")?;
        Ok(restored == 1)
    }

    /// After a failover: moves `room`'s order and ids on past what this
    /// instance (or the first instance to get here) delivered, and gives
    /// the history back its recent messages. Returns the position after
    /// which the room goes on.
    pub async fn resume_room(
        &self,
        room: &str,
        last_id: u64,
        last_pos: u64,
        recent: Vec<String>,
    ) -> Result<u64> {
        let shard = self.shard_of(room);
        let server = self.server_id(shard).await?;
        let mut args = vec![
            server,
            last_id.to_string(),
            last_pos.to_string(),
            FAILOVER_JUMP.to_string(),
        ];
        args.extend(recent);
        let resumed_after: u64 = self
            .run_to_restore(shard, &self.scripts.resume_room, resume_keys(room), args)
            .await
            .context("resume a room")?;
        Ok(resumed_after)
    }

    /// The `run_id` of the server that answers for `shard` now.
    pub(crate) async fn server_id(&self, shard: &Shard) -> Result<String> {
        let client = shard.client();
        let info: String = tokio::time::timeout(
            self.timeout * 2,
            client.custom::<String, _>(
                CustomCommand::new_static("INFO", None, false),
                vec!["server"],
            ),
        )
        .await
        .context("INFO timed out")?
        .context("INFO server")?;
        info.lines()
            .find_map(|line| line.strip_prefix("run_id:"))
            .map(|id| id.trim().to_owned())
            .context("INFO server names no run_id")
    }
}
