//! One Engine.IO session as everyone who touches it shares it: its id, its
//! way out ([`Link`]), and the inbox through which HTTP requests hand the
//! session's task what they received (a long-polling client's payloads,
//! the WebSocket of an upgrade, a request to close).
//!
//! The task owns everything else about the session. A WebSocket client
//! never uses the inbox: its task reads the socket itself.

use crate::link::Link;
use crate::ws::WsSocket;
use futures::task::AtomicWaker;
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::sync::atomic::AtomicBool;
use std::task::{Context, Poll, Waker};

/// Why a session ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// The client disconnected its socket (`41`).
    ClientDisconnect,
    /// The client closed the session (`1`), or its connection ended.
    TransportClose,
    /// The client did not answer a ping in time.
    PingTimeout,
    /// The client broke the protocol (a packet that does not decode, two
    /// GETs or two POSTs at once).
    TransportError,
    /// The client sent a message or payload larger than `maxPayload`.
    TooLarge,
    /// The client did not take its packets fast enough: it got a
    /// gap-free prefix, then the close.
    TooSlow,
    /// The app disconnected the socket.
    ServerDisconnect,
    /// The client opened a session but did not connect to `/` in time.
    ConnectTimeout,
    /// A handler of the app panicked.
    HandlerFailed,
    /// The app ended the connection but not the socket (it fell behind,
    /// or missed events): the client reconnects and resumes.
    CutOff,
    /// The server shuts down: the client is told to go (a WebSocket
    /// closes with 1001, a long-polling client gets the close packet),
    /// without the disconnect packet, so that it reconnects, elsewhere.
    ServerShutdown,
}

/// What an HTTP request hands the session's task.
pub(crate) enum Delivery {
    /// A long-polling payload, checked already: one or more packets.
    Payload(String),
    /// The WebSocket of an upgrade, for its probe.
    Upgrade(Box<WsSocket>),
    /// The session must end.
    Close(Reason),
}

/// One Engine.IO session's shared state.
pub(crate) struct Engine {
    pub(crate) sid: Box<str>,
    pub(crate) link: Link,
    inbox: Mutex<Inbox>,
    /// The session's task, woken for each delivery.
    task: AtomicWaker,
    /// The client connected to `/`: packets for every socket reach it.
    pub(crate) connected: AtomicBool,
}

#[derive(Default)]
struct Inbox {
    deliveries: VecDeque<Delivery>,
    /// A POST is in flight, answered once its payload was handled.
    posting: bool,
    /// Payloads delivered and not yet handled to their end.
    unhandled: usize,
    post: Option<Waker>,
    /// A WebSocket upgrade was asked for (only one per session).
    upgrading: bool,
    /// The task is gone: nothing is taken any more.
    ended: bool,
}

/// Why an HTTP request could not hand over what it received.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refused {
    /// Another POST is in flight.
    Overlap,
    /// The session is over, or no longer polls.
    Gone,
}

impl Engine {
    /// A session with id `sid` and way out `link`.
    pub(crate) fn new(sid: Box<str>, link: Link) -> Engine {
        Engine {
            sid,
            link,
            inbox: Mutex::new(Inbox::default()),
            task: AtomicWaker::new(),
            connected: AtomicBool::new(false),
        }
    }

    /// A POST starts: at most one at a time.
    pub(crate) fn begin_post(&self) -> Result<(), Refused> {
        let mut inbox = self.inbox.lock();
        if inbox.ended {
            return Err(Refused::Gone);
        }
        if inbox.posting {
            return Err(Refused::Overlap);
        }
        inbox.posting = true;
        Ok(())
    }

    /// The POST in flight is over (answered, refused or dropped).
    pub(crate) fn end_post(&self) {
        let mut inbox = self.inbox.lock();
        inbox.posting = false;
        inbox.post = None;
    }

    /// Ready once the task handled every payload delivered so far to its
    /// end (taking it from the inbox is not enough), or ended.
    pub(crate) fn poll_handled(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut inbox = self.inbox.lock();
        if inbox.ended || inbox.unhandled == 0 {
            return Poll::Ready(());
        }
        inbox.post = Some(cx.waker().clone());
        Poll::Pending
    }

    /// An upgrade starts: only one per session, and only while polling.
    pub(crate) fn begin_upgrade(&self) -> Result<(), Refused> {
        let mut inbox = self.inbox.lock();
        if inbox.ended || inbox.upgrading || self.link.outbox().is_some() {
            return Err(Refused::Gone);
        }
        inbox.upgrading = true;
        Ok(())
    }

    /// Hands `delivery` to the task; dropped if the session is over.
    pub(crate) fn deliver(&self, delivery: Delivery) {
        {
            let mut inbox = self.inbox.lock();
            if inbox.ended {
                return;
            }
            if matches!(delivery, Delivery::Payload(_)) {
                inbox.unhandled += 1;
            }
            inbox.deliveries.push_back(delivery);
        }
        self.task.wake();
    }

    /// For the task: the next delivery.
    pub(crate) fn poll_delivery(&self, cx: &mut Context<'_>) -> Poll<Delivery> {
        self.task.register(cx.waker());
        let mut inbox = self.inbox.lock();
        match inbox.deliveries.pop_front() {
            Some(delivery) => {
                if inbox.deliveries.is_empty() {
                    // An idle session keeps no memory from a burst.
                    inbox.deliveries = VecDeque::new();
                }
                Poll::Ready(delivery)
            }
            None => Poll::Pending,
        }
    }

    /// For the task: one payload is handled, to its end.
    pub(crate) fn handled(&self) {
        let post = {
            let mut inbox = self.inbox.lock();
            inbox.unhandled = inbox.unhandled.saturating_sub(1);
            inbox.post.take()
        };
        if let Some(post) = post {
            post.wake();
        }
    }

    /// For the task: the session is over; whatever waits is dropped.
    pub(crate) fn end(&self) {
        let post = {
            let mut inbox = self.inbox.lock();
            inbox.ended = true;
            inbox.deliveries.clear();
            inbox.post.take()
        };
        if let Some(post) = post {
            post.wake();
        }
        self.link.close();
    }
}
