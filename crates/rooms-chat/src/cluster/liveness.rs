//! Cluster mode: heartbeats, the cleanup after dead instances, each
//! shard's health, and giving a shard that restarted empty its state back.
//!
//! Every `HEARTBEAT_MS` an instance refreshes its key on every shard (TTL
//! `INSTANCE_TTL_MS`); the one on the control shard tells the others it
//! is alive. It then looks for instances whose key expired: the first to
//! claim one (atomically, in Lua) marks it departed, and every instance
//! removes a departed instance's members room by room, each removal
//! placing a `user_left` (reason `disconnected`) in its room's order.
//! A heartbeat that finds its own key gone on a shard means that shard
//! lost this instance's state (a restart without persistence, or a long
//! partition): the instance gives it back, for the rooms on that shard,
//! before that shard serves again. Rooms without local members are let go
//! here too (see `watch`).

use crate::app::App;
use crate::cluster::RedisStore;
use crate::cluster::shards::Shard;
use crate::health::Link;
use crate::store::Member;
use fred::interfaces::{ClientLike, EventInterface};
use ops::Shutdown;
use std::sync::Arc;
use std::time::Duration;

pub struct Liveness {
    pub store: Arc<RedisStore>,
    pub app: Arc<App>,
    pub link: Arc<Link>,
    pub heartbeat: Duration,
    pub ttl: Duration,
}

impl Liveness {
    pub async fn run(self, shutdown: Shutdown) {
        let liveness = Arc::new(self);
        // Each shard beats on its own: a dead shard's commands wait for
        // their timeout, which must not let the others' keys expire.
        for shard in liveness.store.shards().all() {
            let store = liveness.store.clone();
            tokio::spawn(watch_connection(
                shard.clone(),
                liveness.link.clone(),
                store,
            ));
            let beating = liveness.clone();
            let shard = shard.clone();
            let shutdown = shutdown.clone();
            tokio::spawn(async move { beating.beat_forever(&shard, shutdown).await });
        }
        let mut ticker = tokio::time::interval(liveness.heartbeat);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = shutdown.wait() => {
                    liveness.retire().await;
                    return;
                }
            }
            liveness.app.rooms.retry_leaves().await;
            liveness.store.retry_counts().await;
            let delivery = &liveness.app.rooms.delivery;
            liveness
                .store
                .watch()
                .release_unused(|room| delivery.has_room(room))
                .await;
            liveness.sweep().await;
        }
    }

    async fn beat_forever(&self, shard: &Arc<Shard>, shutdown: Shutdown) {
        let mut ticker = tokio::time::interval(self.heartbeat);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut first = true;
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = shard.check.notified() => {}
                _ = shutdown.wait() => return,
            }
            let was_up = self.link.is_up();
            self.beat(shard, &mut first).await;
            super::tell_link(&self.link, self.store.shards());
            if self.link.is_up() && !was_up {
                // Counts may have changed while this instance was deaf.
                self.app.rooms_push.changed();
            }
        }
    }

    /// One heartbeat on `shard`: up if it answers and its subscriber is
    /// connected; its state given back if it forgot this instance.
    async fn beat(&self, shard: &Arc<Shard>, first: &mut bool) {
        match self.store.heartbeat(shard, self.ttl).await {
            Ok(existed) => {
                if !existed && !*first {
                    tracing::warn!(
                        shard = shard.name,
                        "a Redis shard forgot this instance; giving its state back"
                    );
                    self.restore(shard).await;
                }
                *first = false;
                let subscribed = shard.subscriber.is_connected();
                if !subscribed {
                    tracing::debug!(
                        shard = shard.name,
                        "Redis answers but the bus is not back yet"
                    );
                }
                shard.set_beaten(subscribed);
            }
            Err(error) => {
                tracing::debug!(%error, shard = shard.name, "heartbeat failed");
                shard.set_up(false);
            }
        }
    }

    /// A clean stop: this instance's members are reported left now.
    async fn retire(&self) {
        if let Err(error) = self.store.retire().await {
            tracing::warn!(%error, "cannot retire; others will notice the silence");
        }
    }

    /// Claims every dead instance, and removes what departed ones hold.
    async fn sweep(&self) {
        if !self.store.shards().control().is_up() {
            return;
        }
        let Ok(instances) = self.store.instances().await else {
            return;
        };
        for instance in instances {
            if instance == self.store.instance() {
                continue;
            }
            if self.store.is_alive(&instance).await.unwrap_or(true) {
                continue;
            }
            match self.store.claim_dead(&instance).await {
                Ok(true) => {
                    tracing::info!(instance, "instance is dead; its members leave");
                    self.app.metrics.dead_instances_claimed.inc();
                }
                Ok(false) => {}
                Err(error) => tracing::warn!(%error, instance, "cannot claim a dead instance"),
            }
        }
        let Ok(departed) = self.store.departed().await else {
            return;
        };
        for dead in departed {
            if dead == self.store.instance() {
                continue;
            }
            match self.store.clean_up_after(&dead).await {
                Ok(removed) if !removed.is_empty() => {
                    tracing::info!(
                        dead,
                        removed = removed.len(),
                        "a dead instance's members left"
                    );
                }
                Ok(_) => {}
                Err(error) => tracing::debug!(%error, dead, "cleanup waits"),
            }
        }
    }

    /// Gives `shard` back what this instance knows: each of its rooms'
    /// sequence, order and recent history (so ids and positions keep
    /// increasing) and the local members. The control shard gets every
    /// room's member back (its counts and this instance's rooms).
    async fn restore(&self, shard: &Shard) {
        let shards = self.store.shards();
        let control = shards.is_control(shard);
        if control {
            if let Err(error) = self.store.come_back().await {
                tracing::warn!(%error, "cannot say this instance is back");
            }
            if let Err(error) = self.store.watch().note_again().await {
                tracing::warn!(%error, "cannot note this instance's rooms again");
            }
        }
        for room in self.app.rooms.delivery.snapshot() {
            let on_shard = std::ptr::eq(
                shards
                    .of_key(&super::schema::room_key(&room.room, "pos"))
                    .as_ref(),
                shard,
            );
            if !(on_shard || control) {
                continue;
            }
            tracing::debug!(
                room = room.room,
                last_pos = room.last_pos,
                "restoring a room"
            );
            if let Err(error) = self
                .store
                .restore_room(
                    &room.room,
                    room.last_message_id,
                    room.last_pos,
                    room.recent_messages,
                )
                .await
            {
                tracing::warn!(%error, room = room.room, "cannot restore a room");
            }
            for member in room.members {
                let member = Member {
                    name: member.name,
                    sid: member.socket.socket.id.to_string(),
                    client_id: member.client_id,
                    sub: member.sub,
                };
                if let Err(error) = self.store.rejoin(&room.room, &member).await {
                    tracing::warn!(%error, room = room.room, "cannot register a member again");
                }
            }
        }
        self.app.rooms_push.changed();
    }
}

/// A broken connection to `shard`: its rooms are refused at once rather
/// than let wait for a command timeout; a reconnect waits for the next
/// heartbeat, since the shard may have lost everything.
async fn watch_connection(shard: Arc<Shard>, link: Arc<Link>, store: Arc<RedisStore>) {
    let mut errors = shard.client.error_rx();
    let mut reconnects = shard.client.reconnect_rx();
    loop {
        tokio::select! {
            Ok(_) = errors.recv() => {}
            Ok(_) = reconnects.recv() => {}
            else => return,
        }
        shard.set_up(false);
        super::tell_link(&link, store.shards());
        shard.check.notify_one();
    }
}
