//! A private Redis Sentinel deployment for tests: one master, one replica
//! and three sentinels, each on a free port. A test kills the master
//! (`kill -9`) and waits for the sentinels to promote the replica.

use crate::free_port;
use anyhow::{Context, Result, bail};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The service name the sentinels watch.
pub const SERVICE: &str = "testkit";

/// How long the sentinels wait before they call a silent master down.
const DOWN_AFTER_MS: u64 = 1000;

struct Process {
    port: u16,
    child: Option<Child>,
}

/// A running deployment; every process is killed and its folder removed
/// when dropped.
pub struct RedisSentinel {
    /// The two data nodes: the first starts as the master.
    servers: Vec<Process>,
    sentinels: Vec<Process>,
    dir: PathBuf,
}

impl RedisSentinel {
    /// Starts the master, its replica (synced) and three sentinels that
    /// agree on the master. Ports taken by another process before a node
    /// binds them make the deployment start again on fresh ones.
    pub async fn start() -> Result<RedisSentinel> {
        let mut last_error = None;
        for _ in 0..3 {
            match RedisSentinel::start_once().await {
                Ok(deployment) => return Ok(deployment),
                Err(error) => last_error = Some(error),
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow::anyhow!("no attempt made")))
    }

    async fn start_once() -> Result<RedisSentinel> {
        let dir = std::env::temp_dir().join(format!(
            "testkit-redis-sentinel-{}-{}",
            std::process::id(),
            free_port()
        ));
        std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
        let process = || Process {
            port: free_port(),
            child: None,
        };
        let mut deployment = RedisSentinel {
            servers: vec![process(), process()],
            sentinels: vec![process(), process(), process()],
            dir,
        };
        let master = deployment.servers[0].port;
        for index in 0..deployment.servers.len() {
            let port = deployment.servers[index].port;
            let mut command = Command::new("redis-server");
            command.args(["--port", &port.to_string()]).args([
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ]);
            if index > 0 {
                command.args(["--replicaof", "127.0.0.1", &master.to_string()]);
            }
            deployment.servers[index].child = Some(spawn(command, port).await?);
        }
        for index in 0..deployment.sentinels.len() {
            let port = deployment.sentinels[index].port;
            let config = deployment.dir.join(format!("sentinel-{port}.conf"));
            std::fs::write(
                &config,
                format!(
                    "port {port}\n\
                     bind 127.0.0.1\n\
                     dir {dir}\n\
                     sentinel monitor {SERVICE} 127.0.0.1 {master} 2\n\
                     sentinel down-after-milliseconds {SERVICE} {DOWN_AFTER_MS}\n\
                     sentinel failover-timeout {SERVICE} 10000\n\
                     sentinel parallel-syncs {SERVICE} 1\n",
                    dir = deployment.dir.display()
                ),
            )
            .with_context(|| format!("write {}", config.display()))?;
            let mut command = Command::new("redis-server");
            command.arg(&config).arg("--sentinel");
            deployment.sentinels[index].child = Some(spawn(command, port).await?);
        }
        deployment.wait_ready(Duration::from_secs(20)).await?;
        Ok(deployment)
    }

    /// `REDIS_URL` for the apps: the sentinels, then the service.
    pub fn url(&self) -> String {
        let sentinels: Vec<String> = self
            .sentinels
            .iter()
            .map(|sentinel| format!("127.0.0.1:{}", sentinel.port))
            .collect();
        format!("redis-sentinel://{}/{SERVICE}", sentinels.join(","))
    }

    /// The port of the master the sentinels name now.
    pub fn master_port(&self) -> Result<u16> {
        for sentinel in self.sentinels.iter().filter(|s| s.child.is_some()) {
            let output = Command::new("redis-cli")
                .args(["-p", &sentinel.port.to_string()])
                .args(["sentinel", "get-master-addr-by-name", SERVICE])
                .output()
                .context("redis-cli sentinel get-master-addr-by-name")?;
            let text = String::from_utf8_lossy(&output.stdout);
            if let Some(port) = text
                .lines()
                .nth(1)
                .and_then(|port| port.trim().parse().ok())
            {
                return Ok(port);
            }
        }
        bail!("no sentinel names the master")
    }

