//! The Redis nodes this instance talks to: one shard for one Redis, one per
//! master for a Redis Cluster, each with its own command connection, its
//! own subscriber and its own health.
//!
//! fred's cluster client runs every node behind one routing task, and while
//! it reconnects to a dead master it serves no node at all: one shard
//! outage would stop every room. Here each master has a plain client of
//! its own, and a key goes to the master that owns its hash slot (read
//! once at start from `CLUSTER SLOTS`), so a dead shard stops only the
//! rooms it holds. A topology change (resharding, failover to a replica)
//! needs a restart of the instance: commands meanwhile fail (`MOVED`) and
//! are answered `unavailable`.

use super::schema::CONTROL_TAG;
use anyhow::{Context, Result, anyhow, bail};
use fred::clients::{Client, SubscriberClient};
use fred::interfaces::ClientLike;
use fred::types::config::{Config, ServerConfig};
use fred::types::{CustomCommand, Value};
use redis_link::LinkOptions;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::Notify;

/// The number of hash slots of a Redis Cluster.
const SLOTS: u16 = 16384;

/// One master and the connections to it.
pub struct Shard {
    /// `host:port`, for logs.
    pub name: String,
    pub client: Client,
    pub subscriber: SubscriberClient,
    /// A hash tag whose slot this shard owns, for keys about the shard itself.
    pub tag: String,
    up: AtomicBool,
    /// Whether a heartbeat has found it serving since the start.
    beaten: AtomicBool,
    /// Asks for a heartbeat now (after a reconnect) rather than at the next tick.
    pub check: Notify,
}

impl Shard {
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    /// Whether a heartbeat has found the shard serving since the start:
    /// only then is the instance sure of it (its subscriber may still be
    /// connecting after the first command answered).
    pub fn has_beaten(&self) -> bool {
        self.beaten.load(Ordering::Relaxed)
    }

    /// Records what a heartbeat found: whether the shard serves.
    pub fn set_beaten(&self, up: bool) {
        if up {
            self.beaten.store(true, Ordering::Relaxed);
        }
        self.set_up(up);
    }

    /// Records whether the shard answers; logs each change once.
    pub fn set_up(&self, up: bool) {
        if self.up.swap(up, Ordering::Relaxed) != up {
            if up {
                tracing::info!(shard = self.name, "Redis shard is back");
            } else {
                tracing::warn!(shard = self.name, "Redis shard is down");
            }
        }
    }
}

/// Every shard, and which one owns each slot.
pub struct Shards {
    shards: Vec<Arc<Shard>>,
    /// `(first slot, last slot, shard index)`.
    ranges: Vec<(u16, u16, usize)>,
    control: usize,
}

impl Shards {
    /// Reads the topology and connects to every master (failing if one of
    /// them cannot be reached now).
    pub async fn connect(url: &str, options: &LinkOptions) -> Result<Shards> {
        let config = redis_link::connect::config(url)?;
        let masters = match &config.server {
            ServerConfig::Clustered { hosts, .. } => cluster_slots(&config, hosts, options).await?,
            _ => {
                let server = config.server.hosts().into_iter().next();
                let server = server.context("REDIS_URL names no server")?;
                vec![(server.host.to_string(), server.port, vec![(0, SLOTS - 1)])]
            }
        };
        let mut shards = Vec::new();
        let mut ranges = Vec::new();
        for (index, (host, port, owned)) in masters.into_iter().enumerate() {
            let mut node = config.clone();
            node.server = ServerConfig::new_centralized(host.as_str(), port);
            let name = format!("{host}:{port}");
            let client = builder(node.clone(), options)
                .build()
                .context("build a Redis client")?;
            let subscriber = builder(node, options)
                .build_subscriber_client()
                .context("build a Redis subscriber")?;
            client
                .init()
                .await
                .with_context(|| format!("cannot connect to Redis at {name}"))?;
            subscriber
                .init()
                .await
                .with_context(|| format!("cannot subscribe at Redis {name}"))?;
            ranges.extend(owned.iter().map(|&(first, last)| (first, last, index)));
            shards.push((name, client, subscriber, owned));
        }
        let owner = |slot: u16| {
            ranges
                .iter()
                .find(|(first, last, _)| (*first..=*last).contains(&slot))
                .map(|(_, _, index)| *index)
        };
        let control = owner(slot_of(CONTROL_TAG)).context("no master owns the control slot")?;
        let shards = shards
            .into_iter()
            .enumerate()
            .map(|(index, (name, client, subscriber, _))| {
                let tag = if index == control {
                    CONTROL_TAG.to_owned()
                } else {
                    tag_owned_by(index, &owner)
                };
                Arc::new(Shard {
                    name,
                    client,
                    subscriber,
                    tag,
                    up: AtomicBool::new(true),
                    beaten: AtomicBool::new(false),
                    check: Notify::new(),
                })
            })
            .collect();
        Ok(Shards {
            shards,
            ranges,
            control,
        })
    }

    pub fn all(&self) -> &[Arc<Shard>] {
        &self.shards
    }

    /// The shard that owns `key` (by its hash tag, as Redis Cluster does).
    pub fn of_key(&self, key: &str) -> &Arc<Shard> {
        let slot = fred::util::redis_keyslot(key.as_bytes());
        let index = self
            .ranges
            .iter()
            .find(|(first, last, _)| (*first..=*last).contains(&slot))
            .map_or(self.control, |(_, _, index)| *index);
        &self.shards[index]
    }

