//! The settings of a chat run, how a session ends, and what each chat
//! client keeps for itself across reconnections (its delivery log, its send
//! schedule): what the client loop (`chat`) and every protocol's session
//! share, so that neither imports the other.

use crate::codec::stamp::{Stamp, unix_micros};
use crate::deliveries::{DeliveryLog, SendLog};
use crate::run::{Jitter, Phase, RunContext};
use rand::Rng;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::time::Instant;

/// The chat protocols a client can speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChatProto {
    /// ws-chat: JSON frames over a plain WebSocket, one chat.
    WsChat,
    /// rooms-chat: Socket.IO v5 over WebSocket, rooms.
    RoomsChat,
    /// The raw TCP reference server: newline-delimited lines.
    Raw,
}

/// How a session ended without an error: what every protocol's session
/// returns to the client loop in `chat`.
#[derive(Debug, PartialEq, Eq)]
pub enum SessionEnd {
    /// The run is over.
    Stopped,
    /// The jitter schedule cut the connection.
    Cut,
}

#[derive(Debug, Clone)]
pub struct ChatSettings {
    pub proto: ChatProto,
    pub targets: Vec<SocketAddr>,
    pub rooms: usize,
    pub senders: usize,
    /// Interval between two messages of one sender.
    pub send_period: Duration,
    pub text_bytes: usize,
    pub jitter: Option<Jitter>,
    /// Makes names unique across the processes of one run.
    pub name_prefix: String,
    pub join_timeout: Duration,
}

impl ChatSettings {
    /// Room names carry the run's prefix, so every run starts from empty rooms.
    pub fn room_name(&self, room: usize) -> String {
        format!("{}room-{room}", self.name_prefix)
    }
}

/// The shared state of a chat run.
pub type ChatContext = RunContext<ChatSettings>;

/// A sender's schedule and log.
#[derive(Debug)]
pub struct Sender {
    pub id: u32,
    next_seq: u32,
    next_send: Option<Instant>,
    /// Where in the period this sender starts, so senders do not fire together.
    offset: f64,
    pub log: SendLog,
}

/// One client, kept across reconnections.
#[derive(Debug)]
pub struct ClientState {
    pub index: u32,
    pub room: usize,
    pub sender: Option<Sender>,
    pub log: DeliveryLog,
    /// Deliveries whose text carried no stamp (joins, foreign messages).
    pub foreign: u64,
    pub errors: u64,
    pub sessions: u32,
    jitter_deadline: Option<Instant>,
    joined_once: bool,
}

impl ClientState {
    pub fn new(index: u32, settings: &ChatSettings) -> Self {
        let room = index as usize % settings.rooms.max(1);
        let sender = ((index as usize) < settings.senders).then(|| Sender {
            id: index,
            next_seq: 0,
            next_send: None,
            offset: index as f64 / settings.senders.max(1) as f64,
            log: SendLog::default(),
        });
        ClientState {
            index,
            room,
            sender,
            log: DeliveryLog::default(),
            foreign: 0,
            errors: 0,
            sessions: 0,
            jitter_deadline: None,
            joined_once: false,
        }
    }

    /// The name this client joins with (unique in the run).
    pub fn name(&self, settings: &ChatSettings) -> String {
        format!("{}{}", settings.name_prefix, self.index)
    }

    /// The opaque client id that lets a re-join take its own name back.
    pub fn client_id(&self, settings: &ChatSettings) -> String {
        format!("lg-{}{}", settings.name_prefix, self.index)
    }

    /// Called when a session has joined; counts the first join of the run.
    pub fn joined(&mut self, context: &ChatContext) {
        if !self.joined_once {
            self.joined_once = true;
            context.joined.fetch_add(1, Ordering::Relaxed);
        }
        self.jitter_deadline = None;
    }

    pub fn has_joined(&self) -> bool {
        self.joined_once
    }

    /// A message text arrived: measure latency, record it.
    pub fn deliver(&mut self, context: &ChatContext, text: &str, server_id: Option<u64>) {
        let Some(stamp) = Stamp::parse(text) else {
            self.foreign += 1;
            return;
        };
        context
            .latency
            .record(unix_micros().saturating_sub(stamp.sent_micros));
        context.deliveries.fetch_add(1, Ordering::Relaxed);
        self.log.record(stamp, server_id);
    }

    /// When this client should send next, if it is a sender and the run is sending.
    pub fn next_send_at(&mut self, settings: &ChatSettings, phase: Phase) -> Option<Instant> {
        let Phase::Sending { start, end } = phase else {
            return None;
        };
        let period = settings.send_period;
        let sender = self.sender.as_mut()?;
        let now = Instant::now();
        let next = sender
            .next_send
            .get_or_insert_with(|| start + period.mul_f64(sender.offset));
        // After a forced disconnection, skip what could not be sent rather
        // than bursting it out (open loop: the schedule does not wait).
        if *next + Duration::from_secs(1) < now {
            *next = now;
        }
        (*next < end).then_some(*next)
    }

    /// The text of the next message, advancing the schedule.
    pub fn take_next_message(&mut self, settings: &ChatSettings) -> Option<(u32, String)> {
        let sender = self.sender.as_mut()?;
        let seq = sender.next_seq;
        sender.next_seq += 1;
        sender.log.sent += 1;
        if let Some(next) = sender.next_send.as_mut() {
            *next += settings.send_period;
        }
        let stamp = Stamp {
            sender: sender.id,
            seq,
            sent_micros: unix_micros(),
        };
        Some((seq, stamp.to_text(settings.text_bytes)))
    }

    /// When the current session should be cut, if jitter is on and the run sends.
    pub fn jitter_at(&mut self, settings: &ChatSettings, phase: Phase) -> Option<Instant> {
        let jitter = settings.jitter?;
        let Phase::Sending { start, .. } = phase else {
            return None;
        };
        let first_session = self.sessions <= 1;
        Some(*self.jitter_deadline.get_or_insert_with(|| {
            let mut random = rand::rng();
            if first_session {
                // Spread the first cuts over one period from the start.
                start + jitter.every.mul_f64(random.random_range(0.0..1.0))
            } else {
                Instant::now() + jitter.every.mul_f64(random.random_range(0.67..1.33))
            }
        }))
    }

    /// How long to stay away after a forced close.
    pub fn downtime(settings: &ChatSettings) -> Duration {
        let down = settings.jitter.map_or(Duration::from_secs(1), |j| j.down);
        down.mul_f64(rand::rng().random_range(0.75..1.25))
    }
}
