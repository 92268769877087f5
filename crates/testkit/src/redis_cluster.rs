//! A private Redis Cluster for tests: a few masters on free ports (the
//! cluster bus port of each chosen explicitly, since port + 10000 may be
//! taken), slots spread over them, and replicas if asked. A test may kill
//! one master (`kill -9`, a shard outage) and bring it back with its
//! slots, or let its replica take over.

use crate::free_port;
use anyhow::{Context, Result, bail};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// One master of the cluster.
struct Node {
    port: u16,
    bus_port: u16,
    child: Option<Child>,
}

/// A running cluster; every node is killed and its folder removed when dropped.
pub struct RedisCluster {
    nodes: Vec<Node>,
    dir: PathBuf,
}

impl RedisCluster {
    /// Starts `masters` nodes and joins them into one cluster. Free ports
    /// are only free when chosen: if another process takes one before its
    /// node binds it, the cluster is started again on fresh ports.
    pub async fn start(masters: usize) -> Result<RedisCluster> {
        RedisCluster::start_with_replicas(masters, 0).await
    }

    /// Starts `masters` nodes with `replicas` replicas each (so
    /// `masters * (1 + replicas)` nodes): a killed master's replica takes
    /// its slots over within a few seconds (the node timeout is 2 s).
    pub async fn start_with_replicas(masters: usize, replicas: usize) -> Result<RedisCluster> {
        let mut last_error = None;
        for _ in 0..3 {
            match RedisCluster::start_once(masters, replicas).await {
                Ok(cluster) => return Ok(cluster),
                Err(error) => last_error = Some(error),
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow::anyhow!("no attempt made")))
    }

