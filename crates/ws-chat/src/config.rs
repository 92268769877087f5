//! ws-chat's settings, read once from the environment at start-up (the
//! contract's configuration table), with a clear error for a bad value.
//!
//! Besides the contract's settings: `QUEUE_LEN` (default 1024) counts write
//! windows, not frames: a socket more than that many batches behind is cut
//! off with 1013. `WRITE_DELAY_MS` (default 50) is how long the hub gathers
//! frames before handing them to the sockets in one batch, so that each
//! socket writes them in one system call; 0 hands every frame over at once.

use anyhow::{Result, ensure};
use ops::ServerConfig;
use ops::config::env_or;
use std::time::Duration;

/// ws-chat listens on 8080 unless `PORT` says otherwise.
pub const DEFAULT_PORT: u16 = 8080;

/// Long enough to gather several frames per socket when the chat is busy
/// (at 100 messages a second, about five per write: half the CPU per
/// delivery of a 20 ms window, see BENCHMARKS.md), short enough that people
/// typing to each other do not notice it. rooms-chat keeps 20 ms: its
/// contract asks for a p99 under 50 ms.
const DEFAULT_WRITE_DELAY_MS: u64 = 50;

#[derive(Debug, Clone)]
pub struct Config {
    /// `HOST`, `PORT`, `ALLOWED_ORIGINS`.
    pub server: ServerConfig,
    /// `MSG_RATE`: frames per second one socket may send (bursts up to twice
    /// that); 0 means unlimited.
    pub msg_rate: u32,
    /// `PING_MS`: how often the server pings; two unanswered pings drop the peer.
    pub ping_interval: Duration,
    /// `QUEUE_LEN`: how many published batches (write windows) a socket may
    /// fall behind before it is cut off as too slow.
    pub queue_len: usize,
    /// `WRITE_DELAY_MS`: how long frames gather before they are published
    /// as one batch; zero publishes each frame at once.
    pub write_delay: Duration,
}

impl Config {
    pub fn from_env() -> Result<Config> {
        let ping_ms: u64 = env_or("PING_MS", 20_000)?;
        ensure!(ping_ms > 0, "PING_MS must be at least 1");
        let queue_len: usize = env_or("QUEUE_LEN", 1024)?;
        ensure!(queue_len > 0, "QUEUE_LEN must be at least 1");
        Ok(Config {
            server: ServerConfig::from_env(DEFAULT_PORT)?,
            msg_rate: env_or("MSG_RATE", 20)?,
            ping_interval: Duration::from_millis(ping_ms),
            queue_len,
            write_delay: Duration::from_millis(env_or("WRITE_DELAY_MS", DEFAULT_WRITE_DELAY_MS)?),
        })
    }
}
