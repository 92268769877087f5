//! The chat itself: who is in it, the recent history, the message ids, and
//! the fan-out of every outgoing frame to every joined socket.
//!
//! Each frame is encoded once, as the complete WebSocket frame, and handed
//! to the outbox of every joined socket ([`fanout::Outbox`]) under the
//! hub's lock, so every socket gets the same frames in the same order and
//! message ids increase on every socket. A quiet chat's frame is written
//! straight into each socket that has nothing in flight, from the task
//! that posted it: no socket's task wakes up for it. A socket that does not
//! take it at once keeps it queued for its own task, and one whose queue
//! outgrows `QUEUE_LEN` frames is cut off (close 1013) without slowing
//! anyone else.
//!
//! A frame is written at once only when nothing else is on its way. A post
//! that finds the chat held (another task is writing a frame to every
//! socket) is left with the chat, and whoever holds it publishes every post
//! that waited before it lets go, in one write per socket for all of them.
//! With a backlog (a task waiting for the chat, or earlier frames still
//! being written), frames are queued in the outboxes instead, and one task
//! at a time writes the queues, pass after pass, until nothing is left. The
//! writer blocks its worker thread meanwhile, as a publisher writing every
//! socket would: the joins and posts it holds back are what keeps a storm
//! from queueing faster than it is written. So
//! when a fan-out takes longer than the gap between frames (a join storm
//! in a large chat, a slow machine) the frames that came meanwhile share a
//! write, with no delay added, as in a single event loop; and a task that
//! posts goes on reading its socket instead of blocking a worker thread.
//!
//! The hub also keeps the chat's pace ([`ops::pace`]): every socket gets
//! the same frames, so whether the chat is busy is known exactly where
//! they are published. A busy chat's frames are queued instead, and the
//! chat's clock writes each socket's together, once per `WRITE_DELAY_MS`
//! (see [`crate::clock`]). A join sends the newcomer its welcome under the same
//! lock that publishes, so its welcome and its live frames neither overlap
//! nor leave a gap.

use crate::metrics::Metrics;
use bytes::Bytes;
use fanout::{Lane, Outbox};
use ops::pace::Pace;
use parking_lot::{Mutex, MutexGuard};
use protocol::ws::{self, ChatMessage, ServerFrame, User};
use protocol::{ErrorBody, ErrorCode, HISTORY_LEN, now_ms, validate};
use std::collections::{HashMap, VecDeque};
use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Close code telling a page that another tab or reconnect of the same
/// client took its name over, so it must not reconnect on its own.
pub const CLOSE_REPLACED: u16 = 4000;

/// Close code of a server going away (RFC 6455).
const CLOSE_GOING_AWAY: u16 = 1001;

/// Posts that may wait for the chat's holder; past this, a post waits for
/// the chat itself, so that a flood is slowed down to the fan-out's pace.
const MAX_POSTED: usize = 1024;

/// Identifies one WebSocket for the whole life of the process. A user keeps
/// their id across a takeover; the connection id says which socket holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnectionId(u64);

/// What makes a join the same member as the one holding its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Holder {
    /// Without tokens: the page's `clientId`, whose new socket takes the
    /// name over from the old one.
    Client(Option<String>),
    /// With a token: its `sub`, whose every socket shares the name.
    Person(String),
}

/// The member holding a name: who they are, and which sockets speak for them.
struct Member {
    user: User,
    holder: Holder,
    connection: ConnectionId,
    outbox: Arc<Outbox>,
    /// Further sockets of the same person (token authentication), each
    /// receiving the chat; the member leaves with the last of them.
    others: Vec<(ConnectionId, Arc<Outbox>)>,
}

impl Member {
    fn outboxes(&self) -> impl Iterator<Item = (ConnectionId, &Arc<Outbox>)> {
        let others = self
            .others
            .iter()
            .map(|(connection, outbox)| (*connection, outbox));
        std::iter::once((self.connection, &self.outbox)).chain(others)
    }
}

