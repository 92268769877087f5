//! The chat itself: who is in it, the recent history, the message ids, and
//! the fan-out of every outgoing frame to every joined socket.
//!
//! Each frame is serialized once into shared bytes and goes into the hub's
//! outbox. The outbox is published as one [`Batch`] per write window on one
//! bounded broadcast ring (`QUEUE_LEN` batches). Every joined session reads
//! the ring at its own pace: its unread part is that socket's outbound
//! queue, bounded, shared with everyone else's, and costing nothing per
//! socket; taking a batch from it is a reference-count increment. Publishing
//! never waits for a reader, and a socket that falls more than the ring's
//! length behind is cut off (close 1013) without slowing anyone else.
//! Everything is published under the hub's lock, so every session sees the
//! same frames in the same order and message ids increase on every socket.
//!
//! Why windows: a socket woken once per frame writes each frame in its own
//! system call, and at a hundred frames a second per socket the kernel time
//! dominates. With a write delay (`WRITE_DELAY_MS`, see [`Hub::run_flusher`])
//! a socket wakes once per window and writes all of that window's frames at
//! once, like rooms-chat's outbox or Nagle's algorithm. A delay of zero
//! publishes every frame at once. A window also ends early once its frames
//! reach [`MAX_BATCH_BYTES`], so that one batch always fits a healthy
//! socket's write buffer. A join publishes the outbox before the newcomer
//! subscribes, so its welcome and its live frames neither overlap nor leave
//! a gap.

use crate::frames::PieceWriter;
use crate::metrics::ChatMetrics;
use bytes::Bytes;
use protocol::ws::{self, ChatMessage, ServerFrame, User};
use protocol::{ErrorBody, ErrorCode, HISTORY_LEN, now_ms, validate};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::{Notify, broadcast};
use tokio_tungstenite::tungstenite::Utf8Bytes;

/// Identifies one WebSocket for the whole life of the process. A user keeps
/// their id across a takeover; the connection id says which socket holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnectionId(u64);

/// What the hub publishes to the joined sessions.
#[derive(Debug, Clone)]
pub enum Outgoing {
    /// A serialized server frame for every joined socket but `except`.
    Frame {
        json: Utf8Bytes,
        except: Option<ConnectionId>,
    },
    /// That connection's name was taken over by a newer socket of the same
    /// client: it must close, silently for everyone else.
    Replaced(ConnectionId),
}

/// The frames of one write window, in publication order: one ring entry.
pub type Batch = Arc<[Outgoing]>;

/// A window is published early once its frames add up to this many bytes.
/// With the session's write buffer at most 1 KiB full when it takes a batch,
/// and a server frame at most a little over `MAX_FRAME_BYTES`, a batch stays
/// well under the 64 KiB `max_write_buffer_size` (see `upgrade`).
pub const MAX_BATCH_BYTES: usize = 16 * 1024;

/// What a session gets for a successful `hello`.
pub struct Joined {
    pub user: User,
    /// The serialized `welcome` frame for this socket alone, in fragments.
    pub welcome: Vec<Bytes>,
    /// Every batch published from now on, in order.
    pub deliveries: broadcast::Receiver<Batch>,
}

/// The member holding a name: who they are, and which socket speaks for them.
struct Member {
    user: User,
    client_id: Option<String>,
    connection: ConnectionId,
}

struct State {
    /// `None` once the server shuts down: joined sessions see the ring close.
    publisher: Option<broadcast::Sender<Batch>>,
    /// The current window's frames, not yet published.
    outbox: Vec<Outgoing>,
    outbox_bytes: usize,
    /// Keyed by the case-insensitive name, which is what must be unique.
    members: HashMap<String, Member>,
    history: VecDeque<ChatMessage>,
    next_message_id: u64,
    next_user_id: u64,
}

pub struct Hub {
    state: Mutex<State>,
    next_connection_id: AtomicU64,
    metrics: ChatMetrics,
    /// How long a window gathers frames; zero publishes each at once.
    write_delay: Duration,
    /// Wakes [`Hub::run_flusher`] when a window opens (the outbox fills).
    window_opened: Notify,
}

