//! One WebSocket, from the upgrade to the close, in one task.
//!
//! The task waits on everything that can happen to its socket at once: a
//! frame from the client, the end of a pending write, a frame published by
//! the hub, the ping timer. Keeping all of it in one task with no buffers of
//! its own is what keeps an idle socket down to a few KiB.
//!
//! Writes never block the loop: frames are handed to tungstenite's write
//! buffer and the loop keeps reading while that buffer drains. A socket
//! whose buffer does not drain stops taking frames from the hub, falls
//! behind, and is cut off once it is more than `QUEUE_LEN` frames late.
//!
//! Write by need, not by clock: a frame for a socket that is not writing
//! leaves at once unless the socket wrote just before. After each write the
//! session stops looking at the hub's ring for a while (and while the write
//! is still going out); whatever arrived meanwhile then leaves together, in
//! one flush, usually one system call. How long depends on the chat's pace
//! ([`ops::pace`], kept by the hub): `WRITE_DELAY_MS` when the chat is busy,
//! so that a busy chat costs each socket at most one wake-up and one write
//! per delay however many frames it carries; half of that when it is quiet,
//! which a frame of an everyday chat never waits for. A quiet socket still
//! pauses because going back to the ring at once, while the same frame is
//! still being fanned out to the other sockets, contends with that fan-out:
//! measured, it costs latency and saves no CPU.

use crate::app::App;
use crate::frame;
use crate::hub::{ConnectionId, Outgoing};
use crate::socket::{
    Ending, Event, Socket, poll_socket, until_hold_over, until_shutdown, write_fragmented,
};
use bytes::Bytes;
use ops::Shutdown;
use ops::rate::{AbuseCounter, TokenBucket};
use protocol::ws::{ClientFrame, ServerFrame, User};
use protocol::{ErrorBody, ErrorCode};
use std::collections::VecDeque;
use std::future::poll_fn;
use std::ops::ControlFlow;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast::{self, error::RecvError, error::TryRecvError};
use tokio::time::{Instant, Sleep, timeout};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

/// How many published frames one wake-up writes before it gives the other
/// sockets a turn.
const FRAMES_PER_WAKE: usize = 64;

/// How long a closing socket gets to deliver its close frame and see the
/// peer hang up.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// Close code telling a page that another tab or reconnect of the same
/// client took its name over, so it must not reconnect on its own.
pub const CLOSE_REPLACED: u16 = 4000;

/// The member this socket speaks for, once its `hello` succeeded.
struct Membership {
    user: User,
    deliveries: broadcast::Receiver<Outgoing>,
}

pub struct Session {
    ws: Socket,
    connection: ConnectionId,
    app: Arc<App>,
    limiter: TokenBucket,
    abuse: AbuseCounter,
    membership: Option<Membership>,
    unanswered_pings: u8,
    /// Frames wait in tungstenite's write buffer; the loop drives them out.
    flushing: bool,
    /// Armed only while a write is stuck: when it fires, the session checks
    /// whether it fell too far behind.
    stall: Option<Pin<Box<Sleep>>>,
    /// Armed when the session writes the hub's frames: until it fires, new
    /// frames gather in the ring instead of waking the session.
    hold: Option<Pin<Box<Sleep>>>,
    /// Frames that must go out before anything else, in order: the
    /// fragments of a large welcome, and any error frame that came up
    /// meanwhile (nothing but a control frame may come between fragments).
    /// The hub's frames wait until it is empty.
    backlog: VecDeque<Message>,
}

impl Session {
    pub fn new(ws: Socket, app: Arc<App>) -> Session {
        Session {
            ws,
            connection: app.hub.new_connection_id(),
            limiter: TokenBucket::new(app.config.msg_rate),
            abuse: AbuseCounter::default(),
            membership: None,
            unanswered_pings: 0,
            flushing: false,
            stall: None,
            hold: None,
            backlog: VecDeque::new(),
            app,
        }
    }

