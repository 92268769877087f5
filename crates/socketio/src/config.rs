//! The runtime's settings: where it listens and the Engine.IO limits it
//! announces in its handshake and enforces.

use std::time::Duration;

/// The runtime's settings; [`Config::default`] has socket.io's defaults.
#[derive(Debug, Clone)]
pub struct Config {
    /// The path Engine.IO answers on, with its trailing slash.
    pub path: String,
    /// How often the server pings a client.
    pub ping_interval: Duration,
    /// How long a client has to answer a ping.
    pub ping_timeout: Duration,
    /// The largest message (WebSocket) or payload (long-polling POST) a
    /// client may send, in bytes.
    pub max_payload: usize,
    /// How many packets may wait for a client before it is cut off as too
    /// slow.
    pub max_queued: usize,
    /// How many bytes of packets may wait for a client before it is cut
    /// off as too slow: what a reader that stopped may cost.
    pub max_queued_bytes: usize,
    /// Whether a client whose connection dropped may recover its socket
    /// (socket.io's connection state recovery): every connect reply then
    /// carries a `pid`, and the app decides at each reconnect (see
    /// [`crate::Resume`]).
    pub recovery: bool,
    /// How long a client may stay without connecting to `/` (checked at
    /// its pings, so up to one ping interval later).
    pub connect_timeout: Duration,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            path: "/socket.io/".into(),
            ping_interval: Duration::from_millis(25_000),
            ping_timeout: Duration::from_millis(20_000),
            max_payload: 1_000_000,
            max_queued: 1024,
            max_queued_bytes: 1 << 20,
            recovery: false,
            connect_timeout: Duration::from_millis(45_000),
        }
    }
}