impl Hub {
    /// A hub whose sessions may fall at most `queue_len` batches behind,
    /// and whose frames gather for `write_delay` before they are published.
    pub fn new(queue_len: usize, write_delay: Duration, metrics: ChatMetrics) -> Hub {
        let (publisher, _) = broadcast::channel(queue_len);
        Hub {
            state: Mutex::new(State {
                publisher: Some(publisher),
                outbox: Vec::new(),
                outbox_bytes: 0,
                members: HashMap::new(),
                history: VecDeque::with_capacity(HISTORY_LEN),
                next_message_id: 1,
                next_user_id: 1,
            }),
            next_connection_id: AtomicU64::new(1),
            metrics,
            write_delay,
            window_opened: Notify::new(),
        }
    }

    /// Publishes each write window once its delay has passed. Runs for the
    /// life of the server; it sleeps while nobody says anything.
    pub async fn run_flusher(&self) {
        loop {
            self.window_opened.notified().await;
            tokio::time::sleep(self.write_delay).await;
            self.flush();
        }
    }

    /// Publishes the frames gathered so far as one batch.
    pub fn flush(&self) {
        self.lock().flush();
    }

    pub fn new_connection_id(&self) -> ConnectionId {
        ConnectionId(self.next_connection_id.fetch_add(1, Ordering::Relaxed))
    }

    /// Joins `connection` as `name`. A name held by someone else is refused
    /// with `name_taken`, unless the holder has the same `client_id`: then
    /// this connection takes the member over (same user id, no notice to the
    /// others) and the old connection is told to close.
    pub fn join(
        &self,
        connection: ConnectionId,
        name: String,
        client_id: Option<String>,
    ) -> Result<Joined, ErrorBody> {
        let key = validate::name_key(&name);
        let mut state = self.lock();
        let Some(publisher) = state.publisher.clone() else {
            return Err(ErrorBody::new(
                ErrorCode::Unavailable,
                "the server is shutting down",
            ));
        };
        let user = match state.members.get_mut(&key) {
            Some(member) if client_id.is_some() && member.client_id == client_id => {
                let replaced = std::mem::replace(&mut member.connection, connection);
                let user = member.user.clone();
                self.publish(&mut state, Outgoing::Replaced(replaced));
                user
            }
            Some(member) => {
                return Err(ErrorBody::new(
                    ErrorCode::NameTaken,
                    format!("the name {:?} is taken", member.user.name),
                ));
            }
            None => {
                let user = User {
                    id: format!("u{}", state.next_user_id),
                    name,
                };
                state.next_user_id += 1;
                let joined = ServerFrame::Joined {
                    user: user.clone(),
                    ts: now_ms(),
                };
                // Published before this socket subscribes: it is for the others.
                self.publish_frame(&mut state, &joined, None);
                state.members.insert(
                    key,
                    Member {
                        user: user.clone(),
                        client_id,
                        connection,
                    },
                );
                self.metrics.users.set(state.members.len() as i64);
                user
            }
        };
        // Publishing the outbox and subscribing under the lock that guards
        // every publication makes the welcome and the deliveries meet
        // exactly: nothing missed, nothing twice.
        state.flush();
        let deliveries = publisher.subscribe();
        let mut welcome = PieceWriter::default();
        ws::write_welcome(
            &mut welcome,
            &user,
            state.members.values().map(|member| &member.user),
            state.history.iter(),
        )
        .expect("a welcome always serializes");
        drop(state);
        self.metrics.users_joined.inc();
        Ok(Joined {
            user,
            welcome: welcome.into_pieces(),
            deliveries,
        })
    }

    /// Gives `text` the next id, keeps it in the history and sends it to
    /// every joined socket, the sender's included.
    pub fn post(&self, from: &User, text: String) {
        let mut state = self.lock();
        if state.publisher.is_none() {
            return;
        }
        let message = ChatMessage {
            id: state.next_message_id,
            from: from.clone(),
            text,
            ts: now_ms(),
        };
        state.next_message_id += 1;
        if state.history.len() == HISTORY_LEN {
            state.history.pop_front();
        }
        state.history.push_back(message.clone());
        self.publish_frame(&mut state, &ServerFrame::Message(message), None);
        self.metrics.broadcasts.inc();
    }

    /// Tells the others that `from` is typing.
    pub fn typing(&self, connection: ConnectionId, from: &User) {
        let frame = ServerFrame::Typing { user: from.clone() };
        let mut state = self.lock();
        self.publish_frame(&mut state, &frame, Some(connection));
    }