struct State {
    /// False once the server shuts down: nobody joins any more.
    open: bool,
    /// Keyed by the case-insensitive name, which is what must be unique.
    members: HashMap<String, Member>,
    history: VecDeque<ChatMessage>,
    next_message_id: u64,
    next_user_id: u64,
    /// How often frames are published.
    pace: Pace,
}

/// The one chat of the process, shared by every session.
pub struct Hub {
    state: Mutex<State>,
    /// Posts that found the chat held, in the order they came, for its
    /// holder to publish (see [`Held`]).
    posted: Mutex<Vec<(User, String)>>,
    /// Tasks waiting to take the chat.
    waiting: AtomicUsize,
    /// A task is writing what a backlog queued ([`Hub::write_backlog`]).
    writing_backlog: AtomicBool,
    /// A backlog queued frames that no pass has written yet.
    backlog_queued: AtomicBool,
    /// Writes every other member's copy of each frame, on another core
    /// (none on a machine with one).
    lane: Option<Lane>,
    next_connection_id: AtomicU64,
    /// `WRITE_DELAY_MS`, which tells a busy chat from a quiet one.
    write_delay: Duration,
    /// The chat is busy: read by the clock without the lock.
    busy: AtomicBool,
    /// A frame was published since the clock last looked.
    published: AtomicBool,
    metrics: Metrics,
}

impl Hub {
    /// A hub whose frames are held for `write_delay` while the chat is
    /// busy; starts the thread of its lane.
    pub fn new(write_delay: Duration, metrics: Metrics) -> std::io::Result<Hub> {
        let lane = Lane::spawn()?;
        Ok(Hub {
            lane,
            state: Mutex::new(State {
                open: true,
                members: HashMap::new(),
                history: VecDeque::with_capacity(HISTORY_LEN),
                next_message_id: 1,
                next_user_id: 1,
                pace: Pace::default(),
            }),
            posted: Mutex::new(Vec::new()),
            waiting: AtomicUsize::new(0),
            writing_backlog: AtomicBool::new(false),
            backlog_queued: AtomicBool::new(false),
            next_connection_id: AtomicU64::new(1),
            write_delay,
            busy: AtomicBool::new(false),
            published: AtomicBool::new(false),
            metrics,
        })
    }

    /// Whether frames are published often enough to be worth holding for
    /// `WRITE_DELAY_MS` in every socket.
    pub fn is_busy(&self) -> bool {
        self.busy.load(Ordering::Relaxed)
    }

    /// For the clock, once per delay: whether the chat is busy and
    /// published something since the clock last asked, so that a chat
    /// gone silent costs the clock nothing.
    pub fn busy_since_last_tick(&self) -> bool {
        self.published.swap(false, Ordering::Relaxed) && self.is_busy()
    }

    /// A new socket's identity.
    pub fn new_connection_id(&self) -> ConnectionId {
        ConnectionId(self.next_connection_id.fetch_add(1, Ordering::Relaxed))
    }

    /// Joins `connection` (written through `outbox`) as `name` and sends it
    /// its welcome. A name held by someone else is refused with
    /// `name_taken`, unless the holder has the same `client_id`: then this
    /// connection takes the member over (same user id, no notice to the
    /// others) and the old connection is closed.
    #[cfg(test)]
    pub fn join(
        &self,
        connection: ConnectionId,
        outbox: &Arc<Outbox>,
        name: String,
        client_id: Option<String>,
    ) -> Result<User, ErrorBody> {
        self.join_as(connection, outbox, name, Holder::Client(client_id))
    }