    /// Whether every shard answers.
    pub fn all_up(&self) -> bool {
        self.shards.iter().all(|shard| shard.is_up())
    }

    /// Whether a heartbeat has found every shard serving since the start.
    pub fn all_beaten(&self) -> bool {
        self.shards.iter().all(|shard| shard.has_beaten())
    }

    /// Whether any shard answers: some rooms can be served.
    pub fn any_up(&self) -> bool {
        self.shards.iter().any(|shard| shard.is_up())
    }

    /// The shard that holds the room list and the instance registry.
    pub fn control(&self) -> &Arc<Shard> {
        &self.shards[self.control]
    }

    /// Whether `shard` is the control shard.
    pub fn is_control(&self, shard: &Shard) -> bool {
        std::ptr::eq(shard, self.control().as_ref())
    }
}

/// redis-link's builder, with one attempt per command: a command that was
/// written when its connection broke is not sent again after the
/// reconnect, where it could land on a shard that restarted empty before
/// this instance gave it its state back (its caller has had `unavailable`).
fn builder(node: Config, options: &LinkOptions) -> fred::prelude::Builder {
    let mut builder = redis_link::connect::builder_for(node, options);
    builder.with_connection_config(|connection| connection.max_command_attempts = 1);
    builder
}

/// The slot of a hash tag.
fn slot_of(tag: &str) -> u16 {
    fred::util::redis_keyslot(format!("{{{tag}}}").as_bytes())
}

/// The first tag `rooms-chat-shard-N` whose slot shard `index` owns.
fn tag_owned_by(index: usize, owner: &impl Fn(u16) -> Option<usize>) -> String {
    (0u32..)
        .map(|n| format!("rooms-chat-shard-{n}"))
        .find(|tag| owner(slot_of(tag)) == Some(index))
        .unwrap_or_else(|| CONTROL_TAG.to_owned())
}

type Master = (String, u16, Vec<(u16, u16)>);

/// The masters and their slot ranges, asked of the first seed node that answers.
async fn cluster_slots(
    config: &Config,
    seeds: &[fred::types::config::Server],
    options: &LinkOptions,
) -> Result<Vec<Master>> {
    let mut last_error = anyhow!("REDIS_URL names no cluster node");
    for seed in seeds {
        let mut node = config.clone();
        node.server = ServerConfig::new_centralized(seed.host.to_string(), seed.port);
        let client = redis_link::connect::builder_for(node, options)
            .build()
            .context("build a Redis client")?;
        let asked = async {
            client.init().await?;
            let command = CustomCommand::new_static("CLUSTER", None, false);
            client.custom::<Value, _>(command, vec!["SLOTS"]).await
        }
        .await;
        // Only the answer matters; a failed goodbye changes nothing.
        let _ = client.quit().await;
        match asked {
            Ok(reply) => return parse_slots(reply),
            Err(error) => {
                last_error = anyhow!(error).context(format!("CLUSTER SLOTS on {}", seed.host))
            }
        }
    }
    Err(last_error)
}

/// `CLUSTER SLOTS`: `[[first, last, [host, port, id, …], replicas…], …]`.
fn parse_slots(reply: Value) -> Result<Vec<Master>> {
    let mut masters: Vec<Master> = Vec::new();
    let Value::Array(ranges) = reply else {
        bail!("CLUSTER SLOTS answered {reply:?}");
    };
    for range in ranges {
        let Value::Array(fields) = range else {
            bail!("a slot range that is not a list");
        };
        let mut fields = fields.into_iter();
        let (Some(first), Some(last), Some(Value::Array(primary))) =
            (fields.next(), fields.next(), fields.next())
        else {
            bail!("a slot range without its master");
        };
        let mut primary = primary.into_iter();
        let (Some(host), Some(port)) = (primary.next(), primary.next()) else {
            bail!("a master without host and port");
        };
        let host = host.as_string().context("a master's host")?;
        let port = port.as_u64().context("a master's port")? as u16;
        let first = first.as_u64().context("a range's first slot")? as u16;
        let last = last.as_u64().context("a range's last slot")? as u16;
        match masters
            .iter_mut()
            .find(|(h, p, _)| *h == host && *p == port)
        {
            Some((_, _, owned)) => owned.push((first, last)),
            None => masters.push((host, port, vec![(first, last)])),
        }
    }
    if masters.is_empty() {
        bail!("CLUSTER SLOTS names no master");
    }
    Ok(masters)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_ranges_are_grouped_by_master() {
        let node =
            |host: &str, port: i64| Value::Array(vec![host.into(), port.into(), "id".into()]);
        let reply = Value::Array(vec![
            Value::Array(vec![0.into(), 5460.into(), node("127.0.0.1", 7001)]),
            Value::Array(vec![5461.into(), 10922.into(), node("127.0.0.1", 7002)]),
            Value::Array(vec![10923.into(), 16383.into(), node("127.0.0.1", 7001)]),
        ]);
        let masters = parse_slots(reply).unwrap();
        assert_eq!(
            masters,
            vec![
                ("127.0.0.1".into(), 7001, vec![(0, 5460), (10923, 16383)]),
                ("127.0.0.1".into(), 7002, vec![(5461, 10922)]),
            ]
        );
    }

    #[test]
    fn a_shard_tag_lands_on_its_shard() {
        let owner = |slot: u16| Some(usize::from(slot >= 8192));
        let tag = tag_owned_by(1, &owner);
        assert!(slot_of(&tag) >= 8192, "{tag}");
    }
}
