//! Cluster mode: instance heartbeats, the cleanup of dead instances, and
//! the Redis link state.
//!
//! Every instance refreshes its heartbeat key (TTL `INSTANCE_TTL_MS`) every
//! `HEARTBEAT_MS`, and looks for instances whose key expired: the first to
//! claim one (atomically, in Lua) removes its members, each removal placing
//! a `user_left` (reason `disconnected`) in its room's order. A heartbeat
//! that finds its own key gone means Redis lost this instance's state (a
//! restart without persistence, or a long partition): the instance gives
//! it back before it serves again.

use crate::app::App;
use crate::cluster::RedisStore;
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
        let mut ticker = tokio::time::interval(self.heartbeat);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut first = true;
        let mut errors = self.store.client().error_rx();
        let mut reconnects = self.store.client().reconnect_rx();
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                // A broken connection: refuse client events at once rather
                // than let them wait for a command timeout.
                Ok(_) = errors.recv() => {
                    self.link.set_up(false);
                    continue;
                }
                // Back, but Redis may have lost everything: no event may
                // take a position before the heartbeat has checked (and restored).
                Ok(_) = reconnects.recv() => {
                    self.link.set_up(false);
                }
                _ = shutdown.wait() => {
                    self.retire().await;
                    return;
                }
            }
            let was_up = self.link.is_up();
            match self.store.heartbeat(self.ttl).await {
                Ok(existed) => {
                    if !existed && !first {
                        tracing::warn!("Redis forgot this instance; registering its members again");
                        self.restore().await;
                    }
                    first = false;
                    let subscribed = self.store.subscriber().is_connected();
                    if !subscribed {
                        tracing::debug!("Redis answers but the bus is not back yet");
                    }
                    self.link.set_up(subscribed);
                    if subscribed && !was_up {
                        // Counts may have changed while this instance was deaf.
                        self.app.rooms_push.changed();
                    }
                    self.app.rooms.retry_leaves().await;
                    self.sweep().await;
                }
                Err(error) => {
                    tracing::debug!(%error, "heartbeat failed");
                    self.link.set_up(false);
                }
            }
        }
    }

    /// A clean stop: this instance's members are reported left now.
    async fn retire(&self) {
        if let Err(error) = self.store.retire().await {
            tracing::warn!(%error, "cannot retire; others will notice the silence");
        }
    }

    /// Claims every dead instance; the claim tells its members' rooms.
    async fn sweep(&self) {
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
                Ok(removed) => {
                    let removed = removed.len();
                    tracing::info!(instance, removed, "instance is dead; its members left");
                    self.app.metrics.dead_instances_claimed.inc();
                }
                Err(error) => tracing::warn!(%error, instance, "cannot claim a dead instance"),
            }
        }
    }

    /// Gives Redis back what this instance knows: each room's sequence,
    /// order and recent history (so ids and positions keep increasing) and
    /// the local members.
    async fn restore(&self) {
        for room in self.app.rooms.delivery.snapshot() {
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
                };
                if let Err(error) = self.store.rejoin(&room.room, &member).await {
                    tracing::warn!(%error, room = room.room, "cannot register a member again");
                }
            }
        }
        self.app.rooms_push.changed();
    }
}
