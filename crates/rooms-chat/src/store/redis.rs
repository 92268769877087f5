//! Cluster mode: the room state in Redis, shared by every instance.
//!
//! Every decision that several instances could race on is one Lua script
//! (files in `lua/`): name uniqueness and the takeover, the id + history +
//! publish of a message, the claim of a dead instance. Messages and
//! room-list changes travel on one Pub/Sub channel that every instance reads
//! in order; the sequencer repairs whatever that stream loses.
//!
//! Keys (prefix `rooms-chat:`): `seq:<room>`, `history:<room>`,
//! `members:<room>` (name key → member record), `rooms` (rooms with
//! members), `instances`, `instance:<id>` (heartbeat),
//! `instance-members:<id>` (what an instance's sockets hold).

use super::{Envelope, JoinOutcome, Joined, Member, Store, StoreEvent, name_key};
use crate::metrics::Metrics;
use anyhow::{Context, Result, bail};
use fred::clients::{Client, SubscriberClient};
use fred::interfaces::LuaInterface;
use fred::interfaces::{ClientLike, EventInterface, PubsubInterface};
use fred::prelude::{Builder, Config, ReconnectPolicy};
use fred::types::Value;
use fred::types::{FromValue, MultipleKeys, MultipleValues};
use futures::future::{BoxFuture, FutureExt};
use protocol::rooms::{RoomCount, RoomMessage};
use serde::Serialize;
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc};

/// Every key and the channel start with this.
pub const PREFIX: &str = "rooms-chat:";

/// How long Redis commands may take before the caller hears `unavailable`.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(2);

/// How long an empty room keeps its sequence and history, in seconds.
const EMPTY_ROOM_KEEP_SECS: u64 = 24 * 3600;

/// A Lua script run with `EVALSHA`, loaded on first use and again after
/// Redis forgot it (a restart).
struct LuaScript {
    source: &'static str,
    sha: Mutex<Option<String>>,
}

impl LuaScript {
    fn new(source: &'static str) -> LuaScript {
        LuaScript {
            source,
            sha: Mutex::new(None),
        }
    }

    async fn run<R: FromValue>(
        &self,
        client: &Client,
        keys: Vec<String>,
        args: Vec<String>,
    ) -> Result<R> {
        let keys = MultipleKeys::from(keys);
        let args = MultipleValues::try_from(args)?;
        for _ in 0..2 {
            let known = self.sha.lock().unwrap().clone();
            let sha = match known {
                Some(sha) => sha,
                None => {
                    let sha: String = client.script_load(self.source).await?;
                    *self.sha.lock().unwrap() = Some(sha.clone());
                    sha
                }
            };
            match client.evalsha(sha, keys.clone(), args.clone()).await {
                Err(error) if error.details().starts_with("NOSCRIPT") => {
                    *self.sha.lock().unwrap() = None;
                }
                result => return Ok(result?),
            }
        }
        bail!("Redis keeps forgetting a script")
    }
}

struct Scripts {
    join: LuaScript,
    leave: LuaScript,
    append: LuaScript,
    history_after: LuaScript,
    rooms: LuaScript,
    heartbeat: LuaScript,
    claim_dead: LuaScript,
    restore_room: LuaScript,
}

impl Scripts {
    fn new() -> Scripts {
        Scripts {
            join: LuaScript::new(include_str!("lua/join.lua")),
            leave: LuaScript::new(include_str!("lua/leave.lua")),
            append: LuaScript::new(include_str!("lua/append.lua")),
            history_after: LuaScript::new(include_str!("lua/history_after.lua")),
            rooms: LuaScript::new(include_str!("lua/rooms.lua")),
            heartbeat: LuaScript::new(include_str!("lua/heartbeat.lua")),
            claim_dead: LuaScript::new(include_str!("lua/claim_dead.lua")),
            restore_room: LuaScript::new(include_str!("lua/restore_room.lua")),
        }
    }
}

/// What Redis keeps about a member.
#[derive(Serialize)]
struct MemberRecord<'a> {
    name: &'a str,
    sid: &'a str,
    instance: &'a str,
    #[serde(rename = "clientId", skip_serializing_if = "Option::is_none")]
    client_id: Option<&'a str>,
}

