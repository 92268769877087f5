//! Building the fred client: the same settings for every app and every
//! connection, so a reader learns one reconnect story.

use anyhow::{Context, Result};
use fred::prelude::{Builder, Client, ClientLike, Config, ReconnectPolicy};
use fred::types::RespVersion;
use std::time::Duration;

/// Pause between two reconnection attempts. Constant rather than
/// exponential: clients should be back within a fraction of a second of
/// their Redis (or, behind Sentinel, of the promoted replica).
const RECONNECT_DELAY_MS: u32 = 250;

/// How a connection behaves; one per job (commands, a blocking read, a
/// subscriber).
#[derive(Debug, Clone)]
pub struct LinkOptions {
    /// The longest any command may wait for its answer (a blocking command
    /// needs its block time on top).
    pub command_timeout: Duration,
    /// Messages a Pub/Sub receiver buffers before it lags.
    pub pubsub_capacity: usize,
    /// Whether the first connection attempt failing is an error (an app
    /// that needs Redis to start) rather than a reason to keep trying (an
    /// app that starts without it and serves once it is up).
    pub fail_fast: bool,
}

impl Default for LinkOptions {
    fn default() -> LinkOptions {
        LinkOptions {
            command_timeout: Duration::from_secs(2),
            pubsub_capacity: 16 * 1024,
            fail_fast: false,
        }
    }
}

/// The builder for `url` with the options; [`connect`] uses it, and a
/// caller that needs a subscriber client builds one from it.
pub fn builder(url: &str, options: &LinkOptions) -> Result<Builder> {
    Ok(builder_for(config(url)?, options))
}

/// `REDIS_URL` read as fred's configuration (one Redis, the seed nodes of
/// a Redis Cluster, or the sentinels of a Sentinel service), for a caller
/// that connects to its nodes one by one.
pub fn config(url: &str) -> Result<Config> {
    let fred_url = sentinel_url(url).unwrap_or_else(|| url.to_owned());
    Config::from_url(&fred_url).with_context(|| format!("REDIS_URL={url:?} is not a Redis URL"))
}

/// `redis-sentinel://HOST:PORT[,HOST:PORT…]/SERVICE` (the sentinels, then
/// the service they watch) written as fred reads it:
/// `redis-sentinel://HOST:PORT/0?sentinelServiceName=SERVICE&node=HOST:PORT…`.
/// `None` for any other URL (fred's own Sentinel form included).
fn sentinel_url(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    if !scheme.ends_with("-sentinel") || rest.contains('?') {
        return None;
    }
    let (authority, service) = rest.split_once('/')?;
    if service.is_empty() || service.contains('/') || service.parse::<u8>().is_ok() {
        return None;
    }
    let (credentials, hosts) = match authority.rsplit_once('@') {
        Some((credentials, hosts)) => (format!("{credentials}@"), hosts),
        None => (String::new(), authority),
    };
    let mut hosts = hosts.split(',').filter(|host| !host.is_empty());
    let first = hosts.next()?;
    let mut fred_url = format!("{scheme}://{credentials}{first}/0?sentinelServiceName={service}");
    for host in hosts {
        fred_url.push_str(&format!("&node={host}"));
    }
    Some(fred_url)
}

/// The builder for a configuration with the options (see [`builder`]).
pub fn builder_for(mut config: Config, options: &LinkOptions) -> Builder {
    // RESP3 on every connection: Pub/Sub and commands share one connection
    // kind, and sharded Pub/Sub needs it.
    config.version = RespVersion::RESP3;
    config.fail_fast = options.fail_fast;
    let mut builder = Builder::from_config(config);
    let timeout = options.command_timeout;
    let capacity = options.pubsub_capacity;
    builder
        .with_connection_config(|connection| {
            connection.connection_timeout = timeout;
            connection.internal_command_timeout = timeout;
        })
        .with_performance_config(|performance| {
            performance.default_command_timeout = timeout;
            performance.broadcast_channel_capacity = capacity;
        })
        .set_policy(ReconnectPolicy::new_constant(0, RECONNECT_DELAY_MS));
    builder
}

/// A client for `url` that connects, and reconnects, in the background.
pub fn connect(url: &str, options: &LinkOptions) -> Result<Client> {
    let client = builder(url, options)?
        .build()
        .context("cannot create the Redis client")?;
    // The connection task is also the reconnection task: it lives as long
    // as the client, and its outcome is seen through every command's result.
    let _connection = client.connect();
    Ok(client)
}

#[cfg(test)]
mod tests {
    use super::*;
    use fred::types::config::ServerConfig;

    #[test]
    fn a_bad_url_names_the_variable() {
        let error = builder("not a url", &LinkOptions::default())
            .err()
            .map(|error| error.to_string());
        assert_eq!(
            error.as_deref(),
            Some("REDIS_URL=\"not a url\" is not a Redis URL")
        );
    }

    #[test]
    fn sentinel_urls_list_the_sentinels_then_the_service() {
        let url = "redis-sentinel://127.0.0.1:26379,127.0.0.1:26380/mymaster";
        assert_eq!(
            sentinel_url(url).as_deref(),
            Some(
                "redis-sentinel://127.0.0.1:26379/0?sentinelServiceName=mymaster&node=127.0.0.1:26380"
            )
        );
        let parsed = config(url).unwrap();
        let ServerConfig::Sentinel {
            hosts,
            service_name,
        } = parsed.server
        else {
            panic!("not a sentinel config: {:?}", parsed.server);
        };
        assert_eq!(service_name, "mymaster");
        assert_eq!(hosts.len(), 2);
        // fred's own form passes through.
        let fred = "redis-sentinel://127.0.0.1:26379/0?sentinelServiceName=m";
        assert_eq!(sentinel_url(fred), None);
        assert!(config(fred).is_ok());
    }

    #[test]
    fn cluster_urls_are_accepted() {
        let url = "redis-cluster://127.0.0.1:7000?node=127.0.0.1:7001&node=127.0.0.1:7002";
        assert!(builder(url, &LinkOptions::default()).is_ok());
    }
}