    /// Serves the socket until it closes, then tells the hub.
    pub async fn run(mut self, shutdown: Shutdown) {
        self.app.metrics.core.connections.inc();
        self.app.metrics.core.connections_total.inc();
        let ending = self.serve(shutdown).await;
        // Boxed, like `join`, so that the rarely used states of a socket do
        // not take room in every idle socket's task.
        Box::pin(self.finish(ending)).await;
    }

    async fn serve(&mut self, shutdown: Shutdown) -> Ending {
        let ping_interval = self.app.config.ping_interval;
        let mut ping = tokio::time::interval_at(Instant::now() + ping_interval, ping_interval);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Joined sessions learn of the shutdown from the hub's closing ring;
        // polling this future takes a process-wide lock, so only sockets that
        // have not joined yet hold it.
        let mut shutdown_before_join = Some(Box::pin(shutdown.wait_owned()));
        loop {
            let flushing = self.flushing;
            let joined = self.membership.is_some();
            // A client whose welcome is still going out is not read from, so
            // nothing it sends can pile more frames up behind the welcome.
            let reading = self.backlog.is_empty();
            if joined {
                shutdown_before_join = None;
            }
            let event = tokio::select! {
                biased;
                _ = until_shutdown(&mut shutdown_before_join), if !joined => {
                    Event::ShutdownBeforeJoin
                }
                event = poll_fn(|cx| {
                    poll_socket(&mut self.ws, flushing, reading, &mut self.stall, cx)
                }) => {
                    event
                }
                delivery = next_delivery(&mut self.membership),
                    if joined && !flushing && self.hold.is_none() && self.backlog.is_empty() => {
                    Event::Delivery(delivery)
                }
                _ = until_hold_over(&mut self.hold) => Event::HoldOver,
                _ = ping.tick() => Event::PingDue,
            };
            if let ControlFlow::Break(ending) = self.handle(event) {
                return ending;
            }
        }
    }

    fn handle(&mut self, event: Event) -> ControlFlow<Ending> {
        match event {
            Event::Incoming(message) => self.on_message(message),
            Event::Broken(ending) => ControlFlow::Break(ending),
            Event::Flushed => {
                self.flushing = false;
                self.write_backlog()
            }
            Event::Delivery(delivery) => self.on_delivery(delivery),
            Event::HoldOver => {
                self.hold = None;
                ControlFlow::Continue(())
            }
            Event::PingDue => self.on_ping_due(),
            Event::StallCheck => self.check_not_too_far_behind(),
            Event::ShutdownBeforeJoin => {
                ControlFlow::Break(Ending::Close(CloseCode::Away, "server shutting down"))
            }
        }
    }

    fn on_message(&mut self, message: Message) -> ControlFlow<Ending> {
        match message {
            Message::Text(text) => {
                if self.admit()? {
                    self.on_text(&text)
                } else {
                    ControlFlow::Continue(())
                }
            }
            Message::Binary(_) => {
                if self.admit()? {
                    self.send_error(ErrorBody::bad_request(
                        "binary frames are not supported: send JSON text frames",
                    ))
                } else {
                    ControlFlow::Continue(())
                }
            }
            Message::Pong(_) => {
                self.unanswered_pings = 0;
                ControlFlow::Continue(())
            }
            // tungstenite answers pings itself and replies to a close frame;
            // after the close the stream ends, which ends the session.
            Message::Ping(_) | Message::Close(_) | Message::Frame(_) => ControlFlow::Continue(()),
        }
    }

    /// Counts one client frame against the rate limit: true when it may be
    /// processed. A merely fast sender is told to slow down and loses the
    /// frame; one flooding far past the limit is cut off.
    fn admit(&mut self) -> ControlFlow<Ending, bool> {
        self.app.metrics.core.messages_in.inc();
        let accepted = self.limiter.try_take();
        if self.abuse.record(accepted) {
            self.app.metrics.core.disconnects_forced.inc();
            return ControlFlow::Break(Ending::Close(
                CloseCode::Policy,
                "flooding far past the rate limit",
            ));
        }
        if !accepted {
            self.send_error(ErrorBody::new(
                ErrorCode::RateLimited,
                "too many messages: slow down",
            ))?;
        }
        ControlFlow::Continue(accepted)
    }