    /// Joins `connection` (written through `outbox`) as `name` for `holder`
    /// and sends it its welcome. A name held by someone else is refused
    /// with `name_taken`, unless `holder` holds it already: a page with the
    /// same `clientId` takes the member over (same user id, no notice to the
    /// others, the old connection closed); a socket of the person who holds
    /// the name becomes one more socket of that member (every socket
    /// receives the chat).
    pub fn join_as(
        &self,
        connection: ConnectionId,
        outbox: &Arc<Outbox>,
        name: String,
        holder: Holder,
    ) -> Result<User, ErrorBody> {
        let key = validate::name_key(&name);
        let mut state = self.lock();
        if !state.open {
            return Err(ErrorBody::new(
                ErrorCode::Unavailable,
                "the server is shutting down",
            ));
        }
        let user = match state.members.get_mut(&key) {
            Some(member) if matches!(holder, Holder::Person(_)) && member.holder == holder => {
                member.others.push((connection, outbox.clone()));
                self.lane_joins(connection, outbox);
                member.user.clone()
            }
            Some(member)
                if matches!(holder, Holder::Client(Some(_))) && member.holder == holder =>
            {
                let replaced_connection = std::mem::replace(&mut member.connection, connection);
                let replaced = std::mem::replace(&mut member.outbox, outbox.clone());
                self.lane_leaves(replaced_connection);
                self.lane_joins(connection, outbox);
                replaced.end(
                    CLOSE_REPLACED,
                    "replaced by a newer connection of the same client",
                );
                member.user.clone()
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
                // Published before this socket is a member: it is for the others.
                self.publish(&mut state, &joined, None);
                state.members.insert(
                    key,
                    Member {
                        user: user.clone(),
                        holder,
                        connection,
                        outbox: outbox.clone(),
                        others: Vec::new(),
                    },
                );
                self.lane_joins(connection, outbox);
                self.metrics.users.set(state.members.len() as i64);
                user
            }
        };
        // Sent under the lock that guards every publication, so that the
        // welcome and the live frames meet exactly: nothing missed, nothing
        // twice.
        let mut welcome = fanout::frame::FragmentWriter::default();
        ws::write_welcome(
            &mut welcome,
            &user,
            state.members.values().map(|member| &member.user),
            state.history.iter(),
        )
        .expect("a welcome always serializes");
        // Its fragments in as few writes as the socket takes.
        outbox.send_all(&welcome.into_frames(), true);
        drop(state);
        self.metrics.core.messages_out.inc();
        self.metrics.users_joined.inc();
        Ok(user)
    }

    /// Gives `text` the next id, keeps it in the history and sends it to
    /// every joined socket, the sender's included: now, or, when another
    /// task holds the chat, right after what it publishes, by that task.
    pub fn post(&self, from: &User, text: String) {
        let waiting = {
            let mut posted = self.posted.lock();
            posted.push((from.clone(), text));
            posted.len()
        };
        // Held or not, the post is published: by this task, when the chat
        // was free; by its holder, when it lets go, otherwise.
        if waiting > MAX_POSTED {
            drop(self.lock());
        } else if let Some(state) = self.state.try_lock() {
            drop(Held::new(self, state));
        }
    }

    /// Publishes every post that waited, as one batch of frames: each gets
    /// the next id and its place in the history.
    fn publish_posted(&self, state: &mut State) {
        let posted = std::mem::take(&mut *self.posted.lock());
        if posted.is_empty() || !state.open {
            return;
        }
        let mut frames = Vec::with_capacity(posted.len());
        for (from, text) in posted {
            let message = ChatMessage {
                id: state.next_message_id,
                from,
                text,
                ts: now_ms(),
            };
            state.next_message_id += 1;
            if state.history.len() == HISTORY_LEN {
                state.history.pop_front();
            }
            state.history.push_back(message.clone());
            frames.push(fanout::frame::text(
                ServerFrame::Message(message).to_json().as_bytes(),
            ));
        }
        self.metrics.broadcasts.inc_by(frames.len() as u64);
        self.deliver(state, &frames, None);
    }

    /// Tells the others that `from` is typing.
    pub fn typing(&self, connection: ConnectionId, from: &User) {
        let frame = ServerFrame::Typing { user: from.clone() };
        let mut state = self.lock();
        self.publish(&mut state, &frame, Some(connection));
    }

