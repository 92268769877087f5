//! The rooms this instance listens to: it subscribes to a room's sharded
//! channel (and notes the room in its `rooms:<id>` set, for whoever cleans
//! up after it should it die) before its first local member's join takes
//! its place, and lets go once the room has no local member left.
//!
//! One lock orders every change, so a release that decided a room was
//! unused cannot undo the subscription of a join that began meanwhile:
//! the join announces itself to delivery before it asks here, and a
//! release checks delivery under the same lock.

use super::schema::{changed_channel, instance_rooms_key, room_channel};
use super::shards::{Shard, Shards};
use anyhow::{Context, Result, anyhow};
use fred::interfaces::{PubsubInterface, SetsInterface};
use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;

pub struct Watch {
    shards: Arc<Shards>,
    instance: String,
    timeout: Duration,
    rooms: Mutex<HashSet<String>>,
}

impl Watch {
    pub fn new(shards: Arc<Shards>, instance: String, timeout: Duration) -> Watch {
        Watch {
            shards,
            instance,
            timeout,
            rooms: Mutex::new(HashSet::new()),
        }
    }

    async fn within<R>(
        &self,
        shard: &Shard,
        command: impl Future<Output = Result<R, fred::error::Error>>,
    ) -> Result<R> {
        if !shard.is_up() {
            return Err(anyhow!("the Redis shard at {} is down", shard.name()));
        }
        // Twice fred's own timeout, which ends the command first (see
        // `RedisStore::within`).
        match tokio::time::timeout(self.timeout * 2, command).await {
            Ok(result) => Ok(result?),
            Err(_elapsed) => Err(anyhow!("Redis at {} did not answer", shard.name())),
        }
    }

    /// Makes sure this instance receives `room`'s events from now on.
    pub async fn watch(&self, room: &str) -> Result<()> {
        let mut rooms = self.rooms.lock().await;
        if rooms.contains(room) {
            return Ok(());
        }
        let control = self.shards.control();
        let client = control.client();
        let noted = client.sadd::<i64, _, _>(instance_rooms_key(&self.instance), room);
        self.within(control, noted)
            .await
            .context("note the room for this instance")?;
        let channel = room_channel(room);
        let shard = self.shards.of_key(&channel);
        self.within(shard, shard.subscriber().ssubscribe(channel))
            .await
            .context("subscribe to the room's channel")?;
        rooms.insert(room.to_owned());
        Ok(())
    }

    /// Lets go of every room `is_local` says has no local member any more.
    pub async fn release_unused(&self, is_local: impl Fn(&str) -> bool) {
        let mut rooms = self.rooms.lock().await;
        let unused: Vec<String> = rooms
            .iter()
            .filter(|room| !is_local(room))
            .cloned()
            .collect();
        let control = self.shards.control();
        for room in unused {
            let channel = room_channel(&room);
            let shard = self.shards.of_key(&channel);
            // A shard that is down has dropped the subscription already;
            // the reconnect subscribes only to the rooms still watched.
            if let Err(error) = self
                .within(shard, shard.subscriber().sunsubscribe(channel))
                .await
            {
                tracing::debug!(%error, room, "unsubscribe failed");
            }
            let client = control.client();
            let forgot = client.srem::<i64, _, _>(instance_rooms_key(&self.instance), &room);
            if let Err(error) = self.within(control, forgot).await {
                // Harmless: the set may name rooms without members here.
                tracing::debug!(%error, room, "the room stays noted for this instance");
            }
            rooms.remove(&room);
        }
    }

    /// After `shard`'s subscriber reconnected: subscribes again to its
    /// channels (Redis forgot them with the connection).
    pub async fn resubscribe(&self, shard: &Shard) -> Result<()> {
        let rooms = self.rooms.lock().await;
        let mut channels: Vec<String> = rooms
            .iter()
            .map(|room| room_channel(room))
            .filter(|channel| std::ptr::eq(self.shards.of_key(channel).as_ref(), shard))
            .collect();
        if self.shards.is_control(shard) {
            channels.push(changed_channel());
        }
        for channel in channels {
            // Not `within`: the shard is marked up only after this.
            // Twice fred's own timeout, which ends the command first (see `within`).
            tokio::time::timeout(self.timeout * 2, shard.subscriber().ssubscribe(channel))
                .await
                .context("resubscribe timed out")??;
        }
        Ok(())
    }

    /// After the control shard lost this instance's state: notes every
    /// watched room for it again (before the shard counts as up).
    pub async fn note_again(&self) -> Result<()> {
        let rooms = self.rooms.lock().await;
        let control = self.shards.control();
        for room in rooms.iter() {
            let key = instance_rooms_key(&self.instance);
            let client = control.client();
            let noted = client.sadd::<i64, _, _>(key, room);
            // Twice fred's own timeout, which ends the command first.
            tokio::time::timeout(self.timeout * 2, noted)
                .await
                .context("note a room again timed out")??;
        }
        Ok(())
    }
}
