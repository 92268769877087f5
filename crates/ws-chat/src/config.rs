//! ws-chat's settings, read once from the environment at start-up (the
//! contract's configuration table), with a clear error for a bad value.
//!
//! Besides the contract's settings: `QUEUE_LEN` (default 8192): a socket
//! more than that many frames behind is cut off with 1013 (at 200 messages
//! a second, about 40 seconds behind; the ring costs the frames it holds,
//! shared by every socket).
//! `WRITE_DELAY_MS` (default 20): while the chat is busy (more than three
//! frames per delay), its frames wait in each socket's outbox and the
//! chat's clock writes them together once per delay, one system call per
//! socket however many frames it carries. While it is quiet, every frame
//! leaves at once. 0 turns the batching off.

use anyhow::{Result, ensure};
use ops::ServerConfig;
use ops::env::env_or;
use std::time::Duration;

/// ws-chat listens on 8080 unless `PORT` says otherwise.
pub const DEFAULT_PORT: u16 = 8080;

/// Short enough that a busy chat's frames barely wait, long enough that
/// a socket of a chat with hundreds of messages a second gets a few frames
/// per system call.
const DEFAULT_WRITE_DELAY_MS: u64 = 20;

/// ws-chat's settings, from the environment.
#[derive(Debug, Clone)]
pub struct Config {
    /// `HOST`, `PORT`, `ALLOWED_ORIGINS`.
    pub server: ServerConfig,
    /// `MSG_RATE`: frames per second one socket may send (bursts up to twice
    /// that); 0 means unlimited.
    pub msg_rate: u32,
    /// `PING_MS`: how often the server pings; two unanswered pings drop the peer.
    pub ping_interval: Duration,
    /// `QUEUE_LEN`: how many published frames a socket may fall behind
    /// before it is cut off as too slow.
    pub queue_len: usize,
    /// `WRITE_DELAY_MS`: while the chat is busy, how often its frames are
    /// written, together, to every socket; zero: never held.
    pub write_delay: Duration,
    /// `AUTH_JWT_*`: token authentication, off when unset.
    pub auth: Option<auth::AuthConfig>,
}

impl Config {
    /// The settings, with a clear error for any variable that does not parse.
    pub fn from_env() -> Result<Config> {
        let ping_ms: u64 = env_or("PING_MS", 20_000)?;
        ensure!(ping_ms > 0, "PING_MS must be at least 1");
        let queue_len: usize = env_or("QUEUE_LEN", 8192)?;
        ensure!(queue_len > 0, "QUEUE_LEN must be at least 1");
        Ok(Config {
            server: ServerConfig::from_env(DEFAULT_PORT)?,
            msg_rate: env_or("MSG_RATE", 20)?,
            ping_interval: Duration::from_millis(ping_ms),
            queue_len,
            write_delay: Duration::from_millis(env_or("WRITE_DELAY_MS", DEFAULT_WRITE_DELAY_MS)?),
            auth: auth::AuthConfig::from_env()?,
        })
    }
}