/// A message without its id: the append script puts the id in front.
#[derive(Serialize)]
struct MessageTail<'a> {
    room: &'a str,
    from: &'a str,
    text: &'a str,
    ts: i64,
}

pub struct RedisStore {
    client: Client,
    subscriber: SubscriberClient,
    instance: String,
    history_keep: usize,
    scripts: Scripts,
    metrics: Metrics,
}

/// A fred config with the reconnect policy and timeouts every client here needs:
/// retry forever every half second, and never let a command hang.
/// `pubsub_capacity` is the buffer of fred's Pub/Sub broadcast receivers: a
/// burst larger than that makes a receiver lag; lagging is detected and
/// repaired (resync), and a large buffer keeps it rare.
pub fn builder(url: &str, pubsub_capacity: usize) -> Result<Builder> {
    let mut config =
        Config::from_url(url).with_context(|| format!("REDIS_URL={url:?} is not a Redis URL"))?;
    // The adapter's driver needs RESP3; the other clients are fine with it too.
    config.version = fred::types::RespVersion::RESP3;
    let mut builder = Builder::from_config(config);
    builder
        .with_performance_config(|performance| {
            performance.default_command_timeout = COMMAND_TIMEOUT;
            performance.broadcast_channel_capacity = pubsub_capacity;
        })
        .with_connection_config(|connection| {
            connection.connection_timeout = COMMAND_TIMEOUT;
            connection.internal_command_timeout = COMMAND_TIMEOUT;
        })
        .set_policy(ReconnectPolicy::new_constant(0, 500));
    Ok(builder)
}

