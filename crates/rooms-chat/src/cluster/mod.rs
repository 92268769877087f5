//! Cluster mode: the room state in Redis, shared by every instance.
//!
//! Every decision that several instances could race on is one Lua script
//! (files in `scripts/`): name uniqueness and the takeover, the position,
//! id, history and publish of every room event, the claim of a dead
//! instance. Redis runs scripts one at a time, so its execution order is
//! each room's order on every instance; the events travel on one Pub/Sub
//! channel that this instance's one subscriber ([`bus`]) reads in order,
//! and what that stream loses is fetched from the room's log.
//!
//! No client event waits on Redis longer than `REDIS_TIMEOUT_MS`: a
//! command that takes longer fails (the caller answers `unavailable`) and
//! marks the link down until the next heartbeat finds it working.

pub mod bus;
pub mod liveness;
pub mod schema;

use crate::health::Link;
use crate::metrics::Metrics;
use crate::room::event::RoomEvent;
use crate::store::{JoinOutcome, Joined, Member, Store, StoreEvent, name_key};
use anyhow::{Context, Result, anyhow};
use fred::clients::{Client, SubscriberClient};
use fred::interfaces::{ClientLike, KeysInterface, SetsInterface};
use fred::prelude::Builder;
use fred::types::FromValue;
use fred::types::Value;
use futures::future::{BoxFuture, FutureExt};
use protocol::rooms::{
    LeaveReason, RoomCount, RoomMessage, Typing, UserJoined, UserLeft, message_json_tail,
};
use redis_link::{LinkOptions, Script};
use schema::{
    EMPTY_ROOM_KEEP_SECS, EVENTS_CHANNEL, MemberRecord, PREFIX, instance_key, instance_members_key,
    key, record_head, room_key,
};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

struct Scripts {
    join: Script,
    leave: Script,
    append: Script,
    typing: Script,
    events_after: Script,
    history_after: Script,
    rooms: Script,
    heartbeat: Script,
    claim_dead: Script,
    restore_room: Script,
}

impl Scripts {
    fn new() -> Scripts {
        Scripts {
            join: Script::new(include_str!("scripts/join.lua")),
            leave: Script::new(include_str!("scripts/leave.lua")),
            append: Script::new(include_str!("scripts/append.lua")),
            typing: Script::new(include_str!("scripts/typing.lua")),
            events_after: Script::new(include_str!("scripts/events_after.lua")),
            history_after: Script::new(include_str!("scripts/history_after.lua")),
            rooms: Script::new(include_str!("scripts/rooms.lua")),
            heartbeat: Script::new(include_str!("scripts/heartbeat.lua")),
            claim_dead: Script::new(include_str!("scripts/claim_dead.lua")),
            restore_room: Script::new(include_str!("scripts/restore_room.lua")),
        }
    }
}

/// Whom a leave removes: the socket that holds the name, or whichever
/// socket of a dead instance does.
enum Holder<'a> {
    Socket(&'a str),
    Instance(&'a str),
}

pub struct RedisStore {
    client: Client,
    subscriber: SubscriberClient,
    instance: String,
    history_keep: usize,
    timeout: Duration,
    link: Arc<Link>,
    scripts: Scripts,
    metrics: Metrics,
}

/// The connection settings every client here needs (redis-link's one
/// reconnect policy): fail at start if Redis cannot be reached, and never
/// let a command hang longer than `timeout`. `pubsub_capacity` is the
/// buffer of fred's Pub/Sub receivers: a burst larger than that makes the
/// bus lag; lagging is detected and repaired (resync), and a large buffer
/// keeps it rare.
fn builder(url: &str, pubsub_capacity: usize, timeout: Duration) -> Result<Builder> {
    redis_link::connect::builder(
        url,
        &LinkOptions {
            command_timeout: timeout,
            pubsub_capacity,
            fail_fast: true,
        },
    )
}

/// How a [`RedisStore`] connects.
pub struct Settings<'a> {
    pub url: &'a str,
    pub instance: String,
    pub history_keep: usize,
    pub pubsub_capacity: usize,
    pub timeout: Duration,
}

