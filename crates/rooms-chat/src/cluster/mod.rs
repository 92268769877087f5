//! Cluster mode: the room state in Redis (one Redis, or the masters of a
//! Redis Cluster), shared by every instance.
//!
//! Every decision that several instances could race on is one Lua script
//! (files in `scripts/`) on the keys of one hash tag: name uniqueness and
//! the takeover, the position, id, history and publish of every room event
//! (one room: one shard), the claim of a dead instance (the control tag).
//! Redis runs scripts one at a time, so a shard's execution order is each
//! of its rooms' order on every instance; a room's events travel on its
//! own sharded channel, which an instance subscribes to while the room has
//! local members (`watch`), and what that stream loses is fetched from
//! the room's log. What spans rooms (the room list and counts, heartbeats,
//! who holds members where) lives under the control tag and follows the
//! room scripts' answers (`registry`).
//!
//! No client event waits on Redis longer than `REDIS_TIMEOUT_MS`: a
//! command that takes longer fails (the caller answers `unavailable`) and
//! marks its shard down until the next heartbeat finds it working; a call
//! to a shard known down fails at once.
//!
//! Files: `shards` (the nodes), `topology` (following failovers),
//! `schema` (keys), `members` (join,
//! leave), `events` (messages, typing, the log), `registry` (room list,
//! instances), `watch` (subscriptions), `bus` (the subscribers),
//! `liveness` (heartbeats, dead instances, restore).

pub(crate) mod bus;
mod events;
mod held;
pub(crate) mod liveness;
mod members;
pub(crate) mod registry;
pub(crate) mod schema;
pub(crate) mod shards;
pub(crate) mod topology;
pub(crate) mod watch;

use crate::health::Link;
use crate::metrics::Metrics;
use crate::room::event::RoomEvent;
use crate::store::{JoinOutcome, Joiner, Store, StoreEvent};
use anyhow::{Result, anyhow, bail};
use fred::error::ErrorKind;
use fred::interfaces::ClientLike;
use fred::types::{CustomCommand, FromValue};
use futures::future::{BoxFuture, FutureExt};
use members::Holder;
use parking_lot::Mutex;
use protocol::rooms::{LeaveReason, RoomCount, RoomMessage};
use redis_link::{LinkOptions, Script};
use shards::{Shard, Shards};
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use watch::Watch;

struct Scripts {
    join: Script,
    leave: Script,
    held_by: Script,
    append: Script,
    typing: Script,
    after: Script,
    count: Script,
    rooms: Script,
    heartbeat: Script,
    claim_dead: Script,
    restore_room: Script,
    resume_room: Script,
}

impl Scripts {
    fn new() -> Scripts {
        Scripts {
            join: Script::new(include_str!("scripts/join.lua")),
            leave: Script::new(include_str!("scripts/leave.lua")),
            held_by: Script::new(include_str!("scripts/held_by.lua")),
            append: Script::new(include_str!("scripts/append.lua")),
            typing: Script::new(include_str!("scripts/typing.lua")),
            after: Script::new(include_str!("scripts/after.lua")),
            count: Script::new(include_str!("scripts/count.lua")),
            rooms: Script::new(include_str!("scripts/rooms.lua")),
            heartbeat: Script::new(include_str!("scripts/heartbeat.lua")),
            claim_dead: Script::new(include_str!("scripts/claim_dead.lua")),
            restore_room: Script::new(include_str!("scripts/restore_room.lua")),
            resume_room: Script::new(include_str!("scripts/resume_room.lua")),
        }
    }
}

/// The room state in Redis, shared by every instance: the cluster-mode
/// [`Store`].
pub struct RedisStore {
    shards: Arc<Shards>,
    watch: Arc<Watch>,
    instance: String,
    history_keep: usize,
    timeout: Duration,
    wait_replicas: u32,
    link: Arc<Link>,
    scripts: Scripts,
    metrics: Metrics,
    /// Room counts the room list has not taken yet (its shard was down):
    /// the latest `(position, count)` per room, sent again at each heartbeat.
    pending_counts: Mutex<HashMap<String, (u64, u64)>>,
}

