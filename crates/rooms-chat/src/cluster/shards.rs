//! The Redis nodes this instance talks to: one shard for one Redis, one per
//! master for a Redis Cluster, each with its own command connection, its
//! own subscriber and its own health.
//!
//! fred's cluster client runs every node behind one routing task, and while
//! it reconnects to a dead master it serves no node at all: one shard
//! outage would stop every room. Here each master has a plain client of
//! its own, and a key goes to the master that owns its hash slot (read
//! once at start from `CLUSTER SLOTS`), so a dead shard stops only the
//! rooms it holds. A topology change (a failover to a replica, a slot
//! moved) is followed by [`super::topology`]: the shard's connections are
//! swapped for ones to its new master, and everything that reads them
//! (the bus, the liveness checks) is told through [`Shard::moved`].
use super::schema::CONTROL_TAG;
use anyhow::{Context, Result, anyhow, bail};
use fred::clients::{Client, SubscriberClient};
use fred::interfaces::ClientLike;
use fred::types::config::{Config, ServerConfig};
use fred::types::{CustomCommand, Value};
use parking_lot::RwLock;
use redis_link::LinkOptions;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::{Notify, watch};

/// The number of hash slots of a Redis Cluster.
const SLOTS: u16 = 16384;

/// The connections to one master.
pub struct Links {
    /// `host:port` (or the Sentinel service), for logs.
    pub name: String,
    pub client: Client,
    pub subscriber: SubscriberClient,
}

/// One master and the connections to it.
pub struct Shard {
    links: RwLock<Arc<Links>>,
    /// A hash tag whose slot this shard owns, for keys about the shard itself.
    pub tag: String,
    up: AtomicBool,
    /// Whether a heartbeat has found it serving since the start.
    beaten: AtomicBool,
    /// Asks for a heartbeat now (after a reconnect) rather than at the next tick.
    pub check: Notify,
    /// Counts the changes of the shard's master or slots: whoever reads
    /// the shard's connections takes the new ones and subscribes again.
    moved: watch::Sender<u64>,
    /// The `run_id` of the Redis server that answered the last heartbeat:
    /// another one means a failover (or a restart), which may have lost
    /// the last writes.
    server_id: parking_lot::Mutex<Option<String>>,
}

impl Shard {
    fn new(links: Links, tag: String) -> Shard {
        Shard {
            links: RwLock::new(Arc::new(links)),
            tag,
            up: AtomicBool::new(true),
            beaten: AtomicBool::new(false),
            check: Notify::new(),
            moved: watch::Sender::new(0),
            server_id: parking_lot::Mutex::new(None),
        }
    }

    /// The current connections (a failover replaces them).
    pub fn links(&self) -> Arc<Links> {
        self.links.read().clone()
    }

    /// The command connection of the current master.
    pub fn client(&self) -> Client {
        self.links.read().client.clone()
    }

    /// The subscriber of the current master.
    pub fn subscriber(&self) -> SubscriberClient {
        self.links.read().subscriber.clone()
    }

    /// The current master's name, for logs and errors.
    pub fn name(&self) -> String {
        self.links.read().name.clone()
    }

    /// Tells when the shard's master or slots change.
    pub fn moved(&self) -> watch::Receiver<u64> {
        self.moved.subscribe()
    }

    /// Says that the shard's slots changed: its channels are subscribed again.
    pub fn slots_changed(&self) {
        self.moved.send_modify(|generation| *generation += 1);
    }

    /// Puts connections to a new master in place of the old ones, which
    /// are returned to be closed. The shard counts as down until a
    /// heartbeat has found the new master and given it its state.
    pub fn replace(&self, links: Links) -> Arc<Links> {
        let old = std::mem::replace(&mut *self.links.write(), Arc::new(links));
        self.set_up(false);
        self.slots_changed();
        self.check.notify_one();
        old
    }

    /// Records the `run_id` a heartbeat read; true if the shard was served
    /// by another server before (a failover or a restart happened since).
    pub fn server_changed(&self, run_id: String) -> bool {
        let mut known = self.server_id.lock();
        let changed = known.as_ref().is_some_and(|known| *known != run_id);
        *known = Some(run_id);
        changed
    }

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
            let shard = self.name();
            if up {
                tracing::info!(shard, "Redis shard is back");
            } else {
                tracing::warn!(shard, "Redis shard is down");
            }
        }
    }
}

