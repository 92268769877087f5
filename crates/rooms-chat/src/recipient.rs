//! What the outlets write to: a Socket.IO socket in production, a
//! recording stand-in in tests.

use crate::hangups::Hangups;
use serde_json::value::RawValue;
use socketioxide::extract::SocketRef;
use socketioxide::socket::Sid;
use socketioxide::{SendError, SocketError};
use std::sync::Arc;

/// How often a full polling socket is asked again to take its disconnect packet.
const CUT_OFF_RETRY: std::time::Duration = std::time::Duration::from_millis(50);

/// The outcome of handing one frame to one socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    Sent,
    /// Its outgoing queue is full: the frame must wait, never be skipped.
    Full,
    /// It is closed already.
    Gone,
}

pub trait Recipient: Clone + Send + Sync + 'static {
    fn sid(&self) -> Sid;
    /// Queues one frame without waiting.
    fn send(&self, event: &'static str, json: &RawValue) -> Delivery;
    /// Ends the connection; its client reconnects and re-joins with
    /// `since`. Must not block nor take the room locks synchronously.
    fn cut_off(&self);
    /// The frames handed over since the last call leave in one write
    /// (tests look at the batches; a socket needs no telling).
    fn end_of_write(&self) {}
}

/// A socket and the way to hang its connection up.
#[derive(Clone)]
pub struct Member {
    pub socket: SocketRef,
    pub hangups: Arc<Hangups>,
}

impl Recipient for Member {
    fn sid(&self) -> Sid {
        self.socket.id
    }

    fn send(&self, event: &'static str, json: &RawValue) -> Delivery {
        match self.socket.emit(event, json) {
            Ok(()) => Delivery::Sent,
            Err(SendError::Socket(SocketError::InternalChannelFull)) => Delivery::Full,
            Err(SendError::Socket(SocketError::Closed)) => Delivery::Gone,
            Err(SendError::Serialize(error)) => {
                // Cannot happen with JSON we produced; cut off rather than skip.
                tracing::error!(%error, "cannot encode a frame");
                self.cut_off();
                Delivery::Gone
            }
        }
    }

    fn cut_off(&self) {
        // socketioxide refuses to queue a disconnect packet while the
        // socket's queue is full, so the connection itself is hung up: the
        // client gets what was queued, then the close. A polling socket has
        // no connection of its own; it is asked again until its client has
        // drained a little (or stops polling and times out).
        self.hangups.hang_up(&self.socket);
        let socket = self.socket.clone();
        tokio::spawn(async move {
            while socket.connected() {
                match socket.clone().disconnect() {
                    Err(SocketError::InternalChannelFull) => {
                        tokio::time::sleep(CUT_OFF_RETRY).await;
                    }
                    _ => return,
                }
            }
        });
    }
}

#[cfg(test)]
pub mod testing {
    //! A recipient that records what it receives, write by write.

    use super::*;
    use parking_lot::Mutex;
    use std::sync::atomic::{AtomicBool, Ordering};

    #[derive(Clone)]
    pub struct Probe {
        sid: Sid,
        /// Frames (their JSON) in order, grouped by the call that sent them
        /// back to back: a new group starts when the writer was idle.
        frames: Arc<Mutex<Vec<(String, String)>>>,
        full: Arc<AtomicBool>,
        cut: Arc<AtomicBool>,
        writes: Arc<Mutex<Vec<Vec<u64>>>>,
        in_write: Arc<AtomicBool>,
    }

    impl Default for Probe {
        fn default() -> Probe {
            Probe::new()
        }
    }

    impl Probe {
        pub fn new() -> Probe {
            Probe {
                sid: Sid::new(),
                frames: Arc::default(),
                full: Arc::default(),
                cut: Arc::default(),
                writes: Arc::default(),
                in_write: Arc::default(),
            }
        }

        pub fn set_full(&self, full: bool) {
            self.full.store(full, Ordering::SeqCst);
        }

        pub fn is_cut(&self) -> bool {
            self.cut.load(Ordering::SeqCst)
        }

        /// The events received, as (event name, JSON).
        pub fn frames(&self) -> Vec<(String, String)> {
            self.frames.lock().clone()
        }

        /// Message ids (the `id` of JSON `{"id":N…}` frames, else the
        /// frame's position in the test's own numbering) in order.
        pub fn ids(&self) -> Vec<u64> {
            self.writes.lock().iter().flatten().copied().collect()
        }

        /// Ids grouped by write (see [`Probe::end_write`]).
        pub fn writes(&self) -> Vec<Vec<u64>> {
            self.writes.lock().clone()
        }

        /// Marks the end of a batch: the next frame starts a new write.
        pub fn end_write(&self) {
            self.in_write.store(false, Ordering::SeqCst);
        }
    }

    impl Recipient for Probe {
        fn sid(&self) -> Sid {
            self.sid
        }

        fn send(&self, event: &'static str, json: &RawValue) -> Delivery {
            if self.full.load(Ordering::SeqCst) {
                return Delivery::Full;
            }
            self.frames
                .lock()
                .push((event.to_owned(), json.get().to_owned()));
            let id = serde_json::from_str::<serde_json::Value>(json.get())
                .ok()
                .and_then(|value| value.get("id").and_then(|id| id.as_u64()))
                .unwrap_or(0);
            let mut writes = self.writes.lock();
            if !self.in_write.swap(true, Ordering::SeqCst) || writes.is_empty() {
                writes.push(Vec::new());
            }
            if let Some(last) = writes.last_mut() {
                last.push(id);
            }
            Delivery::Sent
        }

        fn cut_off(&self) {
            self.cut.store(true, Ordering::SeqCst);
        }

        fn end_of_write(&self) {
            self.end_write();
        }
    }
}