impl RedisStore {
    /// Connects (failing if Redis cannot be reached now) and starts the bus.
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
        } = settings;
        let client = builder(url, pubsub_capacity, timeout)?
            .build()
            .context("build the Redis client")?;
        client
            .init()
            .await
            .with_context(|| format!("cannot connect to Redis at {url}"))?;
        let subscriber = builder(url, pubsub_capacity, timeout)?
            .build_subscriber_client()
            .context("build the Redis subscriber")?;
        subscriber
            .init()
            .await
            .with_context(|| format!("cannot connect to Redis at {url}"))?;
        let events = bus::subscribe(&subscriber, metrics.clone())
            .await
            .context("subscribe to the events channel")?;
        let store = RedisStore {
            client,
            subscriber,
            instance,
            history_keep,
            timeout,
            link,
            scripts: Scripts::new(),
            metrics,
        };
        Ok((store, events))
    }

    pub fn instance(&self) -> &str {
        &self.instance
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The connection that receives the events channel.
    pub fn subscriber(&self) -> &SubscriberClient {
        &self.subscriber
    }

    /// Runs a script within the timeout; a late answer marks the link down.
    async fn run<R: FromValue>(
        &self,
        script: &Script,
        keys: Vec<String>,
        args: Vec<String>,
    ) -> Result<R> {
        match tokio::time::timeout(self.timeout, script.run(&self.client, keys, args)).await {
            Ok(result) => Ok(result?),
            Err(_elapsed) => {
                self.link.set_up(false);
                Err(anyhow!("Redis did not answer within {:?}", self.timeout))
            }
        }
    }

    /// Says this instance is alive for `ttl`; false when its key had vanished
    /// (first beat, Redis restarted, or declared dead meanwhile).
    pub async fn heartbeat(&self, ttl: Duration) -> Result<bool> {
        let script = &self.scripts.heartbeat;
        let existed: i64 = script
            .run(
                &self.client,
                vec![instance_key(&self.instance), key("instances")],
                vec![self.instance.clone(), ttl.as_millis().to_string()],
            )
            .await
            .context("heartbeat")?;
        Ok(existed == 1)
    }

    /// Instances that said they were alive at some point.
    pub async fn instances(&self) -> Result<Vec<String>> {
        self.client
            .smembers(key("instances"))
            .await
            .context("list instances")
    }

    /// Whether `instance`'s heartbeat key exists.
    pub async fn is_alive(&self, instance: &str) -> Result<bool> {
        let count: i64 = self
            .client
            .exists(instance_key(instance))
            .await
            .context("check an instance")?;
        Ok(count > 0)
    }

    /// Removes a dead instance's members, telling their rooms; the (room,
    /// name) pairs removed, none if another instance claimed it first.
    pub async fn claim_dead(&self, dead: &str) -> Result<Vec<(String, String)>> {
        let held: Vec<String> = self
            .scripts
            .claim_dead
            .run(
                &self.client,
                vec![
                    key("instances"),
                    instance_key(dead),
                    instance_members_key(dead),
                ],
                vec![PREFIX.to_owned(), dead.to_owned()],
            )
            .await
            .context("claim a dead instance")?;
        let mut removed = Vec::new();
        for entry in held.chunks(3) {
            let [room, _key, name] = entry else { continue };
            let reason = LeaveReason::Disconnected;
            if self
                .remove(room, name, Holder::Instance(dead), reason)
                .await?
            {
                removed.push((room.clone(), name.clone()));
            }
        }
        Ok(removed)
    }

    /// A clean stop: this instance's members leave at once rather than
    /// when its heartbeat expires. The (room, name) pairs removed.
    pub async fn retire(&self) -> Result<Vec<(String, String)>> {
        let _: i64 = self
            .client
            .del(instance_key(&self.instance))
            .await
            .context("retire")?;
        self.claim_dead(&self.instance).await
    }

    /// After Redis lost its data: brings back `room`'s sequence, order and
    /// recent history from what this instance delivered.
    pub async fn restore_room(
        &self,
        room: &str,
        last_id: u64,
        last_pos: u64,
        recent: Vec<String>,
    ) -> Result<bool> {
        let mut args = vec![last_id.to_string(), last_pos.to_string()];
        args.extend(recent);
        let keys = vec![
            room_key(room, "seq"),
            room_key(room, "pos"),
            room_key(room, "history"),
        ];
        let restored: i64 = self
            .run(&self.scripts.restore_room, keys, args)
            .await
            .context("restore a room")?;
        Ok(restored == 1)
    }

    /// After Redis lost its data: registers a local member again, quietly.
    pub async fn rejoin(&self, room: &str, member: &Member) -> Result<JoinOutcome> {
        self.join_async(room, member, Some(u64::MAX), true).await
    }

    async fn join_async(
        &self,
        room: &str,
        member: &Member,
        since: Option<u64>,
        quiet: bool,
    ) -> Result<JoinOutcome> {
        let record = serde_json::to_string(&MemberRecord {
            name: &member.name,
            sid: &member.sid,
            instance: &self.instance,
            client_id: member.client_id.as_deref(),
        })?;
        let notice = serde_json::to_string(&UserJoined {
            room: room.to_owned(),
            name: member.name.clone(),
            ts: protocol::now_ms(),
        })?;
        let since = since.map_or_else(|| "-1".to_owned(), |since| since.to_string());
        let keys = vec![
            room_key(room, "members"),
            room_key(room, "seq"),
            room_key(room, "pos"),
            room_key(room, "history"),
            room_key(room, "log"),
            key("rooms"),
            instance_members_key(&self.instance),
        ];
        let args = vec![
            PREFIX.to_owned(),
            room.to_owned(),
            name_key(&member.name),
            record,
            member.sid.clone(),
            member.client_id.clone().unwrap_or_default(),
            since,
            protocol::HISTORY_LEN.to_string(),
            EVENTS_CHANNEL.to_owned(),
            record_head(room, &member.name),
            notice,
            self.history_keep.to_string(),
            if quiet { "1" } else { "0" }.to_owned(),
        ];
        let reply: Vec<Value> = self
            .run(&self.scripts.join, keys, args)
            .await
            .context("join")?;
        let [status, silent, last_id, position, members, history] =
            <[Value; 6]>::try_from(reply)
                .map_err(|reply| anyhow!("unexpected join reply {reply:?}"))?;
        if status.as_u64() == Some(0) {
            return Ok(JoinOutcome::NameTaken);
        }
        let members: Vec<String> = serde_json::from_str(&text(members)?)?;
        let history: Vec<RoomMessage> = serde_json::from_str(&text(history)?)?;
        Ok(JoinOutcome::Joined(Joined {
            members,
            history,
            last_id: last_id.as_u64().unwrap_or(0),
            position: position.as_u64().unwrap_or(0),
            silent: silent.as_u64() == Some(1),
        }))
    }

    async fn remove(
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
        let keys = vec![
            room_key(room, "members"),
            key("rooms"),
            room_key(room, "seq"),
            room_key(room, "pos"),
            room_key(room, "history"),
            room_key(room, "log"),
        ];
        let args = vec![
            PREFIX.to_owned(),
            room.to_owned(),
            name_key(name),
            field.to_owned(),
            id.to_owned(),
            EMPTY_ROOM_KEEP_SECS.to_string(),
            EVENTS_CHANNEL.to_owned(),
            record_head(room, name),
            notice,
            self.history_keep.to_string(),
        ];
        let removed: i64 = self
            .run(&self.scripts.leave, keys, args)
            .await
            .context("leave")?;
        Ok(removed == 1)
    }

    async fn append_async(&self, room: &str, from: &str, text: &str) -> Result<RoomMessage> {
        let ts = protocol::now_ms();
        let keys = vec![
            room_key(room, "seq"),
            room_key(room, "pos"),
            room_key(room, "history"),
            room_key(room, "log"),
        ];
        let args = vec![
            message_json_tail(room, from, text, ts),
            record_head(room, from),
            self.history_keep.to_string(),
            EVENTS_CHANNEL.to_owned(),
        ];
        let id: u64 = self
            .run(&self.scripts.append, keys, args)
            .await
            .context("append")?;
        self.metrics.cluster_messages_out.inc();
        Ok(RoomMessage {
            id,
            room: room.to_owned(),
            from: from.to_owned(),
            text: text.to_owned(),
            ts,
        })
    }

    async fn typing_async(&self, room: &str, name: &str, typing: bool) -> Result<()> {
        let notice = serde_json::to_string(&Typing {
            room: room.to_owned(),
            name: name.to_owned(),
            typing,
        })?;
        let args = vec![record_head(room, name), notice, EVENTS_CHANNEL.to_owned()];
        let _position: u64 = self
            .run(&self.scripts.typing, vec![room_key(room, "pos")], args)
            .await
            .context("typing")?;
        Ok(())
    }

    async fn events_after_async(&self, room: &str, after: u64) -> Result<Vec<Arc<RoomEvent>>> {
        let keys = vec![room_key(room, "pos"), room_key(room, "log")];
        let records: Vec<String> = self
            .run(&self.scripts.events_after, keys, vec![after.to_string()])
            .await
            .context("read the room's log")?;
        records
            .iter()
            .map(|record| RoomEvent::from_record(record))
            .collect()
    }

    async fn history_after_async(&self, room: &str, after: u64) -> Result<Vec<RoomMessage>> {
        let keys = vec![room_key(room, "seq"), room_key(room, "history")];
        let entries: Vec<String> = self
            .run(&self.scripts.history_after, keys, vec![after.to_string()])
            .await
            .context("read the history")?;
        entries
            .iter()
            .map(|entry| serde_json::from_str(entry).context("parse the history"))
            .collect()
    }

    async fn rooms_async(&self) -> Result<Vec<RoomCount>> {
        let flat: Vec<Value> = self
            .run(
                &self.scripts.rooms,
                vec![key("rooms")],
                vec![PREFIX.to_owned()],
            )
            .await
            .context("list rooms")?;
        let mut rooms = Vec::with_capacity(flat.len() / 2);
        let mut items = flat.into_iter();
        while let (Some(name), Some(count)) = (items.next(), items.next()) {
            rooms.push(RoomCount {
                name: text(name)?,
                members: count.as_u64().unwrap_or(0),
            });
        }
        rooms.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(rooms)
    }
}

impl Store for RedisStore {
    fn join<'a>(
        &'a self,
        room: &'a str,
        member: &'a Member,
        since: Option<u64>,
    ) -> BoxFuture<'a, Result<JoinOutcome>> {
        self.join_async(room, member, since, false).boxed()
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
        self.append_async(room, from, text).boxed()
    }

    fn typing<'a>(
        &'a self,
        room: &'a str,
        name: &'a str,
        typing: bool,
    ) -> BoxFuture<'a, Result<()>> {
        self.typing_async(room, name, typing).boxed()
    }

    fn events_after<'a>(
        &'a self,
        room: &'a str,
        after: u64,
    ) -> BoxFuture<'a, Result<Vec<Arc<RoomEvent>>>> {
        self.events_after_async(room, after).boxed()
    }

    fn history_after<'a>(
        &'a self,
        room: &'a str,
        after: u64,
    ) -> BoxFuture<'a, Result<Vec<RoomMessage>>> {
        self.history_after_async(room, after).boxed()
    }

    fn rooms(&self) -> BoxFuture<'_, Result<Vec<RoomCount>>> {
        self.rooms_async().boxed()
    }
}

fn text(value: Value) -> Result<String> {
    value
        .into_string()
        .context("expected text in a Redis reply")
}
