//! rooms-chat settings: the shared server settings (`HOST`, `PORT`,
//! `ALLOWED_ORIGINS`, `REDIS_URL`) plus the knobs of this app, all from the
//! environment, with the defaults production wants and tests can shorten.

use anyhow::{Result, ensure};
use ops::ServerConfig;
use ops::env::env_or;
use std::time::Duration;

/// The port the contract gives rooms-chat.
pub const DEFAULT_PORT: u16 = 3000;

/// Short enough to go unnoticed in a chat, long enough that a busy room's
/// frames share one write per socket (see `room::outgoing`: only a room
/// with more than three events per delay waits for the clock at all).
const DEFAULT_WRITE_DELAY_MS: u64 = 20;

/// Packets that may wait for one socket: enough for a healthy socket's
/// burst on busy cores (a join storm's notices), so that the byte bound
/// below is what ends a reader that stopped.
const DEFAULT_MAX_BUFFER: usize = 16 * 1024;

/// Centrifugo's `client_queue_max_size`: what a reader that stopped may
/// cost in frames waiting for it before it is cut off.
const DEFAULT_MAX_QUEUED_BYTES: usize = 1024 * 1024;

/// socket.io's default window of connection state recovery.
const DEFAULT_RECOVERY_MS: u64 = 120_000;

/// A blip this short (a network switch, a tab woken up) shows the others
/// nothing; a longer one shows `user_left`, then `user_joined` if the
/// client comes back and is recovered.
const DEFAULT_PRESENCE_GRACE_MS: u64 = 5_000;

/// How long a client event may wait on Redis before it is `unavailable`.
const DEFAULT_REDIS_TIMEOUT_MS: u64 = 1000;

#[derive(Debug, Clone)]
pub struct Config {
    pub server: ServerConfig,
    /// `MSG_RATE`: messages per second one socket may send (bursts of twice that); 0 = unlimited.
    pub msg_rate: u32,
    /// `PING_INTERVAL_MS`: Engine.IO ping interval.
    pub ping_interval: Duration,
    /// `PING_TIMEOUT_MS`: how long a client may take to answer a ping.
    pub ping_timeout: Duration,
    /// `MAX_PAYLOAD_BYTES`: largest Engine.IO payload a client may send.
    pub max_payload: usize,
    /// `MAX_BUFFER`: packets that may wait for one socket before it counts
    /// as too slow and is cut off.
    pub max_buffer: usize,
    /// `MAX_QUEUED_BYTES`: bytes of packets that may wait for one socket
    /// before it counts as too slow and is cut off.
    pub max_queued_bytes: usize,
    /// `RECOVERY_MS`: how long a socket whose connection dropped is held
    /// for its client to recover it (0: no recovery).
    pub recovery: Duration,
    /// `PRESENCE_GRACE_MS`: how long a socket whose connection dropped
    /// still counts as present: a shorter blip shows the others nothing.
    pub presence_grace: Duration,
    /// `WRITE_DELAY_MS`: the least time between two writes of a busy socket,
    /// whose frames meanwhile gather into one write (0: every frame at once).
    pub write_delay: Duration,
    /// `REDIS_TIMEOUT_MS` (cluster): the longest a client event waits on Redis.
    pub redis_timeout: Duration,
    /// `REDIS_WAIT_REPLICAS` (cluster): replicas that must have a message
    /// before its ack says `ok` (0: none asked).
    pub wait_replicas: u32,
    /// `HISTORY_KEEP`: messages kept per room for `since` resumes.
    pub history_keep: usize,
    /// `ROOMS_LIST_MAX`: rooms in a `rooms` ack or push, the busiest.
    pub rooms_list_max: usize,
    /// `ROOMS_PUSH_MS`: a burst of joins and leaves within this window gives one `rooms` push.
    pub rooms_push_delay: Duration,
    /// `GAP_REPAIR_MS`: how long an early event waits for the missing ones
    /// before they are fetched from the room's log.
    pub gap_repair_delay: Duration,
    /// `PUBSUB_CAPACITY` (cluster): events fred buffers per Pub/Sub
    /// receiver before it lags (a lag is detected and repaired).
    pub pubsub_capacity: usize,
    /// `HEARTBEAT_MS` (cluster): how often an instance says it is alive.
    pub heartbeat: Duration,
    /// `INSTANCE_TTL_MS` (cluster): silence after which an instance is dead.
    pub instance_ttl: Duration,
    /// `AUTH_JWT_*`: token authentication, off when unset.
    pub auth: Option<auth::AuthConfig>,
}

