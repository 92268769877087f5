//! Cluster mode (`REDIS_URL`): several instances serve one feed.
//!
//! - [`lease`]: exactly one instance produces; it holds a lease, a key set
//!   with `SET NX PX` and renewed while it lives. A producer that dies stops
//!   renewing, and another instance takes over within [`lease::TTL`] +
//!   [`lease::POLL`].
//! - [`producer`]: the lease holder drives the same feed step as embedded
//!   mode ([`crate::feed::drive`]) into the Redis stream, through a script
//!   that refuses an instance that lost its lease, and continues from the
//!   last quotes the stream's producer left.
//! - [`tail`]: every instance, the producer included, reads the stream
//!   (`XREAD BLOCK`) into its hub. A tick's SSE id is its stream id, so a
//!   client can resume on any instance.
//! - [`replay`]: a client resuming from further back than this instance's
//!   memory holds is replayed from the stream (`XRANGE`).
//! - `/healthz` ([`crate::health`]) answers 503 while Redis cannot be read;
//!   open streams stay open (quiet but for keep-alives) and catch up when
//!   Redis is back. Each entry names the one before it, so if Redis came
//!   back without the stream (restarted empty) the tail sees the hole and
//!   every stream is reset. The same holds after a failover to a replica
//!   that lacks the last entries (a Redis Cluster's own, or one Sentinel
//!   ordered: fred follows both), and new ids always go past the highest
//!   one this instance read, so none is ever handed out twice.
//!
//! [`schema`] lists every key; the Lua scripts are in `scripts/`. Works on
//! one Redis and on a Redis Cluster (`redis-cluster://` URLs) alike: the
//! keys share one hash tag.

pub mod lease;
pub mod producer;
pub mod replay;
pub mod schema;
pub mod tail;

use crate::event_id::EventId;
use crate::hub::Hub;
use crate::metrics::Metrics;
use anyhow::Result;
use fred::prelude::{Client, ClientLike, Error};
use redis_link::{LinkHealth, LinkOptions, Script};
use schema::Keys;
use std::sync::Arc;
use std::time::Duration;

/// Ticks an instance keeps in memory in cluster mode; a client resuming
/// from further back is replayed from the Redis stream, which keeps
/// `REPLAY_TICKS`. Every instance holds the same recent window, so most
/// resumes never touch Redis, and memory per instance stays small.
pub const LOCAL_REPLAY_TICKS: usize = 1024;
/// Longest wait for one Redis command (except the blocking read).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(2);
/// Pause after a failed Redis command before the next try.
const RETRY_PAUSE: Duration = Duration::from_millis(250);

/// The Lua scripts, loaded by SHA.
struct Scripts {
    renew: Script,
    release: Script,
    append: Script,
}

pub struct Cluster {
    /// Lease, appends, replays.
    commands: Client,
    /// A connection of its own for the blocking `XREAD`, so it never delays
    /// the commands.
    tail: Client,
    keys: Keys,
    scripts: Scripts,
    /// This instance's lease token.
    token: String,
    replay_ticks: usize,
    hub: Arc<Hub>,
    /// Whether the last read of the stream succeeded.
    link: LinkHealth,
    /// The highest tick id this instance has read, kept across resets: a
    /// producer never appends at or below it (see `scripts/append.lua`).
    highest_seen: parking_lot::Mutex<EventId>,
}

impl Cluster {
    /// Starts the Redis clients; they connect (and reconnect) in the
    /// background, so an instance starts even while Redis is down.
    pub fn connect(url: &str, hub: Arc<Hub>, replay_ticks: usize) -> Result<Arc<Cluster>> {
        let commands = LinkOptions {
            command_timeout: COMMAND_TIMEOUT,
            ..LinkOptions::default()
        };
        let tail = LinkOptions {
            command_timeout: tail::BLOCK + COMMAND_TIMEOUT,
            ..LinkOptions::default()
        };
        Ok(Arc::new(Cluster {
            commands: redis_link::connect(url, &commands)?,
            tail: redis_link::connect(url, &tail)?,
            keys: Keys::new(),
            scripts: Scripts {
                renew: Script::new(include_str!("scripts/renew.lua")),
                release: Script::new(include_str!("scripts/release.lua")),
                append: Script::new(include_str!("scripts/append.lua")),
            },
            token: format!("{}-{}", std::process::id(), rand::random::<u64>()),
            replay_ticks: replay_ticks.max(1),
            hub,
            link: LinkHealth::new(),
            highest_seen: parking_lot::Mutex::new(EventId::new(0, 0)),
        }))
    }

    /// Up while the tail reads the stream and both connections stand.
    pub fn is_up(&self) -> bool {
        self.link.is_up() && self.commands.is_connected() && self.tail.is_connected()
    }

    /// The series of the hub this cluster feeds.
    pub fn metrics(&self) -> &Metrics {
        self.hub.metrics()
    }

    fn redis_failed(&self, what: &str, error: &Error) {
        self.hub.metrics().redis_errors.inc();
        tracing::warn!(%error, "redis: {what} failed");
    }
}
