//! Cluster mode: instance heartbeats, the cleanup of dead instances, and
//! the Redis link state.
//!
//! Every instance refreshes its heartbeat key (TTL `INSTANCE_TTL_MS`) every
//! `HEARTBEAT_MS`, and looks for instances whose key expired: the first to
//! claim one (atomically, in Lua) removes its members and tells their rooms
//! `user_left` with reason `disconnected`. A heartbeat that finds its own
//! key gone means Redis lost this instance's state (a restart without
//! persistence, or a long partition): the instance gives it back.

use crate::app::App;
use crate::health::Link;
use crate::store::redis::RedisStore;
use crate::store::{Member, Store};
use fred::clients::SubscriberClient;
use fred::interfaces::{ClientLike, EventInterface};
use ops::Shutdown;
use protocol::rooms::{LeaveReason, UserLeft, server_event};
use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use std::sync::Arc;
use std::time::Duration;

pub struct Liveness<A: Adapter> {
    pub store: Arc<RedisStore>,
    pub app: Arc<App<A>>,
    pub io: SocketIo<A>,
    pub link: Arc<Link>,
    /// The Socket.IO adapter's connection, which must be back too before
    /// the instance says it serves (or notices from other instances are lost).
    pub adapter_subscriber: SubscriberClient,
    pub heartbeat: Duration,
    pub ttl: Duration,
}

impl<A: Adapter> Liveness<A> {
    pub async fn run(self, shutdown: Shutdown) {
        let mut ticker = tokio::time::interval(self.heartbeat);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut first = true;
        let mut errors = self.store.client().error_rx();
        let mut reconnects = self.store.client().reconnect_rx();
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                // A broken connection: refuse new messages at once rather
                // than let them wait for a command timeout.
                Ok(_) = errors.recv() => {
                    self.link.set_up(false);
                    continue;
                }
                // Back, but Redis may have lost everything: no message may
                // take an id before the heartbeat has checked (and restored).
                Ok(_) = reconnects.recv() => {
                    self.link.set_up(false);
                }
                _ = shutdown.wait() => {
                    self.retire().await;
                    return;
                }
            }
            let subscribed =
                self.store.subscriber().is_connected() && self.adapter_subscriber.is_connected();
            match self.store.heartbeat(self.ttl).await {
                Ok(existed) => {
                    if !existed && !first {
                        tracing::warn!("Redis forgot this instance; registering its members again");
                        self.restore().await;
                    }
                    first = false;
                    if !subscribed {
                        tracing::debug!("Redis answers but a subscription is not back yet");
                    }
                    self.link.set_up(subscribed);
                    self.retry_leaves().await;
                    self.sweep().await;
                }
                Err(error) => {
                    tracing::debug!(%error, "heartbeat failed");
                    self.link.set_up(false);
                }
            }
        }
    }

    /// A clean stop: this instance's members are reported left now, while
    /// the adapter can still tell the other instances.
    async fn retire(&self) {
        match self.store.retire().await {
            Ok(removed) => {
                for (room, name) in removed {
                    self.tell_left(room, name).await;
                }
            }
            Err(error) => tracing::warn!(%error, "cannot retire; others will notice the silence"),
        }
    }

    /// Records the disconnections that happened while Redis was away.
    async fn retry_leaves(&self) {
        let pending = std::mem::take(&mut *self.app.pending_leaves.lock().unwrap());
        for leave in pending {
            match self.store.leave(&leave.room, &leave.name, &leave.sid).await {
                Ok(true) => self.tell_left(leave.room, leave.name).await,
                Ok(false) => {}
                Err(_) => self.app.pending_leaves.lock().unwrap().push(leave),
            }
        }
    }

    async fn tell_left(&self, room: String, name: String) {
        let notice = UserLeft {
            room: room.clone(),
            name,
            ts: protocol::now_ms(),
            reason: LeaveReason::Disconnected,
        };
        if let Err(error) = self
            .io
            .to(room)
            .emit(server_event::USER_LEFT, &notice)
            .await
        {
            self.app.metrics.adapter_errors.inc();
            tracing::warn!(%error, "user_left not delivered everywhere");
        }
    }

    /// Claims every dead instance and tells its members' rooms.
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
            let removed = match self.store.claim_dead(&instance).await {
                Ok(removed) => removed,
                Err(error) => {
                    tracing::warn!(%error, instance, "cannot claim a dead instance");
                    continue;
                }
            };
            tracing::info!(
                instance,
                members = removed.len(),
                "instance is dead; its members left"
            );
            self.app.metrics.dead_instances_claimed.inc();
            for (room, name) in removed {
                let notice = UserLeft {
                    room: room.clone(),
                    name,
                    ts: protocol::now_ms(),
                    reason: LeaveReason::Disconnected,
                };
                if let Err(error) = self
                    .io
                    .to(room)
                    .emit(server_event::USER_LEFT, &notice)
                    .await
                {
                    self.app.metrics.adapter_errors.inc();
                    tracing::warn!(%error, "user_left of a dead instance not delivered everywhere");
                }
            }
        }
    }

    /// Gives Redis back what this instance knows: each room's sequence and
    /// recent history (so ids keep increasing) and the local members.
    async fn restore(&self) {
        for room in self.app.sequencer.snapshot() {
            tracing::debug!(room = room.room, last_id = room.last_id, "restoring a room");
            if let Err(error) = self
                .store
                .restore_room(&room.room, room.last_id, room.recent)
                .await
            {
                tracing::warn!(%error, room = room.room, "cannot restore a room");
            }
            for member in room.members {
                let member = Member {
                    name: member.name,
                    sid: member.socket.id.to_string(),
                    client_id: member.client_id,
                };
                if let Err(error) = self.store.join(&room.room, &member, Some(u64::MAX)).await {
                    tracing::warn!(%error, room = room.room, "cannot register a member again");
                }
            }
        }
        self.app.rooms_push.changed();
    }
}