    /// Removes the member held by `connection`, if it still holds it (after
    /// a takeover it does not, and nobody must hear of a departure); a
    /// person's socket other than its last only stops receiving the chat.
    pub fn leave(&self, connection: ConnectionId, user: &User) {
        let key = validate::name_key(&user.name);
        let mut state = self.lock();
        let Some(member) = state.members.get_mut(&key) else {
            return;
        };
        if let Some(index) = member
            .others
            .iter()
            .position(|(other, _)| *other == connection)
        {
            member.others.swap_remove(index);
            self.lane_leaves(connection);
            return;
        }
        if member.connection != connection {
            return;
        }
        if let Some((next, outbox)) = member.others.pop() {
            member.connection = next;
            member.outbox = outbox;
            self.lane_leaves(connection);
            return;
        }
        let member = state.members.remove(&key).expect("checked above");
        self.lane_leaves(connection);
        self.metrics.users.set(state.members.len() as i64);
        let left = ServerFrame::Left {
            user: member.user,
            ts: now_ms(),
        };
        self.publish(&mut state, &left, None);
    }

    /// Closes every joined socket with 1001 once it has what was sent to
    /// it, and lets nobody join any more.
    pub fn shut_down(&self) {
        let mut state = self.lock();
        state.open = false;
        for (_, outbox) in state.members.values().flat_map(Member::outboxes) {
            outbox.end(CLOSE_GOING_AWAY, "server shutting down");
        }
    }

    /// Has the lane write what a busy chat queued for its members, and
    /// returns the outboxes of the others, for the clock to flush.
    pub fn flush_lane(&self) -> Vec<Arc<Outbox>> {
        if let Some(lane) = &self.lane {
            lane.flush();
        }
        self.own_outboxes()
    }

    /// Pings every member; those that left more than `limit` pings
    /// unanswered are ended.
    pub fn ping(&self, limit: u8) {
        let ping = fanout::frame::ping();
        if let Some(lane) = &self.lane {
            lane.ping(&ping, limit);
        }
        for outbox in self.own_outboxes() {
            outbox.ping(ping.clone(), limit);
        }
    }

    /// The members' outboxes this task writes (the lane writes the rest),
    /// taken under the lock and used after it, so that the writes never
    /// keep a publisher waiting.
    fn own_outboxes(&self) -> Vec<Arc<Outbox>> {
        let state = self.lock();
        state
            .members
            .values()
            .filter(|member| !self.lane_takes(member.connection))
            .map(|member| member.outbox.clone())
            .collect()
    }

    /// Encodes `frame` once and sends it to every member but `except`.
    fn publish(&self, state: &mut State, frame: &ServerFrame, except: Option<ConnectionId>) {
        let bytes: Bytes = fanout::frame::text(frame.to_json().as_bytes());
        self.deliver(state, &[bytes], except);
    }

    /// Sends `frames`, in order and in one write where the socket takes
    /// it, to every member but `except`, and counts them in the chat's pace.
    fn deliver(&self, state: &mut State, frames: &[Bytes], except: Option<ConnectionId>) {
        let now = Instant::now();
        for _ in frames {
            state.pace.frame(now, self.write_delay);
        }
        let busy = state.pace.is_busy(self.write_delay);
        self.busy.store(busy, Ordering::Relaxed);
        self.published.store(true, Ordering::Relaxed);
        // Behind a backlog the frame is queued, and written with the rest
        // of it once the chat is let go (a busy chat's by the clock).
        let backlog = !busy
            && (self.waiting.load(Ordering::SeqCst) > 0
                || self.writing_backlog.load(Ordering::SeqCst)
                || !self.posted.lock().is_empty());
        if backlog {
            self.backlog_queued.store(true, Ordering::SeqCst);
        }
        let now = !busy && !backlog;
        // The lane's share first, so that it writes while this task does.
        if let Some(lane) = &self.lane {
            lane.send(frames, now, except.map(|connection| connection.0));
        }
        let mut delivered = 0;
        for (connection, outbox) in state.members.values().flat_map(Member::outboxes) {
            if Some(connection) == except {
                continue;
            }
            delivered += 1;
            if !self.lane_takes(connection) {
                outbox.send_all(frames, now);
            }
        }
        self.metrics
            .core
            .messages_out
            .inc_by(delivered * frames.len() as u64);
    }

