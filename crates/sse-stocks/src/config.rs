//! The server's settings, read once from the environment (contract section
//! "Configuration"), with a clear error for a bad value.

use crate::symbols::SymbolTable;
use anyhow::{Result, bail};
use ops::ServerConfig;
use ops::env::{env_opt, env_or};
use std::time::Duration;

/// Port when `PORT` is not set.
pub const DEFAULT_PORT: u16 = 5000;

#[derive(Debug, Clone)]
pub struct Config {
    pub server: ServerConfig,
    /// `TICK_MS`: interval of price moves.
    pub tick: Duration,
    /// `SEED`: seed of the random walk (random when unset).
    pub seed: Option<u64>,
    /// `SYMBOLS`: the symbols served.
    pub symbols: SymbolTable,
    /// `KEEPALIVE_MS`: silence after which a `: keep-alive` comment is sent.
    pub keepalive: Duration,
    /// `REPLAY_TICKS`: how many recent ticks are kept for resume.
    pub replay_ticks: usize,
    /// `RETRY_MS`: the reconnection delay a stream asks its client for; each
    /// stream adds up to half of it at random so that the clients of a
    /// stopped instance do not all come back in the same millisecond.
    pub retry: Duration,
    /// `STREAM_MAX_MS`: when set, a stream is ended after this long and the
    /// client reconnects (and resumes): long-lived streams then spread again
    /// over the instances behind a load balancer. Unset: streams live on.
    pub stream_max_age: Option<Duration>,
    /// `AUTH_JWT_*`: token authentication of `/events`, off when unset.
    pub auth: Option<auth::AuthConfig>,
}

impl Config {
    pub fn from_env() -> Result<Config> {
        let tick_ms: u64 = env_or("TICK_MS", 1000)?;
        if tick_ms == 0 {
            bail!("TICK_MS must be at least 1");
        }
        let keepalive_ms: u64 = env_or("KEEPALIVE_MS", 15_000)?;
        if keepalive_ms == 0 {
            bail!("KEEPALIVE_MS must be at least 1");
        }
        let symbols = match env_opt("SYMBOLS") {
            Some(list) => SymbolTable::from_list(&protocol::sse::parse_symbol_list(&list))?,
            None => SymbolTable::defaults(),
        };
        let seed = match env_opt("SEED") {
            Some(_) => Some(env_or("SEED", 0u64)?),
            None => None,
        };
        let stream_max_age = match env_opt("STREAM_MAX_MS") {
            Some(_) => Some(Duration::from_millis(env_or("STREAM_MAX_MS", 0u64)?.max(1))),
            None => None,
        };
        Ok(Config {
            server: ServerConfig::from_env(DEFAULT_PORT)?,
            tick: Duration::from_millis(tick_ms),
            seed,
            symbols,
            keepalive: Duration::from_millis(keepalive_ms),
            replay_ticks: env_or("REPLAY_TICKS", 10_000)?,
            retry: Duration::from_millis(env_or("RETRY_MS", 1000u64)?),
            stream_max_age,
            auth: auth::AuthConfig::from_env()?,
        })
    }
}