/// How a [`RedisStore`] connects.
pub struct Settings<'a> {
    /// `REDIS_URL`: one Redis, a Sentinel set or a Redis Cluster.
    pub url: &'a str,
    /// This instance's name, under which its members are held.
    pub instance: String,
    /// Messages kept per room for a join's history.
    pub history_keep: usize,
    /// The buffer of fred's Pub/Sub receivers: a burst larger than that
    /// makes the bus lag; lagging is detected and repaired (resync), and a
    /// large buffer keeps it rare.
    pub pubsub_capacity: usize,
    /// `REDIS_TIMEOUT_MS`: the longest a client event waits on Redis.
    pub timeout: Duration,
    /// Replicas that must have a write before its ack says `ok` (`WAIT`).
    pub wait_replicas: u32,
}

impl RedisStore {
    /// Connects to every shard (failing if one cannot be reached now) and
    /// starts the bus.
    pub async fn connect(
        settings: Settings<'_>,
        link: Arc<Link>,
        metrics: Metrics,
    ) -> Result<(RedisStore, mpsc::UnboundedReceiver<StoreEvent>)> {
        let Settings {
            url,
            instance,
            history_keep,
            pubsub_capacity,
            timeout,
            wait_replicas,
        } = settings;
        // fail_fast: the instance needs Redis to start; afterwards each
        // shard's connection comes back by itself.
        let options = LinkOptions {
            command_timeout: timeout,
            pubsub_capacity,
            fail_fast: true,
        };
        let shards = Arc::new(Shards::connect(url, &options).await?);
        let watch = Arc::new(Watch::new(shards.clone(), instance.clone(), timeout));
        let events = bus::start(&shards, watch.clone(), metrics.clone()).await?;
        let store = RedisStore {
            shards,
            watch,
            instance,
            history_keep,
            timeout,
            wait_replicas,
            link,
            scripts: Scripts::new(),
            metrics,
            pending_counts: Mutex::new(HashMap::new()),
        };
        Ok((store, events))
    }

    /// This instance's name.
    pub(crate) fn instance(&self) -> &str {
        &self.instance
    }

    /// The Redis nodes, one per shard.
    pub fn shards(&self) -> &Shards {
        &self.shards
    }

    /// The shards, for a task that outlives a borrow of the store.
    pub(crate) fn shards_handle(&self) -> Arc<Shards> {
        self.shards.clone()
    }

    /// The room channels this instance subscribes to.
    pub fn watch(&self) -> &Watch {
        &self.watch
    }

    /// The shard that holds `room`.
    fn shard_of(&self, room: &str) -> &Arc<Shard> {
        self.shards.of_key(&schema::room_key(room, "pos"))
    }

    /// Runs a script on `shard` within the timeout.
    async fn run<R: FromValue>(
        &self,
        shard: &Shard,
        script: &Script,
        keys: Vec<String>,
        args: Vec<String>,
    ) -> Result<R> {
        self.on(shard, script.run(&shard.client(), keys, args))
            .await
    }

    /// With `REDIS_WAIT_REPLICAS`, waits until that many replicas of
    /// `shard` have every write made so far on its connection (`WAIT`),
    /// within the timeout: a message's ack that says `ok` then means "on a
    /// replica too". Fewer replicas in time is an error (the ack says
    /// `unavailable`, though members may have had the message already).
    /// Joins and leaves do not wait: a join refused after its script ran
    /// would leave its name held by nobody.
    async fn replicated(&self, shard: &Shard) -> Result<()> {
        if self.wait_replicas == 0 {
            return Ok(());
        }
        let client = shard.client();
        // Half the command timeout: a replica that does not answer makes
        // this ack fail, never the shard count as down.
        let args = vec![
            self.wait_replicas.to_string(),
            (self.timeout / 2).as_millis().to_string(),
        ];
        let command = CustomCommand::new_static("WAIT", None, false);
        let confirmed: u64 = self.on(shard, client.custom(command, args)).await?;
        if confirmed < u64::from(self.wait_replicas) {
            bail!(
                "{confirmed} of {} replicas of {} confirmed in time",
                self.wait_replicas,
                shard.name()
            );
        }
        Ok(())
    }