    /// Whether the lane writes to `connection`.
    fn lane_takes(&self, connection: ConnectionId) -> bool {
        self.lane.is_some() && Lane::takes(connection.0)
    }

    /// Tells the lane of a new member's socket, if it is the lane's to write.
    fn lane_joins(&self, connection: ConnectionId, outbox: &Arc<Outbox>) {
        if let Some(lane) = self.lane.as_ref().filter(|_| Lane::takes(connection.0)) {
            lane.add(connection.0, outbox.clone());
        }
    }

    /// Tells the lane that a socket is no member any more.
    fn lane_leaves(&self, connection: ConnectionId) {
        if let Some(lane) = self.lane.as_ref().filter(|_| Lane::takes(connection.0)) {
            lane.remove(connection.0);
        }
    }

    /// Writes what a backlog queued, in passes over every member until a
    /// pass finds nothing new: one task at a time, and the others leave
    /// their frames to it, so that everything queued during one pass
    /// leaves together in the next.
    fn write_backlog(&self) {
        while self.backlog_queued.load(Ordering::SeqCst)
            && !self.writing_backlog.swap(true, Ordering::SeqCst)
        {
            while self.backlog_queued.swap(false, Ordering::SeqCst) {
                if let Some(lane) = &self.lane {
                    lane.flush();
                }
                for outbox in self.own_outboxes() {
                    outbox.flush();
                }
            }
            // Frames queued after the last pass, before this store, are
            // seen by the loop's check.
            self.writing_backlog.store(false, Ordering::SeqCst);
        }
    }

    /// The chat, held until the guard is dropped, with every post that
    /// waited for it published first.
    fn lock(&self) -> Held<'_> {
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let state = self.state.lock();
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        Held::new(self, state)
    }
}

/// The chat held by one task. Whatever it publishes reaches every socket
/// in the same order; the posts that wait for it are published first, and
/// again when it lets go, so that none is left behind: a post that finds
/// the chat held leaves the publishing to the holder. Once it lets go, it
/// writes what a backlog queued, unless another task already does.
struct Held<'a> {
    hub: &'a Hub,
    /// Always `Some` until dropped.
    state: Option<MutexGuard<'a, State>>,
}

impl<'a> Held<'a> {
    fn new(hub: &'a Hub, mut state: MutexGuard<'a, State>) -> Held<'a> {
        // What was posted before this task took the chat comes first.
        hub.publish_posted(&mut state);
        Held {
            hub,
            state: Some(state),
        }
    }
}

impl Deref for Held<'_> {
    type Target = State;

    fn deref(&self) -> &State {
        self.state.as_ref().expect("held until dropped")
    }
}