impl RedisStore {
    /// Connects (failing if Redis cannot be reached now) and starts reading
    /// the event channel. `instance` names this process in member records.
    pub async fn connect(
        url: &str,
        instance: String,
        history_keep: usize,
        pubsub_capacity: usize,
        metrics: Metrics,
    ) -> Result<(RedisStore, mpsc::UnboundedReceiver<StoreEvent>)> {
        let client = builder(url, pubsub_capacity)?
            .build()
            .context("build the Redis client")?;
        client
            .init()
            .await
            .with_context(|| format!("cannot connect to Redis at {url}"))?;
        let subscriber = builder(url, pubsub_capacity)?
            .build_subscriber_client()
            .context("build the Redis subscriber")?;
        subscriber
            .init()
            .await
            .with_context(|| format!("cannot connect to Redis at {url}"))?;
        let _resubscriber = crate::resubscribe::keep_subscriptions(&subscriber);
        let (events, receiver) = mpsc::unbounded_channel();
        tokio::spawn(read_events(subscriber.clone(), events, metrics.clone()));
        subscriber
            .subscribe(events_channel())
            .await
            .context("subscribe to the events channel")?;
        let store = RedisStore {
            client,
            subscriber,
            instance,
            history_keep,
            scripts: Scripts::new(),
            metrics,
        };
        Ok((store, receiver))
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

    /// Says this instance is alive for `ttl`; false when its key had vanished
    /// (first beat, Redis restarted, or declared dead meanwhile).
    pub async fn heartbeat(&self, ttl: Duration) -> Result<bool> {
        let existed: i64 = self
            .scripts
            .heartbeat
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
        use fred::interfaces::SetsInterface;
        self.client
            .smembers(key("instances"))
            .await
            .context("list instances")
    }

    /// Whether `instance`'s heartbeat key exists.
    pub async fn is_alive(&self, instance: &str) -> Result<bool> {
        use fred::interfaces::KeysInterface;
        let count: i64 = self
            .client
            .exists(instance_key(instance))
            .await
            .context("check an instance")?;
        Ok(count > 0)
    }

    /// Removes a dead instance's members; the (room, name) pairs removed,
    /// empty if another instance claimed it first.
    pub async fn claim_dead(&self, dead: &str) -> Result<Vec<(String, String)>> {
        let removed: Vec<String> = self
            .scripts
            .claim_dead
            .run(
                &self.client,
                vec![
                    key("instances"),
                    instance_key(dead),
                    instance_members_key(dead),
                    key("rooms"),
                ],
                vec![
                    PREFIX.to_owned(),
                    dead.to_owned(),
                    events_channel().to_owned(),
                ],
            )
            .await
            .context("claim a dead instance")?;
        let mut pairs = Vec::with_capacity(removed.len() / 2);
        let mut items = removed.into_iter();
        while let (Some(room), Some(name)) = (items.next(), items.next()) {
            pairs.push((room, name));
        }
        Ok(pairs)
    }

    /// A clean stop: this instance's members leave at once rather than
    /// when its heartbeat expires. The (room, name) pairs removed.
    pub async fn retire(&self) -> Result<Vec<(String, String)>> {
        use fred::interfaces::KeysInterface;
        let _: i64 = self
            .client
            .del(instance_key(&self.instance))
            .await
            .context("retire")?;
        self.claim_dead(&self.instance).await
    }

    /// After Redis lost its data: brings back `room`'s sequence and recent
    /// history from what this instance delivered.
    pub async fn restore_room(
        &self,
        room: &str,
        last_id: u64,
        recent: Vec<String>,
    ) -> Result<bool> {
        let mut args = vec![last_id.to_string()];
        args.extend(recent);
        let restored: i64 = self
            .scripts
            .restore_room
            .run(&self.client, vec![seq_key(room), history_key(room)], args)
            .await
            .context("restore a room")?;
        Ok(restored == 1)
    }

    async fn join_async(
        &self,
        room: &str,
        member: &Member,
        since: Option<u64>,
    ) -> Result<JoinOutcome> {
        let name_key = name_key(&member.name);
        let record = serde_json::to_string(&MemberRecord {
            name: &member.name,
            sid: &member.sid,
            instance: &self.instance,
            client_id: member.client_id.as_deref(),
        })?;
        let since = since.map_or_else(|| "-1".to_owned(), |since| since.to_string());
        let reply: Vec<Value> = self
            .scripts
            .join
            .run(
                &self.client,
                vec![
                    members_key(room),
                    seq_key(room),
                    history_key(room),
                    key("rooms"),
                    instance_members_key(&self.instance),
                ],
                vec![
                    PREFIX.to_owned(),
                    room.to_owned(),
                    name_key,
                    record,
                    member.sid.clone(),
                    member.client_id.clone().unwrap_or_default(),
                    since,
                    protocol::HISTORY_LEN.to_string(),
                    events_channel().to_owned(),
                ],
            )
            .await
            .context("join")?;
        let [status, silent, last_id, members, history] = <[Value; 5]>::try_from(reply)
            .map_err(|reply| anyhow::anyhow!("unexpected join reply {reply:?}"))?;
        if status.as_u64() == Some(0) {
            return Ok(JoinOutcome::NameTaken);
        }
        let members: Vec<String> = serde_json::from_str(&text(members)?)?;
        let history: Vec<RoomMessage> = serde_json::from_str(&text(history)?)?;
        Ok(JoinOutcome::Joined(Joined {
            members,
            history,
            last_id: last_id.as_u64().unwrap_or(0),
            silent: silent.as_u64() == Some(1),
        }))
    }

    async fn leave_async(&self, room: &str, name: &str, sid: &str) -> Result<bool> {
        let removed: i64 = self
            .scripts
            .leave
            .run(
                &self.client,
                vec![
                    members_key(room),
                    key("rooms"),
                    seq_key(room),
                    history_key(room),
                ],
                vec![
                    PREFIX.to_owned(),
                    room.to_owned(),
                    name_key(name),
                    sid.to_owned(),
                    EMPTY_ROOM_KEEP_SECS.to_string(),
                    events_channel().to_owned(),
                ],
            )
            .await
            .context("leave")?;
        Ok(removed == 1)
    }

    async fn append_async(&self, room: &str, from: &str, text: &str) -> Result<RoomMessage> {
        let ts = protocol::now_ms();
        let tail = serde_json::to_string(&MessageTail {
            room,
            from,
            text,
            ts,
        })?;
        // `{"room":…}` becomes `,"room":…}` to follow `{"id":N`.
        let tail = format!(",{}", &tail[1..]);
        let id: u64 = self
            .scripts
            .append
            .run(
                &self.client,
                vec![seq_key(room), history_key(room)],
                vec![
                    tail,
                    self.history_keep.to_string(),
                    events_channel().to_owned(),
                ],
            )
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

    async fn history_after_async(&self, room: &str, after: u64) -> Result<Vec<RoomMessage>> {
        let entries: Vec<String> = self
            .scripts
            .history_after
            .run(
                &self.client,
                vec![seq_key(room), history_key(room)],
                vec![after.to_string()],
            )
            .await
            .context("read the history")?;
        entries
            .iter()
            .map(|entry| serde_json::from_str(entry).context("parse the history"))
            .collect()
    }

    async fn rooms_async(&self) -> Result<Vec<RoomCount>> {
        let flat: Vec<Value> = self
            .scripts
            .rooms
            .run(&self.client, vec![key("rooms")], vec![PREFIX.to_owned()])
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
        self.join_async(room, member, since).boxed()
    }

    fn leave<'a>(
        &'a self,
        room: &'a str,
        name: &'a str,
        sid: &'a str,
    ) -> BoxFuture<'a, Result<bool>> {
        self.leave_async(room, name, sid).boxed()
    }