    /// Runs a script on `shard` even while it counts as down: what gives
    /// a shard that restarted empty its state back, before it serves.
    async fn run_to_restore<R: FromValue>(
        &self,
        shard: &Shard,
        script: &Script,
        keys: Vec<String>,
        args: Vec<String>,
    ) -> Result<R> {
        self.within(shard, script.run(&shard.client(), keys, args))
            .await
    }

    /// Waits for a command on `shard` at most the timeout; a late answer
    /// marks the shard down, and a shard known down is not asked at all.
    async fn on<R>(
        &self,
        shard: &Shard,
        command: impl Future<Output = Result<R, fred::error::Error>>,
    ) -> Result<R> {
        if !shard.is_up() {
            return Err(anyhow!("the Redis shard at {} is down", shard.name()));
        }
        self.within(shard, command).await
    }

    async fn within<R>(
        &self,
        shard: &Shard,
        command: impl Future<Output = Result<R, fred::error::Error>>,
    ) -> Result<R> {
        // fred's own timeout (the same `timeout`) ends the command first and
        // marks it, so that fred never writes it later, after a reconnect,
        // when its caller has long had `unavailable`; this one is a backstop.
        match tokio::time::timeout(self.timeout * 2, command).await {
            Ok(Ok(reply)) => return Ok(reply),
            Ok(Err(error)) if *error.kind() != ErrorKind::Timeout => {
                if is_redirect(&error) {
                    // The slot lives elsewhere now: a failover or a resharding.
                    self.shards.recheck.notify_one();
                }
                return Err(error.into());
            }
            Ok(Err(_)) | Err(_) => {}
        }
        shard.set_up(false);
        tell_link(&self.link, &self.shards);
        Err(anyhow!(
            "Redis at {} did not answer within {:?}",
            shard.name(),
            self.timeout
        ))
    }
}

/// Whether Redis Cluster sent the command elsewhere (`MOVED`, `ASK`).
fn is_redirect(error: &fred::error::Error) -> bool {
    let details = error.details();
    details.starts_with("MOVED") || details.starts_with("ASK")
}

/// The instance's link as its shards are: up while any answers (their
/// rooms are served), degraded while some do not.
fn tell_link(link: &Link, shards: &Shards) {
    link.set_up(shards.any_up());
    link.set_degraded(!shards.all_up());
}

impl Store for RedisStore {
    fn join<'a>(
        &'a self,
        room: &'a str,
        member: &'a Joiner,
        since: Option<u64>,
    ) -> BoxFuture<'a, Result<JoinOutcome>> {
        self.join_room(room, member, since, false).boxed()
    }

    fn leave<'a>(
        &'a self,
        room: &'a str,
        name: &'a str,
        sid: &'a str,
        reason: LeaveReason,
    ) -> BoxFuture<'a, Result<bool>> {
        self.remove(room, name, Holder::Socket(sid), reason).boxed()
    }

    fn append<'a>(
        &'a self,
        room: &'a str,
        from: &'a str,
        text: &'a str,
    ) -> BoxFuture<'a, Result<RoomMessage>> {
        self.append_message(room, from, text).boxed()
    }

    fn typing<'a>(
        &'a self,
        room: &'a str,
        name: &'a str,
        typing: bool,
    ) -> BoxFuture<'a, Result<()>> {
        self.send_typing(room, name, typing).boxed()
    }

    fn events_after<'a>(
        &'a self,
        room: &'a str,
        after: u64,
    ) -> BoxFuture<'a, Result<Vec<Arc<RoomEvent>>>> {
        self.room_events_after(room, after).boxed()
    }

    fn history_after<'a>(
        &'a self,
        room: &'a str,
        after: u64,
    ) -> BoxFuture<'a, Result<Vec<RoomMessage>>> {
        self.room_history_after(room, after).boxed()
    }

    fn rooms(&self) -> BoxFuture<'_, Result<Vec<RoomCount>>> {
        self.room_list().boxed()
    }

    fn hold<'a>(
        &'a self,
        pid: &'a str,
        state: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<()>> {
        self.hold_state(pid, state, ttl).boxed()
    }

    fn take_held<'a>(&'a self, pid: &'a str) -> BoxFuture<'a, Result<Option<String>>> {
        self.take_held_state(pid).boxed()
    }
}
