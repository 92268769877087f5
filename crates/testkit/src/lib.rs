//! Test support for the apps' integration tests, which talk to real
//! processes over real sockets: a server binary on a free port (stopped
//! with SIGTERM or SIGKILL like in production) and a private `redis-server`
//! that a test may stop and restart to play an outage, or a private Redis
//! Cluster (with replicas if asked) whose masters a test may kill, or a
//! private Sentinel deployment whose master a test may kill.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod limits;
mod redis_cluster;
mod redis_sentinel;
mod shared_redis;

pub use redis_cluster::RedisCluster;
pub use redis_sentinel::RedisSentinel;
pub use shared_redis::SharedRedis;

use anyhow::{Context, Result, bail};
use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A port that nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("no free port on 127.0.0.1")
}

/// One running server binary; killed when dropped.
pub struct TestServer {
    /// Where the server listens (127.0.0.1, a free port).
    pub addr: SocketAddr,
    child: Child,
}

impl TestServer {
    /// Starts `binary` (pass `env!("CARGO_BIN_EXE_<app>")`) on a free port
    /// with `env` added, and waits until `/healthz` answers 200.
    pub async fn start(binary: &str, env: &[(&str, &str)]) -> Result<TestServer> {
        let server = Self::spawn(binary, free_port(), env)?;
        server.wait_healthy(Duration::from_secs(15)).await?;
        Ok(server)
    }

    /// Starts `binary` on `port` without waiting for it to become healthy.
    pub fn spawn(binary: &str, port: u16, env: &[(&str, &str)]) -> Result<TestServer> {
        Self::spawn_command(Command::new(binary), binary, port, env)
    }

    /// Starts `binary` on `port` under an open-files limit of
    /// `open_files`, hard and soft (so that it cannot raise it), as a
    /// crowded production host would, and waits until `/healthz` answers
    /// 200. The test process keeps its own limit.
    pub async fn start_with_open_files(
        binary: &str,
        open_files: u32,
        env: &[(&str, &str)],
    ) -> Result<TestServer> {
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(format!("ulimit -n {open_files} && exec \"$0\""))
            .arg(binary);
        let server = Self::spawn_command(command, binary, free_port(), env)?;
        server.wait_healthy(Duration::from_secs(15)).await?;
        Ok(server)
    }

    fn spawn_command(
        mut command: Command,
        binary: &str,
        port: u16,
        env: &[(&str, &str)],
    ) -> Result<TestServer> {
        command
            .env("HOST", "127.0.0.1")
            .env("PORT", port.to_string())
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdin(Stdio::null());
        for (key, value) in env {
            command.env(key, value);
        }
        let child = command
            .spawn()
            .with_context(|| format!("cannot start {binary}"))?;
        Ok(TestServer {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            child,
        })
    }

    /// `http://<addr><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// `ws://<addr><path>`.
    pub fn ws_url(&self, path: &str) -> String {
        format!("ws://{}{}", self.addr, path)
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits until `GET /healthz` answers 200.
    pub async fn wait_healthy(&self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(200) = http_status(self.addr, "/healthz").await {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("server on {} did not become healthy", self.addr);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Sends SIGTERM, as a deploy would.
    pub fn terminate(&self) -> Result<()> {
        signal(self.child.id(), "TERM")
    }

    /// SIGKILL: the instance dies without a word to anyone.
    pub fn kill(&mut self) -> Result<()> {
        self.child.kill().context("kill")?;
        self.child.wait().context("wait")?;
        Ok(())
    }

    /// Waits for the process to exit, at most `timeout`.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Result<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() > deadline {
                bail!("server did not exit within {timeout:?}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        // A server that already exited (a test stopped it) fails both: fine.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The status code of `GET path` (a minimal HTTP/1.1 request, so the kit
/// needs no HTTP client).
pub async fn http_status(addr: SocketAddr, path: &str) -> Result<u16> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).await?;
    let status = std::str::from_utf8(&head[9..12])?.parse()?;
    Ok(status)
}

/// Sends signal `name` (`TERM`, `STOP`, `CONT`…) to process `pid`: a
/// replica stopped this way falls behind its master, as a slow one would.
fn signal(pid: u32, name: &str) -> Result<()> {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status()
        .context("kill command")?;
    if !status.success() {
        bail!("kill -{name} {pid} failed");
    }
    Ok(())
}

/// Makes the Redis on `port` drop the links of its replicas.
fn drop_replicas(port: u16) -> Result<()> {
    let output = Command::new("redis-cli")
        .args(["-p", &port.to_string(), "client", "kill", "type", "replica"])
        .output()
        .context("redis-cli client kill type replica")?;
    if !output.status.success() {
        bail!("CLIENT KILL TYPE replica on {port} failed");
    }
    Ok(())
}

/// A private `redis-server` on a free port, killed when dropped.
pub struct RedisServer {
    /// The port it listens on (127.0.0.1).
    pub port: u16,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts `redis-server` on a free port, without persistence, and waits until it answers.
    pub async fn start() -> Result<RedisServer> {
        let mut redis = RedisServer {
            port: free_port(),
            child: None,
        };
        redis.restart().await?;
        Ok(redis)
    }

    /// `redis://127.0.0.1:<port>/0`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Kills the server (an outage); `restart` brings it back on the same port, empty.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Already dead is as good as killed.
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops the server and starts a fresh one on the same port: the data is gone, as after a restart without persistence.
    pub async fn restart(&mut self) -> Result<()> {
        self.stop();
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stdin(Stdio::null())
            .spawn()
            .context("cannot start redis-server: install Debian's redis-server package")?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .is_err()
        {
            if Instant::now() > deadline {
                bail!("redis-server did not start on port {}", self.port);
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        Ok(())
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}
