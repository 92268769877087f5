//! The settings every server shares, read at start-up with the rest of an
//! app's configuration, so that a bad value stops the server before it
//! listens.

use crate::admission::AdmissionConfig;
use crate::env::{env_opt, env_or};
use anyhow::Result;
use std::net::{IpAddr, SocketAddr};

/// The settings every server shares (contract: "Conventions").
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// `HOST` and `PORT`: where the server listens.
    pub addr: SocketAddr,
    /// Extra browser origins allowed besides the server's own host.
    pub allowed_origins: Vec<String>,
    /// Cluster mode when set.
    pub redis_url: Option<String>,
    /// The connection limits (`MAX_CONNECTIONS`, `MAX_CONNECTIONS_PER_IP`,
    /// `HANDSHAKE_RATE`, `TRUSTED_PROXIES`).
    pub limits: AdmissionConfig,
}

impl ServerConfig {
    /// `HOST` (default 127.0.0.1), `PORT` (default per app), `ALLOWED_ORIGINS`,
    /// `REDIS_URL` and the limits. Read after the open-files limit was
    /// raised ([`crate::limits::raise_open_files_limit`]), since the
    /// default `MAX_CONNECTIONS` derives from it.
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
            limits: AdmissionConfig::from_env()?,
        })
    }
}