    /// Makes the replica fall behind: it is stopped (SIGSTOP) and the
    /// master drops its link, so that nothing the master writes from now
    /// on reaches it, until [`resume_replica`](Self::resume_replica).
    pub fn lag_replica(&self) -> Result<()> {
        crate::signal(self.replica()?.id(), "STOP")?;
        crate::drop_replicas(self.master_port()?)
    }

    /// Lets a paused replica go on.
    pub fn resume_replica(&self) -> Result<()> {
        crate::signal(self.replica()?.id(), "CONT")
    }

    /// The running server that is not the master the sentinels name.
    fn replica(&self) -> Result<&Child> {
        let master = self.master_port()?;
        self.servers
            .iter()
            .filter(|server| server.port != master)
            .find_map(|server| server.child.as_ref())
            .context("no replica runs")
    }

    /// Kills the current master with SIGKILL; returns its port.
    pub fn kill_master(&mut self) -> Result<u16> {
        let port = self.master_port()?;
        let server = self
            .servers
            .iter_mut()
            .find(|server| server.port == port)
            .context("the master is none of ours")?;
        if let Some(mut child) = server.child.take() {
            // Already dead is as good as killed.
            let _ = child.kill();
            let _ = child.wait();
        }
        Ok(port)
    }

    /// Waits until the sentinels name a master other than `old` and that
    /// server says it is one.
    pub async fn wait_failover(&self, old: u16) -> Result<u16> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(port) = self.master_port()
                && port != old
                && role(port).as_deref() == Some("master")
            {
                return Ok(port);
            }
            if Instant::now() > deadline {
                bail!("the sentinels promoted no replica within 30 s");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Every sentinel names the master and knows its replica and the other
    /// sentinels; the replica has the master's data.
    async fn wait_ready(&self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        let master = self.servers[0].port;
        loop {
            let replica_synced = info(self.servers[1].port, "replication")
                .is_some_and(|info| info.contains("master_link_status:up"));
            let sentinels_agree = self.sentinels.iter().all(|sentinel| {
                info(sentinel.port, "sentinel").is_some_and(|info| {
                    info.contains(&format!("address=127.0.0.1:{master},slaves=1,sentinels=3"))
                })
            });
            if replica_synced && sentinels_agree {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("the Sentinel deployment was not ready within {timeout:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for RedisSentinel {
    fn drop(&mut self) {
        for process in self.servers.iter_mut().chain(self.sentinels.iter_mut()) {
            if let Some(mut child) = process.child.take() {
                // Already dead is as good as killed.
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        // A folder left behind in the temp dir harms nothing.
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Starts `command` and waits until it listens on `port`, checking that
/// the listener is ours (another process may have taken the port first).
async fn spawn(mut command: Command, port: u16) -> Result<Child> {
    let mut child = command
        .stdout(Stdio::null())
        .stdin(Stdio::null())
        .spawn()
        .context("cannot start redis-server: install Debian's redis-server package")?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        if Instant::now() > deadline {
            let _ = child.kill();
            bail!("redis-server did not start on port {port}");
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    if let Some(status) = child.try_wait()? {
        bail!("redis-server on port {port} exited: {status}");
    }
    Ok(child)
}

fn info(port: u16, section: &str) -> Option<String> {
    let output = Command::new("redis-cli")
        .args(["-p", &port.to_string(), "info", section])
        .output()
        .ok()?;
    Some(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// The `role:` line of a server's `INFO replication`.
fn role(port: u16) -> Option<String> {
    info(port, "replication")?
        .lines()
        .find_map(|line| line.strip_prefix("role:"))
        .map(|role| role.trim().to_owned())
}
