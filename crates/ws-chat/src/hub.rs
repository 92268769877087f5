//! The chat itself: who is in it, the recent history, the message ids, and
//! the fan-out of every outgoing frame to every joined socket.
//!
//! Each frame is serialized once into shared bytes and published at once on
//! one bounded broadcast ring (`QUEUE_LEN` frames). Every joined session
//! reads the ring at its own pace: its unread part is that socket's outbound
//! queue, bounded, shared with everyone else's, and costing nothing per
//! socket; taking a frame from it is a reference-count increment.
//! Publishing never waits for a reader, and a socket that falls more than
//! the ring's length behind is cut off (close 1013) without slowing anyone
//! else. Everything is published under the hub's lock, so every session
//! sees the same frames in the same order and message ids increase on every
//! socket.
//!
//! When a socket writes is the session's business (write by need, see
//! `session`): the hub holds nothing back. It only keeps the chat's pace
//! ([`ops::pace`]): every socket gets the same frames, so whether the chat
//! is busy is known exactly where they are published, free of the jitter
//! with which each socket's task gets to them. A join subscribes the newcomer
//! under the same lock that publishes, so its welcome and its live frames
//! neither overlap nor leave a gap.

use crate::frame::PieceWriter;
use crate::metrics::Metrics;
use bytes::Bytes;
use ops::pace::Pace;
use parking_lot::{Mutex, MutexGuard};
use protocol::ws::{self, ChatMessage, ServerFrame, User};
use protocol::{ErrorBody, ErrorCode, HISTORY_LEN, now_ms, validate};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::broadcast;
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

/// What a session gets for a successful `hello`.
pub struct Joined {
    pub user: User,
    /// The serialized `welcome` frame for this socket alone, in fragments.
    pub welcome: Vec<Bytes>,
    /// Every frame published from now on, in order.
    pub deliveries: broadcast::Receiver<Outgoing>,
}

/// The member holding a name: who they are, and which socket speaks for them.
struct Member {
    user: User,
    client_id: Option<String>,
    connection: ConnectionId,
}

struct State {
    /// `None` once the server shuts down: joined sessions see the ring close.
    publisher: Option<broadcast::Sender<Outgoing>>,
    /// Keyed by the case-insensitive name, which is what must be unique.
    members: HashMap<String, Member>,
    history: VecDeque<ChatMessage>,
    next_message_id: u64,
    next_user_id: u64,
    /// How often frames are published.
    pace: Pace,
}

pub struct Hub {
    state: Mutex<State>,
    next_connection_id: AtomicU64,
    /// `WRITE_DELAY_MS`, which tells a busy chat from a quiet one.
    write_delay: Duration,
    /// The chat is busy: read by every session after each write, without
    /// the lock.
    busy: AtomicBool,
    metrics: Metrics,
}

impl Hub {
    /// A hub whose sessions may fall at most `queue_len` frames behind.
    pub fn new(queue_len: usize, write_delay: Duration, metrics: Metrics) -> Hub {
        let (publisher, _) = broadcast::channel(queue_len);
        Hub {
            state: Mutex::new(State {
                publisher: Some(publisher),
                members: HashMap::new(),
                history: VecDeque::with_capacity(HISTORY_LEN),
                next_message_id: 1,
                next_user_id: 1,
                pace: Pace::default(),
            }),
            next_connection_id: AtomicU64::new(1),
            write_delay,
            busy: AtomicBool::new(false),
            metrics,
        }
    }

    /// Whether frames are published often enough to be worth holding for
    /// `WRITE_DELAY_MS` in every socket.
    pub fn is_busy(&self) -> bool {
        self.busy.load(Ordering::Relaxed)
    }

    /// How long a socket leaves the ring alone after a write: the whole
    /// delay while the chat is busy, half of it while quiet (see `session`).
    pub fn hold_after_write(&self) -> Duration {
        if self.is_busy() {
            self.write_delay
        } else {
            self.write_delay / 2
        }
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
        // Subscribing under the lock that guards every publication makes
        // the welcome and the deliveries meet exactly: nothing missed,
        // nothing twice.
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
        self.lock().publisher = None;
    }

    /// Serializes `frame` once and publishes it.
    fn publish_frame(&self, state: &mut State, frame: &ServerFrame, except: Option<ConnectionId>) {
        let json = Utf8Bytes::from(frame.to_json());
        self.publish(state, Outgoing::Frame { json, except });
    }

    /// Hands `outgoing` to every subscriber.
    fn publish(&self, state: &mut State, outgoing: Outgoing) {
        state.pace.frame(Instant::now(), self.write_delay);
        self.busy
            .store(state.pace.is_busy(self.write_delay), Ordering::Relaxed);
        if let Some(publisher) = &state.publisher {
            // An error only means nobody is subscribed, which is fine.
            let _ = publisher.send(outgoing);
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn hub() -> Hub {
        Hub::new(16, Duration::from_millis(20), Metrics::default())
    }

    fn parse(outgoing: &Outgoing) -> Value {
        match outgoing {
            Outgoing::Frame { json, .. } => serde_json::from_str(json).unwrap(),
            other => panic!("expected a frame, got {other:?}"),
        }
    }

    fn next_frame(deliveries: &mut broadcast::Receiver<Outgoing>) -> Value {
        parse(&deliveries.try_recv().expect("a frame"))
    }

    #[test]
    fn a_newcomer_gets_the_history_then_exactly_what_follows_it() {
        let hub = hub();
        let mut alice = hub
            .join(hub.new_connection_id(), "alice".into(), None)
            .unwrap();
        for n in 1..=3 {
            hub.post(&alice.user, format!("m{n}"));
        }
        for id in 1..=3 {
            assert_eq!(next_frame(&mut alice.deliveries)["id"], id);
        }
        let mut bob = hub
            .join(hub.new_connection_id(), "bob".into(), None)
            .unwrap();
        let welcome: Value = serde_json::from_slice(&bob.welcome.concat()).unwrap();
        let history = welcome["history"].as_array().unwrap();
        assert_eq!(history.last().unwrap()["id"], 3);
        assert_eq!(next_frame(&mut alice.deliveries)["type"], "joined");
        // Bob's live stream starts right after his history.
        assert!(bob.deliveries.try_recv().is_err());
        hub.post(&bob.user, "m4".into());
        let live = next_frame(&mut bob.deliveries);
        assert_eq!(live["id"], 4);
        assert_eq!(next_frame(&mut alice.deliveries), live);
        // A history entry is the very frame the others saw live.
        let carol = hub
            .join(hub.new_connection_id(), "carol".into(), None)
            .unwrap();
        let welcome: Value = serde_json::from_slice(&carol.welcome.concat()).unwrap();
        assert_eq!(welcome["history"].as_array().unwrap().last(), Some(&live));
    }

    #[test]
    fn a_chat_is_quiet_until_frames_come_faster_than_three_per_delay() {
        let hub = Hub::new(64, Duration::from_secs(3600), Metrics::default());
        let alice = hub
            .join(hub.new_connection_id(), "alice".into(), None)
            .unwrap();
        assert!(!hub.is_busy(), "a join is no load");
        for n in 0..3 {
            hub.post(&alice.user, format!("m{n}"));
        }
        assert!(!hub.is_busy(), "a few frames are no load");
        for n in 0..20 {
            hub.post(&alice.user, format!("m{n}"));
        }
        assert!(hub.is_busy(), "a burst within one delay is");
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
        let replaced = watcher.try_recv().unwrap();
        assert!(matches!(replaced, Outgoing::Replaced(c) if c == first));
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