/// `(first slot, last slot, shard index)`.
type Ranges = Vec<(u16, u16, usize)>;

/// Every shard, and which one owns each slot.
pub struct Shards {
    shards: Vec<Arc<Shard>>,
    ranges: RwLock<Ranges>,
    control: usize,
    /// How to reach the nodes: the configuration from `REDIS_URL` and the
    /// options, to connect to a new master after a failover.
    config: Config,
    options: LinkOptions,
    /// Whether `REDIS_URL` names a Redis Cluster (whose topology is
    /// followed here) rather than one Redis (or a Sentinel service, which
    /// fred follows by itself).
    clustered: bool,
    /// Asks for a topology check now (a `MOVED` answer, a lost link).
    pub recheck: Notify,
}

impl Shards {
    /// Reads the topology and connects to every master (failing if one of
    /// them cannot be reached now).
    pub async fn connect(url: &str, options: &LinkOptions) -> Result<Shards> {
        let config = redis_link::connect::config(url)?;
        let clustered = matches!(config.server, ServerConfig::Clustered { .. });
        let masters = match &config.server {
            ServerConfig::Clustered { hosts, .. } => {
                let seeds: Vec<(String, u16)> = hosts
                    .iter()
                    .map(|seed| (seed.host.to_string(), seed.port))
                    .collect();
                cluster_slots(&config, &seeds, options).await?
            }
            // One Redis, or the master a Sentinel service names (fred asks
            // the sentinels again at each reconnect).
            _ => vec![(String::new(), 0, vec![(0, SLOTS - 1)])],
        };
        let mut shards = Vec::new();
        let mut ranges = Vec::new();
        for (index, (host, port, owned)) in masters.into_iter().enumerate() {
            let links = if clustered {
                connect_links(&config, options, &host, port).await?
            } else {
                open_links(config.clone(), options, server_name(&config)).await?
            };
            ranges.extend(owned.iter().map(|&(first, last)| (first, last, index)));
            shards.push(links);
        }
        ranges.sort_unstable();
        let owner = |slot: u16| owner_in(&ranges, slot);
        let control = owner(slot_of(CONTROL_TAG)).context("no master owns the control slot")?;
        let shards = shards
            .into_iter()
            .enumerate()
            .map(|(index, links)| {
                let tag = if index == control {
                    CONTROL_TAG.to_owned()
                } else {
                    tag_owned_by(index, &owner)
                };
                Arc::new(Shard::new(links, tag))
            })
            .collect();
        Ok(Shards {
            shards,
            ranges: RwLock::new(ranges),
            control,
            config,
            options: options.clone(),
            clustered,
            recheck: Notify::new(),
        })
    }

    pub fn all(&self) -> &[Arc<Shard>] {
        &self.shards
    }

    /// Whether the topology is a Redis Cluster's, followed by this instance.
    pub fn is_clustered(&self) -> bool {
        self.clustered
    }