    async fn start_once(masters: usize, replicas: usize) -> Result<RedisCluster> {
        let nodes = masters * (1 + replicas);
        let dir = std::env::temp_dir().join(format!(
            "testkit-redis-cluster-{}-{}",
            std::process::id(),
            free_port()
        ));
        std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
        let mut cluster = RedisCluster {
            nodes: (0..nodes)
                .map(|_| Node {
                    port: free_port(),
                    bus_port: free_port(),
                    child: None,
                })
                .collect(),
            dir,
        };
        for index in 0..nodes {
            cluster.start_node(index).await?;
        }
        let addresses: Vec<String> = cluster
            .nodes
            .iter()
            .map(|node| format!("127.0.0.1:{}", node.port))
            .collect();
        let created = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addresses)
            .args(["--cluster-replicas", &replicas.to_string(), "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .context("cannot run redis-cli: install Debian's redis-tools package")?;
        if !created.status.success() {
            bail!(
                "redis-cli --cluster create {addresses:?} failed: {}",
                String::from_utf8_lossy(&created.stdout)
            );
        }
        cluster.wait_ok(Duration::from_secs(20)).await?;
        if replicas > 0 {
            cluster
                .wait_replicas_synced(Duration::from_secs(20))
                .await?;
        }
        Ok(cluster)
    }

    /// fred's cluster URL: the first node, the others as `node=` hints.
    pub fn url(&self) -> String {
        let mut nodes = self.nodes.iter();
        let mut url = match nodes.next() {
            Some(first) => format!("redis-cluster://127.0.0.1:{}", first.port),
            None => String::from("redis-cluster://127.0.0.1"),
        };
        for (index, node) in nodes.enumerate() {
            url.push(if index == 0 { '?' } else { '&' });
            url.push_str(&format!("node=127.0.0.1:{}", node.port));
        }
        url
    }

    /// The client ports of the nodes (the masters first, without
    /// replicas), in start order.
    pub fn ports(&self) -> Vec<u16> {
        self.nodes.iter().map(|node| node.port).collect()
    }

    /// The master that owns `key`'s slot now (its index in [`ports`](Self::ports)).
    pub fn owner_of(&self, key: &str) -> Result<usize> {
        // Asked of a running node: a killed one cannot answer.
        let first = self
            .nodes
            .iter()
            .find(|node| node.child.is_some())
            .context("a cluster without running nodes")?;
        let output = Command::new("redis-cli")
            .args(["-p", &first.port.to_string(), "cluster", "keyslot", key])
            .output()
            .context("redis-cli cluster keyslot")?;
        let slot: u16 = String::from_utf8_lossy(&output.stdout)
            .trim()
            .parse()
            .context("CLUSTER KEYSLOT answered no number")?;
        let output = Command::new("redis-cli")
            .args(["-p", &first.port.to_string(), "cluster", "nodes"])
            .output()
            .context("redis-cli cluster nodes")?;
        owner_in_nodes(&String::from_utf8_lossy(&output.stdout), slot)
            .and_then(|port| self.nodes.iter().position(|node| node.port == port))
            .with_context(|| format!("no master owns slot {slot}"))
    }

    /// The replica of master `index` (its index in [`ports`](Self::ports)).
    pub fn replica_of(&self, index: usize) -> Result<usize> {
        let master = self.nodes.get(index).context("no such node")?;
        let output = Command::new("redis-cli")
            .args(["-p", &master.port.to_string(), "cluster", "myid"])
            .output()
            .context("redis-cli cluster myid")?;
        let id = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        let output = Command::new("redis-cli")
            .args(["-p", &master.port.to_string(), "cluster", "replicas", &id])
            .output()
            .context("redis-cli cluster replicas")?;
        let text = String::from_utf8_lossy(&output.stdout);
        let port: u16 = text
            .split_whitespace()
            .nth(1)
            .and_then(|address| address.split('@').next()?.rsplit(':').next()?.parse().ok())
            .with_context(|| format!("master {index} has no replica: {text}"))?;
        self.nodes
            .iter()
            .position(|node| node.port == port)
            .context("the replica is none of ours")
    }

    /// Makes master `index`'s replica fall behind: the replica is stopped
    /// (SIGSTOP) and the master drops its link, so that nothing the master
    /// writes from now on reaches it, until [`resume`](Self::resume).
    /// Returns the replica's index.
    pub fn lag_replica(&self, index: usize) -> Result<usize> {
        let replica = self.replica_of(index)?;
        let child = self.nodes[replica].child.as_ref();
        crate::signal(child.context("the replica is not running")?.id(), "STOP")?;
        crate::drop_replicas(self.nodes[index].port)?;
        Ok(replica)
    }

    /// Lets a paused node go on.
    pub fn resume(&self, index: usize) -> Result<()> {
        let child = self.nodes.get(index).and_then(|node| node.child.as_ref());
        crate::signal(child.context("no such running node")?.id(), "CONT")
    }

    /// Kills master `index` with SIGKILL: its shard is down, the others serve.
    pub fn kill(&mut self, index: usize) {
        if let Some(mut child) = self.nodes.get_mut(index).and_then(|node| node.child.take()) {
            // Already dead is as good as killed.
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts master `index` again with its cluster config (so with its
    /// slots, but empty: nothing is saved) and waits for the cluster to be ok.
    pub async fn restart(&mut self, index: usize) -> Result<()> {
        self.kill(index);
        self.start_node(index).await?;
        self.wait_ok(Duration::from_secs(20)).await
    }

    /// Kills every master: the whole cluster is out.
    pub fn stop(&mut self) {
        for index in 0..self.nodes.len() {
            self.kill(index);
        }
    }

    /// Starts every master again (with its slots, empty) and waits for the
    /// cluster to be ok.
    pub async fn restart_all(&mut self) -> Result<()> {
        for index in 0..self.nodes.len() {
            self.kill(index);
            self.start_node(index).await?;
        }
        self.wait_ok(Duration::from_secs(20)).await
    }

    async fn start_node(&mut self, index: usize) -> Result<()> {
        let dir = self.dir.clone();
        let node = self.nodes.get_mut(index).context("no such node")?;
        let child = Command::new("redis-server")
            .args(["--port", &node.port.to_string()])
            .args(["--cluster-port", &node.bus_port.to_string()])
            .args(["--cluster-enabled", "yes"])
            .args([
                "--cluster-config-file",
                &format!("nodes-{}.conf", node.port),
            ])
            // The other shards serve while one is down.
            .args(["--cluster-require-full-coverage", "no"])
            .args(["--cluster-node-timeout", "2000"])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&dir)
            .stdout(Stdio::null())
            .stdin(Stdio::null())
            .spawn()
            .context("cannot start redis-server: install Debian's redis-server package")?;
        let port = node.port;
        let child = node.child.insert(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            if Instant::now() > deadline {
                bail!("redis-server did not start on port {port}");
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        // Something answers on the port: it must be our node, not another
        // process that took the port first (ours then exits at once).
        tokio::time::sleep(Duration::from_millis(50)).await;
        if let Some(status) = child.try_wait()? {
            bail!("redis-server on port {port} exited: {status}");
        }
        Ok(())
    }

    /// Waits until every running replica has its master's data
    /// (`master_link_status:up`), so that a failover has a replica to promote.
    async fn wait_replicas_synced(&self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let synced = self
                .nodes
                .iter()
                .filter(|node| node.child.is_some())
                .all(|node| replica_synced_or_master(node.port));
            if synced {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("the replicas did not sync within {timeout:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the running nodes agree the cluster is whole again
    /// (after a killed master's replica took over).
    pub async fn wait_failover(&self) -> Result<()> {
        self.wait_ok(Duration::from_secs(30)).await
    }

    /// Waits until every running node says `cluster_state:ok`.
    async fn wait_ok(&self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let all_ok = self
                .nodes
                .iter()
                .filter(|node| node.child.is_some())
                .all(|node| cluster_state_ok(node.port));
            if all_ok {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("the Redis Cluster did not become ok within {timeout:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        self.stop();
        // A folder left behind in the temp dir harms nothing.
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn cluster_state_ok(port: u16) -> bool {
    Command::new("redis-cli")
        .args(["-p", &port.to_string(), "cluster", "info"])
        .output()
        .map(|output| String::from_utf8_lossy(&output.stdout).contains("cluster_state:ok"))
        .unwrap_or(false)
}

fn replica_synced_or_master(port: u16) -> bool {
    Command::new("redis-cli")
        .args(["-p", &port.to_string(), "info", "replication"])
        .output()
        .map(|output| {
            let info = String::from_utf8_lossy(&output.stdout);
            info.contains("role:master") || info.contains("master_link_status:up")
        })
        .unwrap_or(false)
}

/// The port of the master owning `slot`, read from `CLUSTER NODES`
/// (`<id> <ip>:<port>@<bus> <flags> <master> <ping> <pong> <epoch> <link> <slots>...`).
fn owner_in_nodes(text: &str, slot: u16) -> Option<u16> {
    text.lines().find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let address = fields.get(1)?;
        let is_master = fields.get(2)?.split(',').any(|flag| flag == "master");
        let owns = fields.iter().skip(8).any(|range| {
            let mut bounds = range.split('-').map(|bound| bound.parse::<u16>());
            match (bounds.next(), bounds.next()) {
                (Some(Ok(start)), Some(Ok(end))) => (start..=end).contains(&slot),
                (Some(Ok(single)), None) => single == slot,
                _ => false,
            }
        });
        if !(is_master && owns) {
            return None;
        }
        let port = address.split('@').next()?.rsplit(':').next()?;
        port.parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_owner_of_a_slot_is_read_from_cluster_nodes() {
        let nodes = "\
a1 127.0.0.1:7001@17001 myself,master - 0 0 1 connected 0-5460
b2 127.0.0.1:7002@17002 master - 0 0 2 connected 5461-10922
c3 127.0.0.1:7003@17003 master,fail - 0 0 3 connected 10923-16383
";
        assert_eq!(owner_in_nodes(nodes, 0), Some(7001));
        assert_eq!(owner_in_nodes(nodes, 5461), Some(7002));
        assert_eq!(owner_in_nodes(nodes, 16383), Some(7003));
    }
}