    fn append<'a>(
        &'a self,
        room: &'a str,
        from: &'a str,
        text: &'a str,
    ) -> BoxFuture<'a, Result<RoomMessage>> {
        self.append_async(room, from, text).boxed()
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

/// Turns the events channel into [`StoreEvent`]s. A lag (messages skipped
/// by fred's broadcast) or a reconnect (messages published meanwhile are
/// gone) becomes a `Resync`, so the sequencer fetches what was missed.
async fn read_events(
    subscriber: SubscriberClient,
    events: mpsc::UnboundedSender<StoreEvent>,
    metrics: Metrics,
) {
    let mut messages = subscriber.message_rx();
    let mut reconnects = subscriber.reconnect_rx();
    loop {
        let event = tokio::select! {
            received = messages.recv() => match received {
                Ok(message) => match parse_event(&message.value) {
                    Ok(event) => event,
                    Err(error) => {
                        tracing::warn!(%error, "ignoring a bad event from Redis");
                        continue;
                    }
                },
                Err(broadcast::error::RecvError::Lagged(skipped)) => {
                    tracing::warn!(skipped, "Redis event stream lagged; re-checking every room");
                    StoreEvent::Resync
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
            reconnected = reconnects.recv() => match reconnected {
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => StoreEvent::Resync,
                Err(broadcast::error::RecvError::Closed) => return,
            },
        };
        if let StoreEvent::Message(_) = event {
            metrics.cluster_messages_in.inc();
        }
        if events.send(event).is_err() {
            return;
        }
    }
}

fn parse_event(value: &Value) -> Result<StoreEvent> {
    let Some(payload) = value.as_str() else {
        bail!("not text");
    };
    let (kind, body) = payload.split_at(payload.len().min(1));
    match kind {
        "m" => Ok(StoreEvent::Message(Envelope::from_json(body)?)),
        "r" => Ok(StoreEvent::RoomsChanged),
        "x" => {
            #[derive(serde::Deserialize)]
            struct Evicted {
                room: String,
                sid: String,
            }
            let evicted: Evicted = serde_json::from_str(body)?;
            Ok(StoreEvent::Evicted {
                room: evicted.room,
                sid: evicted.sid,
            })
        }
        _ => bail!("unknown event kind {kind:?}"),
    }
}

fn text(value: Value) -> Result<String> {
    value
        .into_string()
        .context("expected text in a Redis reply")
}

fn key(name: &str) -> String {
    format!("{PREFIX}{name}")
}

fn seq_key(room: &str) -> String {
    format!("{PREFIX}seq:{room}")
}

fn history_key(room: &str) -> String {
    format!("{PREFIX}history:{room}")
}

fn members_key(room: &str) -> String {
    format!("{PREFIX}members:{room}")
}

fn instance_key(instance: &str) -> String {
    format!("{PREFIX}instance:{instance}")
}

fn instance_members_key(instance: &str) -> String {
    format!("{PREFIX}instance-members:{instance}")
}

/// The channel of room messages and room-state changes.
pub fn events_channel() -> &'static str {
    "rooms-chat:events"
}
