//! Cluster mode (`REDIS_URL`): several instances serve one feed.
//!
//! - Exactly one instance produces: it holds a lease, a Redis key set with
//!   `SET NX PX` and renewed while it lives. Every step is appended by a Lua
//!   script that first checks the lease is still ours, so an instance that
//!   lost its lease (paused, cut off) can never append behind the new
//!   producer's back. A producer that dies stops renewing; another instance
//!   takes the lease within [`LEASE_TTL`] + [`LEASE_POLL`] and continues
//!   from the last quotes, which the script keeps in a hash.
//! - Ticks go through a Redis stream (`XADD ... MAXLEN ~ REPLAY_TICKS`).
//!   Every instance, the producer included, tails it (`XREAD BLOCK`) into its
//!   hub. A tick's SSE id is its stream id, so a client can resume on any
//!   instance: from the instance's replay buffer (its last
//!   [`LOCAL_REPLAY_TICKS`]), or from `XRANGE` up to where that buffer
//!   takes over.
//! - Redis down: streams stay open (quiet but for keep-alives), `/healthz`
//!   answers 503, and the tail catches up when Redis is back. Each entry
//!   names the one before it, so if Redis came back without the stream
//!   (restarted empty) the tail sees the hole and every stream is reset.

use crate::event_id::EventId;
use crate::feed::RandomWalk;
use crate::hub::{Hub, NewTick};
use anyhow::{Context, Result};
use fred::prelude::*;
use fred::types::streams::XReadResponse;
use ops::Shutdown;
use ops::metrics::{HealthCheck, HealthReport};
use protocol::sse::Quote;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Ticks an instance keeps in memory in cluster mode; a client resuming
/// from further back is replayed from the Redis stream, which keeps
/// `REPLAY_TICKS`. Every instance holds the same recent window, so most
/// resumes never touch Redis, and memory per instance stays small.
pub const LOCAL_REPLAY_TICKS: usize = 1024;
/// How long the lease outlives its holder's last renewal.
pub const LEASE_TTL: Duration = Duration::from_millis(2000);
/// How often a standby instance tries to take the lease.
pub const LEASE_POLL: Duration = Duration::from_millis(500);
/// How often the holder renews (besides every append).
const LEASE_RENEW: Duration = Duration::from_millis(600);
/// How long one `XREAD` blocks before it is issued again.
const TAIL_BLOCK: Duration = Duration::from_millis(1000);
/// Most stream entries read at once.
const TAIL_BATCH: u64 = 1000;
/// Pause after a failed Redis command before the next try.
const RETRY_PAUSE: Duration = Duration::from_millis(250);
/// Longest wait for one Redis command (except the blocking read).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(2);

/// The stream field that holds a tick's quote (JSON).
const QUOTE_FIELD: &str = "quote";
/// The stream field that holds the id of the entry before.
const PREV_FIELD: &str = "prev";

/// Renews the lease if `ARGV[1]` holds it.
const RENEW_SCRIPT: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"#;

/// Deletes the lease if `ARGV[1]` holds it.
const RELEASE_SCRIPT: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"#;

/// Appends one step if `ARGV[1]` holds the lease (renewing it), and keeps
/// each symbol's latest quote; returns the new stream ids, or nil when the
/// lease is not ours. ARGV: token, ttl ms, maxlen, then symbol/quote pairs.
///
/// Each entry also records the id of the entry before it (`prev`), so a
/// reader can tell that it missed nothing: if Redis restarts empty, the
/// first new entry names `0-0`, not the last entry the reader saw.
const APPEND_SCRIPT: &str = r#"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return false
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
local prev = '0-0'
local last = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)
if #last > 0 then
  prev = last[1][1]