    /// Removes the member held by `connection`, if it still holds it (after
    /// a takeover it does not, and nobody must hear of a departure).
    pub fn leave(&self, connection: ConnectionId, user: &User) {
        let key = validate::name_key(&user.name);
        let mut state = self.lock();
        if state.members.get(&key).map(|m| m.connection) != Some(connection) {
            return;
        }
        let member = state.members.remove(&key).expect("checked above");
        self.metrics.users.set(state.members.len() as i64);
        let left = ServerFrame::Left {
            user: member.user,
            ts: now_ms(),
        };
        self.publish_frame(&mut state, &left, None);
    }

    /// Closes the broadcast ring: every joined session delivers what it has
    /// left to read, then sees the end and closes its socket with 1001.
    pub fn shut_down(&self) {
        let mut state = self.lock();
        state.flush();
        state.publisher = None;
    }

    /// Serializes `frame` once and puts it in the outbox.
    fn publish_frame(&self, state: &mut State, frame: &ServerFrame, except: Option<ConnectionId>) {
        let json = Utf8Bytes::from(frame.to_json());
        state.outbox_bytes += json.len();
        self.publish(state, Outgoing::Frame { json, except });
    }

    /// Puts `outgoing` in the outbox, and publishes the outbox when there is
    /// no window or this one is full; otherwise a new window wakes the flusher.
    fn publish(&self, state: &mut State, outgoing: Outgoing) {
        if state.publisher.is_none() {
            return;
        }
        state.outbox.push(outgoing);
        if self.write_delay.is_zero() || state.outbox_bytes >= MAX_BATCH_BYTES {
            state.flush();
        } else if state.outbox.len() == 1 {
            self.window_opened.notify_one();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the state half-updated
        // in a way that matters more than stopping the whole chat would.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl State {
    /// Hands the outbox to every subscriber as one batch.
    fn flush(&mut self) {
        if self.outbox.is_empty() {
            return;
        }
        let batch: Batch = std::mem::take(&mut self.outbox).into();
        self.outbox_bytes = 0;
        if let Some(publisher) = &self.publisher {
            // An error only means nobody is subscribed, which is fine.
            let _ = publisher.send(batch);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    /// A hub without a write window: every frame is a batch of its own.
    fn hub() -> Hub {
        Hub::new(16, Duration::ZERO, ChatMetrics::default())
    }

    fn parse(outgoing: &Outgoing) -> Value {
        match outgoing {
            Outgoing::Frame { json, .. } => serde_json::from_str(json).unwrap(),
            other => panic!("expected a frame, got {other:?}"),
        }
    }

    fn next_batch(deliveries: &mut broadcast::Receiver<Batch>) -> Vec<Value> {
        deliveries
            .try_recv()
            .expect("a batch")
            .iter()
            .map(parse)
            .collect()
    }

    fn next_frame(deliveries: &mut broadcast::Receiver<Batch>) -> Value {
        let mut batch = next_batch(deliveries);
        assert_eq!(batch.len(), 1, "one frame per batch without a window");
        batch.remove(0)
    }

    #[test]
    fn a_window_publishes_its_frames_together_and_a_join_flushes_it_first() {
        // A window that never ends on its own: only `flush` and joins end it.
        let hub = Hub::new(16, Duration::from_secs(3600), ChatMetrics::default());
        let mut alice = hub
            .join(hub.new_connection_id(), "alice".into(), None)
            .unwrap();
        for n in 1..=3 {
            hub.post(&alice.user, format!("m{n}"));
        }
        assert!(alice.deliveries.try_recv().is_err(), "the window is open");
        hub.flush();
        let ids: Vec<_> = next_batch(&mut alice.deliveries)
            .iter()
            .map(|frame| frame["id"].clone())
            .collect();
        assert_eq!(ids, [1, 2, 3]);

        hub.post(&alice.user, "m4".into());
        let mut bob = hub
            .join(hub.new_connection_id(), "bob".into(), None)
            .unwrap();
        // Message 4 is in bob's history, and reaches alice before bob's arrival.
        let welcome: Value = serde_json::from_slice(&bob.welcome.concat()).unwrap();
        let history = welcome["history"].as_array().unwrap();
        assert_eq!(history.last().unwrap()["id"], 4);
        let batch = next_batch(&mut alice.deliveries);
        assert_eq!(batch.len(), 2);
        assert_eq!(batch[0]["id"], 4);
        assert_eq!(batch[1]["type"], "joined");
        // Bob's live stream starts right after his history.
        assert!(bob.deliveries.try_recv().is_err());
        hub.post(&bob.user, "m5".into());
        hub.flush();
        assert_eq!(next_batch(&mut bob.deliveries)[0]["id"], 5);
        assert_eq!(next_batch(&mut alice.deliveries)[0]["id"], 5);
    }

    #[test]
    fn a_full_window_is_published_early() {
        let hub = Hub::new(16, Duration::from_secs(3600), ChatMetrics::default());
        let mut alice = hub
            .join(hub.new_connection_id(), "alice".into(), None)
            .unwrap();
        let text = "x".repeat(1000);
        let mut posted = 0;
        while alice.deliveries.is_empty() {
            hub.post(&alice.user, text.clone());
            posted += 1;
            assert!(posted <= MAX_BATCH_BYTES / 1000, "the window never filled");
        }
        assert_eq!(next_batch(&mut alice.deliveries).len(), posted);
    }

    #[test]
    fn names_are_unique_case_insensitively() {
        let hub = hub();
        hub.join(hub.new_connection_id(), "Alice".into(), None)
            .unwrap();
        let error = hub
            .join(hub.new_connection_id(), "alice".into(), None)
            .err()
            .unwrap();
        assert_eq!(error.code, ErrorCode::NameTaken);
    }

    #[test]
    fn history_keeps_the_last_messages_oldest_first() {
        let hub = hub();
        let alice = hub
            .join(hub.new_connection_id(), "alice".into(), None)
            .unwrap();
        for n in 0..HISTORY_LEN + 5 {
            hub.post(&alice.user, format!("m{n}"));
        }
        let bob = hub
            .join(hub.new_connection_id(), "bob".into(), None)
            .unwrap();
        let welcome: Value = serde_json::from_slice(&bob.welcome.concat()).unwrap();
        let history = welcome["history"].as_array().unwrap();
        assert_eq!(history.len(), HISTORY_LEN);
        assert_eq!(history[0]["text"], "m5");
        assert_eq!(
            history[HISTORY_LEN - 1]["text"],
            format!("m{}", HISTORY_LEN + 4)
        );
    }

    #[test]
    fn takeover_keeps_the_user_and_tells_only_the_old_socket() {
        let hub = hub();
        let first = hub.new_connection_id();
        let alice = hub.join(first, "alice".into(), Some("k1".into())).unwrap();
        let mut watcher = hub
            .join(hub.new_connection_id(), "bob".into(), None)
            .unwrap()
            .deliveries;
        let second = hub.new_connection_id();
        let again = hub.join(second, "ALICE".into(), Some("k1".into())).unwrap();
        assert_eq!(again.user, alice.user);
        let batch = watcher.try_recv().unwrap();
        assert!(matches!(batch[..], [Outgoing::Replaced(c)] if c == first));
        // The old socket's departure goes unnoticed; the new one's does not.
        hub.leave(first, &alice.user);
        assert!(watcher.try_recv().is_err());
        hub.leave(second, &alice.user);
        assert_eq!(next_frame(&mut watcher)["type"], "left");
    }

    #[test]
    fn a_newcomer_is_announced_to_the_others_only() {
        let hub = hub();
        let mut alice = hub
            .join(hub.new_connection_id(), "alice".into(), None)
            .unwrap();
        let mut bob = hub
            .join(hub.new_connection_id(), "bob".into(), None)
            .unwrap();
        assert_eq!(next_frame(&mut alice.deliveries)["type"], "joined");
        assert!(bob.deliveries.try_recv().is_err());
        hub.post(&bob.user, "hi".into());
        assert_eq!(next_frame(&mut alice.deliveries)["id"], 1);
        assert_eq!(next_frame(&mut bob.deliveries)["id"], 1);
    }

    #[test]
    fn nobody_joins_after_shutdown() {
        let hub = hub();
        let mut alice = hub
            .join(hub.new_connection_id(), "alice".into(), None)
            .unwrap();
        hub.shut_down();
        assert!(matches!(
            alice.deliveries.try_recv(),
            Err(broadcast::error::TryRecvError::Closed)
        ));
        let error = hub
            .join(hub.new_connection_id(), "bob".into(), None)
            .err()
            .unwrap();
        assert_eq!(error.code, ErrorCode::Unavailable);
    }
}
