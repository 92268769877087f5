//! Environment configuration with clear errors: a bad value stops the server
//! at start-up with the variable's name, instead of running with a surprise.

use anyhow::{Context, Result};
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

/// Reads `name`, or `default` when it is unset or empty.
pub fn env_or<T>(name: &str, default: T) -> Result<T>
where
    T: FromStr,
    T::Err: std::fmt::Display,
{
    match std::env::var(name) {
        Ok(raw) if !raw.trim().is_empty() => raw
            .trim()
            .parse()
            .map_err(|error| anyhow::anyhow!("{error}"))
            .with_context(|| format!("environment variable {name}={raw:?} is invalid")),
        _ => Ok(default),
    }
}

/// Reads `name` when it is set and not empty.
pub fn env_opt(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .map(|raw| raw.trim().to_owned())
        .filter(|raw| !raw.is_empty())
}

/// The settings every server shares (contract: "Conventions").
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub addr: SocketAddr,
    /// Extra browser origins allowed besides the server's own host.
    pub allowed_origins: Vec<String>,
    /// Cluster mode when set.
    pub redis_url: Option<String>,
}

impl ServerConfig {
    /// `HOST` (default 127.0.0.1), `PORT` (default per app), `ALLOWED_ORIGINS`, `REDIS_URL`.
    pub fn from_env(default_port: u16) -> Result<ServerConfig> {
        let host: IpAddr = env_or("HOST", IpAddr::from([127, 0, 0, 1]))?;
        let port: u16 = env_or("PORT", default_port)?;
        let allowed_origins = env_opt("ALLOWED_ORIGINS")
            .map(|list| {
                list.split(',')
                    .map(|origin| origin.trim().trim_end_matches('/').to_owned())
                    .filter(|origin| !origin.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        Ok(ServerConfig {
            addr: SocketAddr::new(host, port),
            allowed_origins,
            redis_url: env_opt("REDIS_URL"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unset_variables_fall_back_to_defaults() {
        assert_eq!(env_or("OPS_TEST_SURELY_UNSET_VARIABLE", 42u32).unwrap(), 42);
    }
}