    fn on_text(&mut self, text: &str) -> ControlFlow<Ending> {
        let frame = match ClientFrame::parse(text) {
            Ok(frame) => frame,
            Err(error) => return self.send_error(error),
        };
        match (frame, &self.membership) {
            (ClientFrame::Hello { name, client_id }, None) => self.join(name, client_id),
            (ClientFrame::Hello { .. }, Some(_)) => {
                self.send_error(ErrorBody::bad_request("already joined"))
            }
            (ClientFrame::Message { text }, Some(member)) => {
                self.app.hub.post(&member.user, text);
                ControlFlow::Continue(())
            }
            (ClientFrame::Typing, Some(member)) => {
                self.app.hub.typing(self.connection, &member.user);
                ControlFlow::Continue(())
            }
            (ClientFrame::Message { .. } | ClientFrame::Typing, None) => self.send_error(
                ErrorBody::new(ErrorCode::NotJoined, "say hello with a name first"),
            ),
        }
    }

    fn join(&mut self, name: String, client_id: Option<String>) -> ControlFlow<Ending> {
        let joined = match self.app.hub.join(self.connection, name, client_id) {
            Ok(joined) => joined,
            // name_taken (the client may retry) or unavailable (shutting down).
            Err(error) => return self.send_error(error),
        };
        self.membership = Some(Membership {
            user: joined.user,
            deliveries: joined.deliveries,
        });
        self.app.metrics.core.messages_out.inc();
        self.backlog
            .extend(frame::text_frames(joined.welcome.into_iter()));
        self.write_backlog()
    }

    /// Writes the backlog while the socket takes it. A welcome lists every
    /// user, so it can be large: the rest waits for the next flush rather
    /// than piling up in tungstenite's buffer.
    fn write_backlog(&mut self) -> ControlFlow<Ending> {
        while !self.backlog.is_empty() && self.ws.has_room() {
            let frame = self.backlog.pop_front().expect("checked it is not empty");
            self.queue(frame)?;
        }
        if self.backlog.is_empty() && self.backlog.capacity() > 0 {
            // A drained deque keeps its buffer; an idle socket should not.
            self.backlog = VecDeque::new();
        }
        ControlFlow::Continue(())
    }

    /// Writes the frame the hub published, then whatever else is already
    /// waiting, as long as the socket keeps taking it. When that empties the
    /// ring, the hold starts: the next frames wait for it and go together.
    /// When the socket is full instead, the flush in progress is the wait;
    /// when the wake-up's share ran out, the rest follows at once.
    fn on_delivery(&mut self, delivery: Result<Outgoing, RecvError>) -> ControlFlow<Ending> {
        let mut delivered = 0;
        let mut next = delivery;
        let mut drained = false;
        for round in 1..=FRAMES_PER_WAKE {
            match next {
                Ok(outgoing) => delivered += self.deliver(&outgoing)?,
                Err(RecvError::Lagged(_)) => return self.too_slow(),
                Err(RecvError::Closed) => {
                    return ControlFlow::Break(Ending::Close(
                        CloseCode::Away,
                        "server shutting down",
                    ));
                }
            }
            // The wake-up's share is used up, or the socket is full: the
            // next frame stays in the ring (taking it now would drop it).
            if round == FRAMES_PER_WAKE || !self.ws.has_room() {
                break;
            }
            let Some(member) = &mut self.membership else {
                break;
            };
            next = match member.deliveries.try_recv() {
                Ok(outgoing) => Ok(outgoing),
                Err(TryRecvError::Empty) => {
                    drained = true;
                    break;
                }
                Err(TryRecvError::Lagged(skipped)) => Err(RecvError::Lagged(skipped)),
                Err(TryRecvError::Closed) => Err(RecvError::Closed),
            };
        }
        if delivered > 0 {
            self.app.metrics.core.messages_out.inc_by(delivered);
            self.flushing = true;
            let hold = self.app.hub.hold_after_write();
            if drained && !hold.is_zero() {
                self.hold = Some(Box::pin(tokio::time::sleep(hold)));
            }
        }
        ControlFlow::Continue(())
    }

