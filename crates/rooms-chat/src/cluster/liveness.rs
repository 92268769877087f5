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
//!
//! A heartbeat after a reconnect also reads the server's `run_id`: another
//! server (a replica promoted by a Redis Cluster or by Sentinel) may lack
//! the last writes, so each room there moves on past what this instance
//! delivered before the shard serves again (see `restore`).

use crate::app::App;
use crate::cluster::RedisStore;
use crate::cluster::shards::Shard;
use crate::cluster::topology;
use crate::health::Link;
use crate::room::repair;
use crate::store::Joiner;
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
        if liveness.store.shards().is_clustered() {
            let shards = liveness.store.shards_handle();
            tokio::spawn(topology::follow(shards, shutdown.clone()));
        }
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
    /// connected; its state given back if it forgot this instance, or if
    /// another server answers for it now (a failover), which may lack the
    /// last writes.
    async fn beat(&self, shard: &Arc<Shard>, first: &mut bool) {
        let was_up = shard.is_up();
        match self.store.heartbeat(shard, self.ttl).await {
            Ok(existed) => {
                let failed_over = if was_up && !*first {
                    false
                } else {
                    match self.store.server_id(shard).await {
                        Ok(run_id) => shard.server_changed(run_id),
                        Err(error) => {
                            tracing::debug!(%error, shard = shard.name(), "cannot read the server id");
                            shard.set_up(false);
                            return;
                        }
                    }
                };
                if failed_over {
                    // A promoted replica, or a restart (empty, or from a
                    // file): either may lack the last writes.
                    tracing::warn!(
                        shard = shard.name(),
                        "another Redis server serves a shard; moving its rooms on past what it may lack"
                    );
                    self.restore(shard, true).await;
                    if let Err(error) = self.store.watch().resubscribe(shard).await {
                        tracing::debug!(%error, shard = shard.name(), "the bus subscribes later");
                        shard.set_up(false);
                        return;
                    }
                } else if !existed && !*first {
                    tracing::warn!(
                        shard = shard.name(),
                        "a Redis shard forgot this instance; giving its state back"
                    );
                    self.restore(shard, false).await;
                }
                *first = false;
                let subscribed = shard.subscriber().is_connected();
                if !subscribed {
                    tracing::debug!(
                        shard = shard.name(),
                        "Redis answers but the bus is not back yet"
                    );
                }
                shard.set_beaten(subscribed);
                if failed_over && subscribed {
                    // What other instances published before this one
                    // subscribed on the new server.
                    let rooms = &self.app.rooms;
                    repair::resync(&rooms.delivery, rooms.store.as_ref(), &self.app.metrics).await;
                }
            }
            Err(error) => {
                tracing::debug!(%error, shard = shard.name(), "heartbeat failed");
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
    /// room's member back (its counts and this instance's rooms). After a
    /// failover (`moved_on`), each room's order and ids jump past anything
    /// an instance may have handed out on the old server (see
    /// `resume_room.lua`), and this instance's delivery follows the jump.
    async fn restore(&self, shard: &Shard, moved_on: bool) {
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
            let restored = if on_shard && moved_on {
                self.store
                    .resume_room(
                        &room.room,
                        room.last_message_id,
                        room.last_pos,
                        room.recent_messages,
                    )
                    .await
                    .map(|resumed_after| {
                        self.app.rooms.delivery.rebase(&room.room, resumed_after);
                    })
            } else {
                self.store
                    .restore_room(
                        &room.room,
                        room.last_message_id,
                        room.last_pos,
                        room.recent_messages,
                    )
                    .await
                    .map(|_| ())
            };
            if let Err(error) = restored {
                tracing::warn!(%error, room = room.room, "cannot restore a room");
            }
            for member in room.members {
                let member = Joiner {
                    name: member.name,
                    sid: member.socket.id().to_owned(),
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
/// heartbeat, since the shard may have lost everything. On a Redis
/// Cluster, a lost link also asks for a topology check (a failover may
/// be under way). Follows the shard to its new master when it moves.
async fn watch_connection(shard: Arc<Shard>, link: Arc<Link>, store: Arc<RedisStore>) {
    let mut moved = shard.moved();
    loop {
        let client = shard.client();
        moved.mark_unchanged();
        let mut errors = client.error_rx();
        let mut reconnects = client.reconnect_rx();
        loop {
            tokio::select! {
                Ok(_) = errors.recv() => {}
                Ok(_) = reconnects.recv() => {}
                changed = moved.changed() => match changed {
                    Ok(()) => break,
                    Err(_) => return,
                },
            }
            shard.set_up(false);
            super::tell_link(&link, store.shards());
            store.shards().recheck.notify_one();
            shard.check.notify_one();
        }
    }
}
