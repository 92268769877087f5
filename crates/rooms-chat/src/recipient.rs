//! What a room delivers to: a socket of our Socket.IO runtime in
//! production ([`Client`]), a recording stand-in in tests.
//!
//! Every frame is built once for all the members it goes to; a recipient
//! only decides when its copy leaves (at once, or with the clock's next
//! flush of a busy room), and a recipient that falls too far behind is cut
//! off by its own outbox, never skipped.

use crate::session::Session;
use socketio::{Frame, SocketRef};

/// A connected client of rooms-chat: the runtime's socket with its session.
pub(crate) type Client = SocketRef<Session>;

/// One member's way out, as the room sees it.
pub(crate) trait Recipient: Clone + Send + Sync + 'static {
    /// The socket's id, which names the member in the store.
    fn id(&self) -> &str;
    /// Sends a frame at once, after whatever waits before it.
    fn send(&self, frame: &Frame);
    /// Queues a frame of a busy room for the clock's next [`Recipient::flush`].
    fn queue(&self, frame: &Frame);
    /// Sends a volatile frame (`typing`) at once, dropped (false) for a
    /// socket that is behind.
    fn send_volatile(&self, frame: &Frame) -> bool;
    /// Writes what [`Recipient::queue`] queued.
    fn flush(&self);
    /// Ends the connection, not the membership: the client reconnects and
    /// re-joins with `since`. Must not block nor take the room locks.
    fn cut_off(&self);
}

impl Recipient for Client {
    fn id(&self) -> &str {
        socketio::Socket::id(self)
    }

    fn send(&self, frame: &Frame) {
        socketio::Socket::send(self, frame);
    }

    fn queue(&self, frame: &Frame) {
        socketio::Socket::queue(self, frame);
    }

    fn send_volatile(&self, frame: &Frame) -> bool {
        socketio::Socket::send_volatile(self, frame)
    }

    fn flush(&self) {
        socketio::Socket::flush(self);
    }

    fn cut_off(&self) {
        socketio::Socket::cut_off(self);
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! A recipient that records what it receives.

    use super::*;
    use parking_lot::Mutex;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

    #[derive(Clone)]
    pub(crate) struct Probe {
        id: Arc<str>,
        /// Frames as (event name, its first argument's JSON), in order.
        frames: Arc<Mutex<Vec<(String, String)>>>,
        cut: Arc<AtomicBool>,
    }

    impl Default for Probe {
        fn default() -> Probe {
            Probe::new()
        }
    }

    impl Probe {
        pub(crate) fn new() -> Probe {
            static NEXT: AtomicU64 = AtomicU64::new(1);
            let id = format!("probe-{}", NEXT.fetch_add(1, Ordering::Relaxed));
            Probe {
                id: id.into(),
                frames: Arc::default(),
                cut: Arc::default(),
            }
        }

        pub(crate) fn is_cut(&self) -> bool {
            self.cut.load(Ordering::SeqCst)
        }

        /// The events received, as (event name, JSON).
        pub(crate) fn frames(&self) -> Vec<(String, String)> {
            self.frames.lock().clone()
        }

        /// The `id` of every `{"id":N…}` frame received (0 for others), in order.
        pub(crate) fn ids(&self) -> Vec<u64> {
            self.frames
                .lock()
                .iter()
                .map(|(_, json)| {
                    serde_json::from_str::<serde_json::Value>(json)
                        .ok()
                        .and_then(|value| value.get("id").and_then(|id| id.as_u64()))
                        .unwrap_or(0)
                })
                .collect()
        }

        fn record(&self, frame: &Frame) {
            let packet = frame.packet();
            let text = std::str::from_utf8(&packet).expect("a text packet");
            let args: Vec<serde_json::Value> =
                serde_json::from_str(text.strip_prefix("42").expect("an event")).expect("JSON");
            let name = args[0].as_str().expect("an event name").to_owned();
            self.frames.lock().push((name, args[1].to_string()));
        }
    }

    impl Recipient for Probe {
        fn id(&self) -> &str {
            &self.id
        }

        fn send(&self, frame: &Frame) {
            self.record(frame);
        }

        fn queue(&self, frame: &Frame) {
            self.record(frame);
        }

        fn send_volatile(&self, frame: &Frame) -> bool {
            self.record(frame);
            true
        }

        fn flush(&self) {}

        fn cut_off(&self) {
            self.cut.store(true, Ordering::SeqCst);
        }
    }
}