end
local ids = {}
for i = 4, #ARGV, 2 do
  prev = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', 'quote', ARGV[i + 1], 'prev', prev)
  ids[#ids + 1] = prev
  redis.call('HSET', KEYS[3], ARGV[i], ARGV[i + 1])
end
return ids
"#;

/// The Redis keys of one feed.
struct Keys {
    lease: String,
    stream: String,
    quotes: String,
}

impl Keys {
    fn new(prefix: &str) -> Keys {
        Keys {
            lease: format!("{prefix}:producer"),
            stream: format!("{prefix}:ticks"),
            quotes: format!("{prefix}:quotes"),
        }
    }
}

pub struct Cluster {
    /// Lease, appends, replays.
    commands: Client,
    /// A connection of its own for the blocking `XREAD`, so it never delays
    /// the commands.
    tail: Client,
    keys: Keys,
    /// This instance's lease token.
    token: String,
    replay_ticks: usize,
    hub: Arc<Hub>,
    /// Whether the last read of the stream succeeded.
    tail_ok: AtomicBool,
}

impl Cluster {
    /// Starts the Redis clients; they connect (and reconnect) in the
    /// background, so an instance starts even while Redis is down.
    pub fn connect(url: &str, hub: Arc<Hub>, replay_ticks: usize) -> Result<Arc<Cluster>> {
        let config = Config {
            // Keep trying at start-up too instead of failing.
            fail_fast: false,
            ..Config::from_url(url).with_context(|| format!("REDIS_URL={url:?} is invalid"))?
        };
        let build = |command_timeout: Duration| -> Result<Client> {
            let client = Builder::from_config(config.clone())
                .with_connection_config(|connection| {
                    connection.connection_timeout = Duration::from_secs(2);
                    connection.internal_command_timeout = Duration::from_secs(2);
                })
                .with_performance_config(|performance| {
                    performance.default_command_timeout = command_timeout;
                })
                .set_policy(ReconnectPolicy::new_constant(0, 250))
                .build()
                .context("cannot create the Redis client")?;
            client.connect();
            Ok(client)
        };
        Ok(Arc::new(Cluster {
            commands: build(COMMAND_TIMEOUT)?,
            tail: build(TAIL_BLOCK + COMMAND_TIMEOUT)?,
            keys: Keys::new("sse-stocks"),
            token: format!("{}-{}", std::process::id(), rand::random::<u64>()),
            replay_ticks: replay_ticks.max(1),
            hub,
            tail_ok: AtomicBool::new(false),
        }))
    }

    fn is_up(&self) -> bool {
        self.tail_ok.load(Ordering::SeqCst)
            && self.commands.is_connected()
            && self.tail.is_connected()
    }

    fn redis_failed(&self, what: &str, error: &Error) {
        self.hub.metrics().redis_errors.inc();
        tracing::warn!(%error, "redis: {what} failed");
    }

    // ------------------------------------------------------------ producer

    /// Produces the feed whenever this instance holds the lease, until
    /// shutdown; then hands the lease over at once.
    pub async fn run_producer(
        self: Arc<Self>,
        mut walk: RandomWalk,
        tick: Duration,
        shutdown: Shutdown,
    ) {
        loop {
            match self.acquire_lease().await {
                Ok(true) => {
                    self.hub.metrics().lease_held.set(1);
                    tracing::info!("this instance produces the feed");
                    self.produce(&mut walk, tick, &shutdown).await;
                    self.hub.metrics().lease_held.set(0);
                }
                Ok(false) => {}
                Err(error) => self.redis_failed("taking the lease", &error),
            }
            if shutdown.is_triggered() {
                break;
            }
            tokio::select! {
                _ = tokio::time::sleep(LEASE_POLL) => {}
                _ = shutdown.wait() => break,
            }
        }
        if let Err(error) = self.release_lease().await {
            self.redis_failed("releasing the lease", &error);
        }
    }

    /// Renews the lease if it is ours, or takes it if it is free.
    async fn acquire_lease(&self) -> Result<bool, Error> {
        if self.renew_lease().await? {
            return Ok(true);
        }
        let set: Option<String> = self
            .commands
            .set(
                &self.keys.lease,
                &self.token,
                Some(Expiration::PX(LEASE_TTL.as_millis() as i64)),
                Some(SetOptions::NX),
                false,
            )
            .await?;
        Ok(set.is_some())
    }

    async fn renew_lease(&self) -> Result<bool, Error> {
        let renewed: i64 = self
            .commands
            .eval(
                RENEW_SCRIPT,
                vec![self.keys.lease.clone()],
                vec![self.token.clone(), LEASE_TTL.as_millis().to_string()],
            )
            .await?;
        Ok(renewed == 1)
    }

    async fn release_lease(&self) -> Result<(), Error> {
        let _: i64 = self
            .commands
            .eval(
                RELEASE_SCRIPT,
                vec![self.keys.lease.clone()],
                vec![self.token.clone()],
            )
            .await?;
        Ok(())
    }

    /// Steps the walk into the stream while the lease is ours.
    async fn produce(&self, walk: &mut RandomWalk, tick: Duration, shutdown: &Shutdown) {
        walk.continue_from(&self.last_published_quotes().await);
        let mut steps = tokio::time::interval(tick);
        steps.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut renewals = tokio::time::interval(LEASE_RENEW);
        loop {
            tokio::select! {
                _ = steps.tick() => {
                    match self.append(walk.step(protocol::now_ms())).await {
                        Ok(true) => {}
                        Ok(false) => {
                            tracing::warn!("the producer lease was lost");
                            return;
                        }
                        Err(error) => {
                            self.redis_failed("appending ticks", &error);
                            return;
                        }
                    }
                }
                _ = renewals.tick() => match self.renew_lease().await {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::warn!("the producer lease was lost");
                        return;
                    }
                    Err(error) => {
                        self.redis_failed("renewing the lease", &error);
                        return;
                    }
                },
                _ = shutdown.wait() => return,
            }
        }
    }

    /// Where the walk goes on from: the quotes the last producer published,
    /// or (Redis lost them) the quotes this instance saw last.
    async fn last_published_quotes(&self) -> Vec<Quote> {
        let stored: Result<HashMap<String, String>, Error> =
            self.commands.hgetall(&self.keys.quotes).await;
        let quotes: Vec<Quote> = match stored {
            Ok(stored) => stored
                .values()
                .filter_map(|json| serde_json::from_str(json).ok())
                .collect(),
            Err(error) => {
                self.redis_failed("reading the last quotes", &error);
                Vec::new()
            }
        };
        if quotes.is_empty() {
            self.hub.quotes()
        } else {
            quotes
        }
    }

    /// Appends one step; false when the lease is no longer ours.
    async fn append(&self, quotes: Vec<Quote>) -> Result<bool, Error> {
        let mut args = vec![
            self.token.clone(),
            LEASE_TTL.as_millis().to_string(),
            self.replay_ticks.to_string(),
        ];
        for quote in &quotes {
            args.push(quote.symbol.clone());
            args.push(serde_json::to_string(quote).expect("a quote serializes"));
        }
        let keys = vec![
            self.keys.lease.clone(),
            self.keys.stream.clone(),
            self.keys.quotes.clone(),
        ];
        let ids: Option<Vec<String>> = self.commands.eval(APPEND_SCRIPT, keys, args).await?;
        match ids {
            Some(ids) => {
                self.hub.metrics().ticks_produced.inc_by(ids.len() as u64);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    // ---------------------------------------------------------------- tail

    /// Reads the stream into the hub, for ever: first the recent history
    /// (for resumes), then every new entry, checking that each one follows
    /// the one read before it.
    pub async fn run_tail(self: Arc<Self>, shutdown: Shutdown) {
        // The last id read; None until the history has been loaded.
        let mut last: Option<EventId> = None;
        loop {
            let read = async {
                match last {
                    None => self.read_history().await,
                    Some(id) => self.read_after(id).await,
                }
            };
            let result = tokio::select! {
                result = read => result,
                _ = shutdown.wait() => return,
            };
            let entries = match result {
                Ok(entries) => entries,
                Err(error) => {
                    self.tail_ok.store(false, Ordering::SeqCst);
                    self.redis_failed("reading the tick stream", &error);
                    tokio::select! {
                        _ = tokio::time::sleep(RETRY_PAUSE) => {}
                        _ = shutdown.wait() => return,
                    }
                    continue;
                }
            };
            self.tail_ok.store(true, Ordering::SeqCst);
            if let (Some(last_read), Some(first)) = (last, entries.first())
                && first.prev != Some(last_read)
            {
                // Entries between were lost (Redis restarted without its
                // data): nothing can be replayed across that hole, so every
                // stream starts over from the stream as it is now.
                tracing::warn!(%last_read, "the tick stream lost entries: resetting every stream");
                self.hub.start_over();
                last = None;
                continue;
            }
            last = match entries.last() {
                Some(newest) => Some(newest.tick.id),
                // An empty stream: read from its very beginning.
                None => last.or(Some(EventId::new(0, 0))),
            };
            self.hub
                .metrics()
                .ticks_received
                .inc_by(entries.len() as u64);
            self.hub
                .publish(entries.into_iter().map(|entry| entry.tick).collect());
        }
    }

    /// The last `REPLAY_TICKS` entries, oldest first.
    async fn read_history(&self) -> Result<Vec<Entry>, Error> {
        let entries: Vec<(String, HashMap<String, String>)> = self
            .tail
            .xrevrange_values(&self.keys.stream, "+", "-", Some(self.replay_ticks as u64))
            .await?;
        Ok(entries.into_iter().rev().filter_map(parse_entry).collect())
    }

    /// Waits up to [`TAIL_BLOCK`] for entries after `id`.
    async fn read_after(&self, id: EventId) -> Result<Vec<Entry>, Error> {
        let response: fred::types::Value = self
            .tail
            .xread(
                Some(TAIL_BATCH),
                Some(TAIL_BLOCK.as_millis() as u64),
                &self.keys.stream,
                id.to_string(),
            )
            .await?;
        // Nil when nothing came within the block time.
        if response.is_null() {
            return Ok(Vec::new());
        }
        let mut response: XReadResponse<String, String, String, String> =
            response.into_xread_response()?;
        let entries = response.remove(&self.keys.stream).unwrap_or_default();
        Ok(entries.into_iter().filter_map(parse_entry).collect())
    }

    // -------------------------------------------------------------- replay

    /// The ticks after `from` up to `until` (included; the newest when
    /// None) for a client resuming here, if the stream still holds `from`
    /// and not too many came since; otherwise (or if Redis does not answer)
    /// None, and the client gets a reset.
    pub async fn ticks_between(
        &self,
        from: EventId,
        until: Option<EventId>,
    ) -> Option<Vec<NewTick>> {
        let limit = self.replay_ticks as u64 + 1;
        let end = until.map_or_else(|| "+".to_owned(), |until| until.to_string());
        let entries: Vec<(String, HashMap<String, String>)> = match self
            .commands
            .xrange_values(&self.keys.stream, from.to_string(), end, Some(limit))
            .await
        {
            Ok(entries) => entries,
            Err(error) => {
                self.redis_failed("replaying ticks", &error);
                return None;
            }
        };
        let mut ticks = entries
            .into_iter()
            .filter_map(parse_entry)
            .map(|entry| entry.tick);
        let first = ticks.next()?;
        if first.id != from {
            return None;
        }
        let ticks: Vec<NewTick> = ticks.collect();
        let complete = ticks.len() as u64 + 1 < limit
            && until.is_none_or(|until| ticks.last().is_some_and(|last| last.id == until));
        complete.then_some(ticks)
    }
}

/// One entry of the tick stream.
struct Entry {
    tick: NewTick,
    /// The id of the entry appended before it (`0-0` for the first).
    prev: Option<EventId>,
}

/// A stream entry as a tick; entries that are not ours are skipped.
fn parse_entry((id, fields): (String, HashMap<String, String>)) -> Option<Entry> {
    let id = EventId::parse(&id)?;
    let quote = serde_json::from_str(fields.get(QUOTE_FIELD)?).ok()?;
    Some(Entry {
        tick: NewTick { id, quote },
        prev: fields.get(PREV_FIELD).and_then(|prev| EventId::parse(prev)),
    })
}

/// `/healthz` in cluster mode: serving needs the Redis link.
pub struct RedisHealth(pub Arc<Cluster>);

impl HealthCheck for RedisHealth {
    fn report(&self) -> HealthReport {
        let up = self.0.is_up();
        let mut details = Map::new();
        details.insert("redis".into(), Value::from(if up { "up" } else { "down" }));
        details.insert(
            "producer".into(),
            Value::from(self.0.hub.metrics().lease_held.get() == 1),
        );
        HealthReport {
            serving: up,
            details,
        }
    }
}