impl DerefMut for Held<'_> {
    fn deref_mut(&mut self) -> &mut State {
        self.state.as_mut().expect("held until dropped")
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        let mut held = self.state.take();
        while let Some(mut state) = held {
            self.hub.publish_posted(&mut state);
            drop(state);
            self.hub.write_backlog();
            // A post that failed to take the chat just before it was let
            // go left its publishing to this task: look once more.
            held = if self.hub.posted.lock().is_empty() {
                None
            } else {
                self.hub.state.try_lock()
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;
    use tokio::net::{TcpListener, TcpStream};

    fn hub() -> Hub {
        Hub::new(Duration::from_millis(20), Metrics::default()).unwrap()
    }

    /// One joined socket as the tests see it: its outbox, and the client's
    /// end of its connection, read frame by frame.
    struct Socket {
        connection: ConnectionId,
        outbox: Arc<Outbox>,
        client: TcpStream,
        received: Vec<u8>,
    }

    impl Socket {
        async fn new(hub: &Hub) -> Socket {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let client = TcpStream::connect(listener.local_addr().unwrap())
                .await
                .unwrap();
            let (server, _) = listener.accept().await.unwrap();
            // As after the upgrade's response: the socket is known writable.
            server.writable().await.unwrap();
            Socket {
                connection: hub.new_connection_id(),
                outbox: Arc::new(Outbox::new(server, 1024)),
                client,
                received: Vec::new(),
            }
        }

        async fn join(hub: &Hub, name: &str, client_id: Option<&str>) -> (Socket, User) {
            let mut socket = Socket::new(hub).await;
            let user = hub
                .join(
                    socket.connection,
                    &socket.outbox,
                    name.into(),
                    client_id.map(Into::into),
                )
                .unwrap();
            let welcome = socket.next().await.unwrap();
            assert_eq!(welcome["type"], "welcome");
            (socket, user)
        }

        /// The next frame the client has been sent, if one arrives within
        /// a moment (a quiet chat writes straight into the socket).
        async fn next(&mut self) -> Option<Value> {
            loop {
                if let Some(frame) = self.take_frame() {
                    return Some(frame);
                }
                let readable = self.client.readable();
                tokio::time::timeout(Duration::from_millis(100), readable)
                    .await
                    .ok()?
                    .unwrap();
                let mut chunk = [0u8; 65536];
                match self.client.try_read(&mut chunk) {
                    Ok(0) => return None,
                    Ok(read) => self.received.extend_from_slice(&chunk[..read]),
                    Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(error) => panic!("{error}"),
                }
            }
        }

        /// The next whole message in what was received, its fragments
        /// joined.
        fn take_frame(&mut self) -> Option<Value> {
            let mut message = Vec::new();
            let mut at = 0;
            loop {
                let first = *self.received.get(at)?;
                let (header, len) = match self.received.get(at + 1)? & 0x7F {
                    126 => {
                        let len = self.received.get(at + 2..at + 4)?;
                        (4, usize::from(u16::from_be_bytes([len[0], len[1]])))
                    }
                    127 => panic!("no frame that large here"),
                    len => (2, usize::from(len)),
                };
                let payload = self.received.get(at + header..at + header + len)?;
                message.extend_from_slice(payload);
                at += header + len;
                if first & 0x80 != 0 {
                    self.received.drain(..at);
                    return Some(serde_json::from_slice(&message).unwrap());
                }
            }
        }
    }

    /// What the outbox's task is woken for next; fails the test instead of
    /// hanging it when nothing comes.
    async fn ended_within_a_second(outbox: &Outbox) -> fanout::Wake {
        let next = std::future::poll_fn(|cx| outbox.poll_next(cx));
        tokio::time::timeout(Duration::from_secs(1), next)
            .await
            .expect("the outbox is ended")
    }

    #[tokio::test]
    async fn a_newcomer_gets_the_history_then_exactly_what_follows_it() {
        let hub = hub();
        let (mut alice, alice_user) = Socket::join(&hub, "alice", None).await;
        for n in 1..=3 {
            hub.post(&alice_user, format!("m{n}"));
        }
        for id in 1..=3 {
            assert_eq!(alice.next().await.unwrap()["id"], id);
        }
        let mut bob = Socket::new(&hub).await;
        let bob_user = hub
            .join(bob.connection, &bob.outbox, "bob".into(), None)
            .unwrap();
        let welcome = bob.next().await.unwrap();
        let history = welcome["history"].as_array().unwrap();
        assert_eq!(history.last().unwrap()["id"], 3);
        assert_eq!(alice.next().await.unwrap()["type"], "joined");
        // Bob's live frames start right after his history.
        assert!(bob.next().await.is_none());
        hub.post(&bob_user, "m4".into());
        let live = bob.next().await.unwrap();
        assert_eq!(live["id"], 4);
        assert_eq!(alice.next().await.unwrap(), live);
        // A history entry is the very frame the others saw live.
        let mut carol = Socket::new(&hub).await;
        hub.join(carol.connection, &carol.outbox, "carol".into(), None)
            .unwrap();
        let welcome = carol.next().await.unwrap();
        assert_eq!(welcome["history"].as_array().unwrap().last(), Some(&live));
    }

    #[tokio::test]
    async fn posts_that_find_the_chat_held_are_published_by_its_holder_in_order() {
        let hub = Arc::new(hub());
        let (mut alice, alice_user) = Socket::join(&hub, "alice", None).await;
        let held = hub.lock();
        let (done, posted) = std::sync::mpsc::channel();
        let poster = {
            let hub = hub.clone();
            std::thread::spawn(move || {
                for n in 1..=3 {
                    hub.post(&alice_user, format!("m{n}"));
                }
                done.send(()).unwrap();
            })
        };
        posted
            .recv_timeout(Duration::from_secs(5))
            .expect("a post does not wait for the chat's holder");
        poster.join().unwrap();
        assert!(alice.next().await.is_none(), "nothing leaves while held");
        drop(held);
        for n in 1..=3 {
            let frame = alice.next().await.unwrap();
            assert_eq!(frame["id"], n);
            assert_eq!(frame["text"], format!("m{n}"));
        }
        assert!(alice.next().await.is_none());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_posters_reach_every_socket_once_in_one_order() {
        const THREADS: usize = 4;
        const POSTS: usize = 50;
        // No delay: the chat never turns busy, so no clock is needed.
        let hub = Arc::new(Hub::new(Duration::ZERO, Metrics::default()).unwrap());
        let mut sockets = Vec::new();
        let mut users = Vec::new();
        for n in 0..8 {
            let (socket, user) = Socket::join(&hub, &format!("user{n}"), None).await;
            sockets.push(socket);
            users.push(user);
        }
        let posters: Vec<_> = (0..THREADS)
            .map(|thread| {
                let hub = hub.clone();
                let user = users[thread].clone();
                std::thread::spawn(move || {
                    for n in 0..POSTS {
                        hub.post(&user, format!("t{thread}-{n}"));
                    }
                })
            })
            .collect();
        // A newcomer in the middle of it: its live frames follow its history.
        let (mut late, late_welcome) = {
            let mut socket = Socket::new(&hub).await;
            hub.join(socket.connection, &socket.outbox, "late".into(), None)
                .unwrap();
            let welcome = socket.next().await.unwrap();
            (socket, welcome)
        };
        for poster in posters {
            poster.join().unwrap();
        }
        let total = (THREADS * POSTS) as u64;
        for socket in &mut sockets {
            let mut texts = Vec::new();
            let mut expected_id = 1;
            while expected_id <= total {
                let frame = socket.next().await.expect("every message arrives");
                if frame["type"] == "message" {
                    assert_eq!(frame["id"], expected_id, "in id order, none twice");
                    texts.push(frame["text"].as_str().unwrap().to_owned());
                    expected_id += 1;
                }
            }
            // Each poster's messages keep the order they were posted in.
            for thread in 0..THREADS {
                let own: Vec<_> = texts
                    .iter()
                    .filter(|text| text.starts_with(&format!("t{thread}-")))
                    .cloned()
                    .collect();
                let posted: Vec<_> = (0..POSTS).map(|n| format!("t{thread}-{n}")).collect();
                assert_eq!(own, posted);
            }
        }
        let history = late_welcome["history"].as_array().unwrap();
        let mut expected_id = history
            .last()
            .map_or(1, |last| last["id"].as_u64().unwrap() + 1);
        while expected_id <= total {
            let frame = late.next().await.expect("the newcomer gets the rest");
            assert_eq!(frame["id"], expected_id, "right after its history");
            expected_id += 1;
        }
        assert!(late.next().await.is_none(), "and nothing more");
    }

    #[tokio::test]
    async fn a_chat_is_quiet_until_frames_come_faster_than_three_per_delay() {
        let hub = Hub::new(Duration::from_secs(3600), Metrics::default()).unwrap();
        let (_alice, alice_user) = Socket::join(&hub, "alice", None).await;
        assert!(!hub.is_busy(), "a join is no load");
        for n in 0..3 {
            hub.post(&alice_user, format!("m{n}"));
        }
        assert!(!hub.is_busy(), "a few frames are no load");
        for n in 0..20 {
            hub.post(&alice_user, format!("m{n}"));
        }
        assert!(hub.is_busy(), "a burst within one delay is");
    }

    #[tokio::test]
    async fn names_are_unique_case_insensitively() {
        let hub = hub();
        let _alice = Socket::join(&hub, "Alice", None).await;
        let other = Socket::new(&hub).await;
        let error = hub
            .join(other.connection, &other.outbox, "alice".into(), None)
            .err()
            .unwrap();
        assert_eq!(error.code, ErrorCode::NameTaken);
    }

    #[tokio::test]
    async fn history_keeps_the_last_messages_oldest_first() {
        let hub = hub();
        let (_alice, alice_user) = Socket::join(&hub, "alice", None).await;
        for n in 0..HISTORY_LEN + 5 {
            hub.post(&alice_user, format!("m{n}"));
        }
        let mut bob = Socket::new(&hub).await;
        hub.join(bob.connection, &bob.outbox, "bob".into(), None)
            .unwrap();
        let welcome = bob.next().await.unwrap();
        let history = welcome["history"].as_array().unwrap();
        assert_eq!(history.len(), HISTORY_LEN);
        assert_eq!(history[0]["text"], "m5");
        assert_eq!(
            history[HISTORY_LEN - 1]["text"],
            format!("m{}", HISTORY_LEN + 4)
        );
    }

    #[tokio::test]
    async fn takeover_keeps_the_user_and_ends_only_the_old_socket() {
        let hub = hub();
        let (first, alice) = Socket::join(&hub, "alice", Some("k1")).await;
        let (mut watcher, _) = Socket::join(&hub, "bob", None).await;
        let mut second = Socket::new(&hub).await;
        let again = hub
            .join(
                second.connection,
                &second.outbox,
                "ALICE".into(),
                Some("k1".into()),
            )
            .unwrap();
        assert_eq!(again, alice);
        assert_eq!(second.next().await.unwrap()["type"], "welcome");
        let ended = ended_within_a_second(&first.outbox).await;
        assert_eq!(
            ended,
            fanout::Wake::Ended(fanout::Ending::Close(
                CLOSE_REPLACED,
                "replaced by a newer connection of the same client"
            ))
        );
        // The old socket's departure goes unnoticed; the new one's does not.
        hub.leave(first.connection, &alice);
        assert!(watcher.next().await.is_none());
        hub.leave(second.connection, &alice);
        assert_eq!(watcher.next().await.unwrap()["type"], "left");
    }

    #[tokio::test]
    async fn a_newcomer_is_announced_to_the_others_only() {
        let hub = hub();
        let (mut alice, _) = Socket::join(&hub, "alice", None).await;
        let (mut bob, bob_user) = Socket::join(&hub, "bob", None).await;
        assert_eq!(alice.next().await.unwrap()["type"], "joined");
        assert!(bob.next().await.is_none());
        hub.post(&bob_user, "hi".into());
        assert_eq!(alice.next().await.unwrap()["id"], 1);
        assert_eq!(bob.next().await.unwrap()["id"], 1);
    }

    #[tokio::test]
    async fn nobody_joins_after_shutdown() {
        let hub = hub();
        let (alice, _) = Socket::join(&hub, "alice", None).await;
        hub.shut_down();
        let ended = ended_within_a_second(&alice.outbox).await;
        assert_eq!(
            ended,
            fanout::Wake::Ended(fanout::Ending::Close(1001, "server shutting down"))
        );
        let bob = Socket::new(&hub).await;
        let error = hub
            .join(bob.connection, &bob.outbox, "bob".into(), None)
            .err()
            .unwrap();
        assert_eq!(error.code, ErrorCode::Unavailable);
    }
}