    /// The shard that owns `key` (by its hash tag, as Redis Cluster does).
    pub fn of_key(&self, key: &str) -> &Arc<Shard> {
        let slot = fred::util::redis_keyslot(key.as_bytes());
        let index = owner_in(&self.ranges.read(), slot).unwrap_or(self.control);
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

    /// Asks the cluster for its masters now, from the shards that answer
    /// first, then from the others.
    pub async fn masters(&self) -> Result<Vec<Master>> {
        let mut nodes: Vec<(String, u16)> = Vec::new();
        let mut shards: Vec<&Arc<Shard>> = self.shards.iter().collect();
        shards.sort_by_key(|shard| !shard.is_up());
        for shard in shards {
            if let Some((host, port)) = shard.name().rsplit_once(':')
                && let Ok(port) = port.parse()
            {
                nodes.push((host.to_owned(), port));
            }
        }
        if let ServerConfig::Clustered { hosts, .. } = &self.config.server {
            nodes.extend(hosts.iter().map(|seed| (seed.host.to_string(), seed.port)));
        }
        cluster_slots(&self.config, &nodes, &self.options).await
    }

    /// Takes in the cluster's current masters: a shard whose slots another
    /// master serves now is connected to it (its old connections are
    /// returned, to be closed), and the slot map follows. A master that
    /// serves none of the slots known at start (one added later) is not
    /// used: its slots stay with their former shard, which answers `MOVED`.
    pub async fn follow(&self, masters: &[Master]) -> Vec<Arc<Links>> {
        let mut replaced = Vec::new();
        let mut changed = false;
        let ranges = self.ranges.read().clone();
        for (index, shard) in self.shards.iter().enumerate() {
            let Some(&(first, _, _)) = ranges.iter().find(|range| range.2 == index) else {
                continue;
            };
            let Some((host, port, _)) = masters
                .iter()
                .find(|(_, _, owned)| owned.iter().any(|r| (r.0..=r.1).contains(&first)))
            else {
                continue;
            };
            let name = format!("{host}:{port}");
            if name == shard.name() {
                continue;
            }
            match connect_links(&self.config, &self.options, host, *port).await {
                Ok(links) => {
                    tracing::warn!(
                        from = shard.name(),
                        to = name,
                        "a shard moved to a new master"
                    );
                    replaced.push(shard.replace(links));
                    changed = true;
                }
                Err(error) => {
                    // The slot map changes once every shard has its master.
                    tracing::warn!("cannot reach the new master yet: {error:#}");
                    return replaced;
                }
            }
        }
        let mut ranges: Ranges = Vec::new();
        for (host, port, owned) in masters {
            let name = format!("{host}:{port}");
            let Some(index) = self.shards.iter().position(|shard| shard.name() == name) else {
                tracing::debug!(master = name, "a master unknown at start is not used");
                continue;
            };
            ranges.extend(owned.iter().map(|&(first, last)| (first, last, index)));
        }
        ranges.sort_unstable();
        let mut known = self.ranges.write();
        if *known != ranges {
            *known = ranges;
            changed = true;
        }
        drop(known);
        if changed {
            for shard in &self.shards {
                shard.slots_changed();
            }
        }
        replaced
    }
}

fn owner_in(ranges: &Ranges, slot: u16) -> Option<usize> {
    ranges
        .iter()
        .find(|(first, last, _)| (*first..=*last).contains(&slot))
        .map(|(_, _, index)| *index)
}

/// What names the server of a configuration that is not a cluster's.
fn server_name(config: &Config) -> String {
    match &config.server {
        ServerConfig::Sentinel { service_name, .. } => format!("sentinel/{service_name}"),
        server => server
            .hosts()
            .first()
            .map(|host| format!("{}:{}", host.host, host.port))
            .unwrap_or_default(),
    }
}

/// Connects to the master at `host:port` of a cluster.
async fn connect_links(
    config: &Config,
    options: &LinkOptions,
    host: &str,
    port: u16,
) -> Result<Links> {
    let mut node = config.clone();
    node.server = ServerConfig::new_centralized(host, port);
    open_links(node, options, format!("{host}:{port}")).await
}

/// Builds and connects a command client and a subscriber.
async fn open_links(node: Config, options: &LinkOptions, name: String) -> Result<Links> {
    let client = builder(node.clone(), options)
        .build()
        .context("build a Redis client")?;
    let subscriber = builder(node, options)
        .build_subscriber_client()
        .context("build a Redis subscriber")?;
    let connected = async {
        client
            .init()
            .await
            .with_context(|| format!("cannot connect to Redis at {name}"))?;
        subscriber
            .init()
            .await
            .with_context(|| format!("cannot subscribe at Redis {name}"))?;
        Ok::<_, anyhow::Error>(())
    };
    if let Err(error) = connected.await {
        // Stops their reconnection tasks; the error is what matters.
        let _ = client.quit().await;
        let _ = subscriber.quit().await;
        return Err(error);
    }
    Ok(Links {
        name,
        client,
        subscriber,
    })
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

/// A master: host, port and the slot ranges it serves.
pub type Master = (String, u16, Vec<(u16, u16)>);

/// The masters and their slot ranges, asked of the first seed node that answers.
async fn cluster_slots(
    config: &Config,
    seeds: &[(String, u16)],
    options: &LinkOptions,
) -> Result<Vec<Master>> {
    let mut last_error = anyhow!("REDIS_URL names no cluster node");
    for (host, port) in seeds {
        let mut node = config.clone();
        node.server = ServerConfig::new_centralized(host.as_str(), *port);
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
                last_error = anyhow!(error).context(format!("CLUSTER SLOTS on {host}:{port}"))
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
