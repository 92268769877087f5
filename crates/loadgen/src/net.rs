//! Opening client sockets. One source address has one range of ephemeral
//! ports towards a server port, so connections are spread over several
//! loopback source addresses (127.0.B.2, 127.0.B.3, …, every one of them is
//! the loopback interface on Linux), each process using its own `B`.

use anyhow::Context;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::net::{TcpSocket, TcpStream};

/// Round-robin over loopback source addresses.
#[derive(Debug)]
pub struct SourceAddrs {
    block: u8,
    count: usize,
    next: AtomicUsize,
}

impl SourceAddrs {
    /// `count` addresses in block `block` (this process's worker index).
    pub fn new(block: u8, count: usize) -> Self {
        SourceAddrs {
            block,
            count: count.clamp(1, 250),
            next: AtomicUsize::new(0),
        }
    }

    pub fn next_addr(&self) -> Ipv4Addr {
        let index = self.next.fetch_add(1, Ordering::Relaxed) % self.count;
        Ipv4Addr::new(127, 0, self.block, 2 + index as u8)
    }

    /// Connects to `target` from the next source address.
    pub async fn connect(&self, target: SocketAddr) -> anyhow::Result<TcpStream> {
        let source = if target.ip().is_loopback() {
            self.next_addr()
        } else {
            Ipv4Addr::UNSPECIFIED
        };
        let socket = TcpSocket::new_v4().context("creating a socket")?;
        socket
            .bind(SocketAddr::from((source, 0)))
            .with_context(|| format!("binding to {source}"))?;
        let stream = socket
            .connect(target)
            .await
            .with_context(|| format!("connecting to {target} from {source}"))?;
        stream.set_nodelay(true).context("TCP_NODELAY")?;
        Ok(stream)
    }
}

/// Closes a socket the hard way, as a pulled cable or a crashed peer would
/// look: zero linger turns the close into a TCP reset, no goodbye frames.
pub fn reset(stream: &TcpStream) {
    // Failure only means the socket is already gone.
    let _ = stream.set_zero_linger();
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    #[tokio::test]
    async fn connects_from_several_loopback_addresses() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let target = listener.local_addr().unwrap();
        let sources = SourceAddrs::new(9, 3);
        let mut peers = Vec::new();
        for _ in 0..3 {
            let mut client = sources.connect(target).await.unwrap();
            let (mut server_side, peer) = listener.accept().await.unwrap();
            client.write_all(b"x").await.unwrap();
            let mut byte = [0];
            server_side.read_exact(&mut byte).await.unwrap();
            peers.push(peer.ip());
        }
        assert_eq!(
            peers,
            vec![
                Ipv4Addr::new(127, 0, 9, 2),
                Ipv4Addr::new(127, 0, 9, 3),
                Ipv4Addr::new(127, 0, 9, 4)
            ]
        );
    }

    #[tokio::test]
    async fn reset_is_seen_as_a_reset_by_the_peer() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = SourceAddrs::new(0, 1)
            .connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (mut server_side, _) = listener.accept().await.unwrap();
        reset(&client);
        drop(client);
        let mut buffer = [0; 8];
        let error = server_side.read(&mut buffer).await.unwrap_err();
        assert_eq!(error.kind(), std::io::ErrorKind::ConnectionReset);
    }
}