    /// Writes one published frame unless it is not meant for this socket;
    /// returns how many frames were written.
    fn deliver(&mut self, outgoing: &Outgoing) -> ControlFlow<Ending, u64> {
        match outgoing {
            Outgoing::Frame { except, .. } if *except == Some(self.connection) => {
                ControlFlow::Continue(0)
            }
            Outgoing::Frame { json, .. } => match write_fragmented(&mut self.ws, json) {
                Ok(()) => ControlFlow::Continue(1),
                Err(error) => {
                    tracing::debug!(%error, "write failed");
                    ControlFlow::Break(Ending::PeerGone)
                }
            },
            Outgoing::Replaced(connection) if *connection == self.connection => {
                ControlFlow::Break(Ending::Close(
                    CloseCode::Library(CLOSE_REPLACED),
                    "replaced by a newer connection of the same client",
                ))
            }
            Outgoing::Replaced(_) => ControlFlow::Continue(0),
        }
    }

    fn on_ping_due(&mut self) -> ControlFlow<Ending> {
        if self.unanswered_pings >= 2 {
            tracing::debug!("peer missed two pongs");
            return ControlFlow::Break(Ending::PeerGone);
        }
        self.unanswered_pings += 1;
        // A socket still busy writing cannot take a ping; the ping counts as
        // unanswered all the same, so a peer that stopped reading is dropped.
        if !self.flushing {
            self.queue(Message::Ping(Bytes::new()))?;
        }
        ControlFlow::Continue(())
    }

    fn check_not_too_far_behind(&mut self) -> ControlFlow<Ending> {
        match &self.membership {
            Some(member) if member.deliveries.len() > self.app.config.queue_len => self.too_slow(),
            _ => ControlFlow::Continue(()),
        }
    }

    fn too_slow(&mut self) -> ControlFlow<Ending> {
        self.app.metrics.slow_disconnects.inc();
        self.app.metrics.core.disconnects_forced.inc();
        ControlFlow::Break(Ending::Close(
            CloseCode::Again,
            "too slow: fell too far behind the chat",
        ))
    }

    fn send_error(&mut self, error: ErrorBody) -> ControlFlow<Ending> {
        self.app.metrics.core.count_error(error.code);
        let frame = Message::Text(ServerFrame::Error(error).to_json().into());
        if self.backlog.is_empty() {
            self.queue(frame)
        } else {
            self.backlog.push_back(frame);
            ControlFlow::Continue(())
        }
    }

    /// Hands one frame to tungstenite's write buffer; the loop flushes it.
    fn queue(&mut self, message: Message) -> ControlFlow<Ending> {
        match self.ws.queue(message) {
            Ok(()) => {
                self.flushing = true;
                ControlFlow::Continue(())
            }
            Err(error) => {
                tracing::debug!(%error, "write failed");
                ControlFlow::Break(Ending::PeerGone)
            }
        }
    }

    /// Leaves the chat and closes the socket as politely as the peer allows.
    async fn finish(mut self, ending: Ending) {
        if let Some(member) = self.membership.take() {
            self.app.hub.leave(self.connection, &member.user);
        }
        match ending {
            // Sends tungstenite's reply to a close frame, if there is one; the
            // peer is gone, so a failure or a timeout has no one to tell.
            Ending::PeerGone => {
                let _ = timeout(CLOSE_TIMEOUT, self.ws.flush()).await;
            }
            Ending::Close(code, reason) => {
                tracing::debug!(%code, reason, "closing the socket");
                let frame = CloseFrame {
                    code,
                    reason: reason.into(),
                };
                // Best effort, bounded: a peer that does not take the close
                // frame is dropped all the same when the session ends.
                let _ = timeout(CLOSE_TIMEOUT, async {
                    let _ = self.ws.close(frame).await;
                    ops::close::linger(self.ws.io_mut(), CLOSE_TIMEOUT).await;
                })
                .await;
            }
        }
        self.app.metrics.core.connections.dec();
    }
}

/// Waits for the next frame published by the hub (never, before `hello`).
async fn next_delivery(membership: &mut Option<Membership>) -> Result<Outgoing, RecvError> {
    match membership {
        Some(member) => member.deliveries.recv().await,
        None => std::future::pending().await,
    }
}