impl Config {
    pub fn from_env() -> Result<Config> {
        let config = Config {
            server: ServerConfig::from_env(DEFAULT_PORT)?,
            msg_rate: env_or("MSG_RATE", 20)?,
            ping_interval: millis("PING_INTERVAL_MS", 25_000)?,
            ping_timeout: millis("PING_TIMEOUT_MS", 20_000)?,
            max_payload: env_or("MAX_PAYLOAD_BYTES", 128 * 1024)?,
            max_buffer: env_or("MAX_BUFFER", DEFAULT_MAX_BUFFER)?,
            max_queued_bytes: env_or("MAX_QUEUED_BYTES", DEFAULT_MAX_QUEUED_BYTES)?,
            recovery: Duration::from_millis(env_or("RECOVERY_MS", DEFAULT_RECOVERY_MS)?),
            presence_grace: Duration::from_millis(env_or(
                "PRESENCE_GRACE_MS",
                DEFAULT_PRESENCE_GRACE_MS,
            )?),
            write_delay: Duration::from_millis(env_or("WRITE_DELAY_MS", DEFAULT_WRITE_DELAY_MS)?),
            redis_timeout: millis("REDIS_TIMEOUT_MS", DEFAULT_REDIS_TIMEOUT_MS)?,
            wait_replicas: env_or("REDIS_WAIT_REPLICAS", 0)?,
            history_keep: env_or("HISTORY_KEEP", 1000)?,
            rooms_list_max: env_or("ROOMS_LIST_MAX", 100)?,
            rooms_push_delay: millis("ROOMS_PUSH_MS", 200)?,
            gap_repair_delay: millis("GAP_REPAIR_MS", 150)?,
            pubsub_capacity: env_or("PUBSUB_CAPACITY", 16 * 1024)?,
            heartbeat: millis("HEARTBEAT_MS", 2_000)?,
            instance_ttl: millis("INSTANCE_TTL_MS", 8_000)?,
            auth: auth::AuthConfig::from_env()?,
        };
        ensure!(
            config.history_keep >= protocol::HISTORY_LEN,
            "HISTORY_KEEP must be at least {}",
            protocol::HISTORY_LEN
        );
        ensure!(
            config.max_payload >= protocol::MAX_FRAME_BYTES,
            "MAX_PAYLOAD_BYTES must be at least {}",
            protocol::MAX_FRAME_BYTES
        );
        ensure!(
            config.pubsub_capacity >= 1,
            "PUBSUB_CAPACITY must be at least 1"
        );
        ensure!(config.max_buffer >= 8, "MAX_BUFFER must be at least 8");
        ensure!(
            config.rooms_list_max >= 1,
            "ROOMS_LIST_MAX must be at least 1"
        );
        ensure!(
            config.instance_ttl >= config.heartbeat * 2,
            "INSTANCE_TTL_MS must be at least twice HEARTBEAT_MS"
        );
        Ok(config)
    }

    /// Whether the instance shares its state through Redis.
    pub fn cluster(&self) -> bool {
        self.server.redis_url.is_some()
    }
}

fn millis(name: &str, default: u64) -> Result<Duration> {
    let value: u64 = env_or(name, default)?;
    ensure!(value > 0, "{name} must be greater than 0");
    Ok(Duration::from_millis(value))
}
