//! One WebSocket, from the upgrade to the close, in one task.
//!
//! The task waits on everything that can happen to its socket at once: a
//! frame from the client, its outbox asking for a write or an end, the end
//! of a hold, the ping timer. Keeping all of it in one task with no buffers
//! of its own is what keeps an idle socket down to a few KiB.
//!
//! Most of the time the task does not write at all: the hub writes a quiet
//! chat's frames straight into every socket that has nothing in flight
//! ([`fanout`]). The task writes what its outbox queued: frames the peer
//! did not take at once, and the frames of a busy chat. Write by need, not
//! by clock: a busy chat's first frame wakes the task, which writes it at
//! once, then holds the outbox for `WRITE_DELAY_MS` ([`ops::pace`], kept by
//! the hub); whatever arrives meanwhile then leaves together, in one
//! vectored write, so that a busy chat costs each socket at most one
//! wake-up and one system call per delay however many frames it carries.
//! A socket whose outbox outgrows `QUEUE_LEN` frames is cut off (1013)
//! after a gap-free prefix.

use crate::app::App;
use crate::hub::{ConnectionId, Holder};
use crate::socket::{Ending, Event, Socket, poll_incoming, until_hold_over, until_shutdown};
use auth::Identity;
use fanout::{Outbox, Wake};
use ops::Shutdown;
use ops::admission::Ticket;
use ops::rate::{AbuseCounter, TokenBucket};
use protocol::ws::{ClientFrame, ServerFrame, User};
use protocol::{ErrorBody, ErrorCode};
use std::future::poll_fn;
use std::ops::ControlFlow;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::{Instant, Sleep, timeout};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

/// How long a closing socket gets to deliver its close frame and see the
/// peer hang up.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// One WebSocket's task and everything it holds.
pub struct Session {
    ws: Socket,
    connection: ConnectionId,
    app: Arc<App>,
    limiter: TokenBucket,
    abuse: AbuseCounter,
    /// The member this socket speaks for, once its `hello` succeeded.
    user: Option<User>,
    /// Who holds the socket, from its token (token authentication only;
    /// boxed, so that a socket without one pays a pointer).
    identity: Option<Box<Identity>>,
    unanswered_pings: u8,
    /// Armed while the outbox is held after a write of a busy chat.
    hold: Option<Pin<Box<Sleep>>>,
    /// The connection's place in the server's limits, given back when the
    /// session ends.
    _place: Option<Ticket>,
}

impl Session {
    /// The session of `ws`, holding the connection's `place` in the
    /// limits, opened with `identity`'s token if any.
    pub fn new(
        ws: Socket,
        place: Option<Ticket>,
        app: Arc<App>,
        identity: Option<Identity>,
    ) -> Session {
        Session {
            ws,
            connection: app.hub.new_connection_id(),
            limiter: TokenBucket::new(app.config.msg_rate),
            abuse: AbuseCounter::default(),
            user: None,
            identity: identity.map(Box::new),
            unanswered_pings: 0,
            hold: None,
            _place: place,
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
        // Joined sessions learn of the shutdown from the hub, which ends
        // their outboxes; polling this future takes a process-wide lock, so
        // only sockets that have not joined yet hold it.
        let mut shutdown_before_join = Some(Box::pin(shutdown.wait_owned()));
        loop {
            let joined = self.user.is_some();
            if joined {
                shutdown_before_join = None;
            }
            let outbox = self.ws.outbox().clone();
            let event = tokio::select! {
                biased;
                _ = until_shutdown(&mut shutdown_before_join), if !joined => {
                    Event::ShutdownBeforeJoin
                }
                wake = poll_fn(|cx| outbox.poll_next(cx)) => Event::Outbox(wake),
                event = poll_fn(|cx| poll_incoming(&mut self.ws, cx)) => event,
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
            Event::Outbox(Wake::Flushed) => {
                // A busy chat's next frames gather for a while, then leave
                // together.
                if self.app.hub.is_busy() {
                    self.ws.outbox().hold(true);
                    self.hold = Some(Box::pin(tokio::time::sleep(self.app.hub.write_delay())));
                }
                ControlFlow::Continue(())
            }
            Event::Outbox(Wake::Ended(ending)) => ControlFlow::Break(self.ended(ending)),
            Event::HoldOver => {
                self.hold = None;
                self.ws.outbox().hold(false);
                ControlFlow::Continue(())
            }
            Event::PingDue => self.on_ping_due(),
            Event::ShutdownBeforeJoin => {
                ControlFlow::Break(Ending::Close(CloseCode::Away, "server shutting down"))
            }
        }
    }

    /// What the outbox's ending means for the client.
    fn ended(&mut self, ending: fanout::Ending) -> Ending {
        match ending {
            fanout::Ending::TooSlow => {
                self.app.metrics.slow_disconnects.inc();
                self.app.metrics.core.disconnects_forced.inc();
                Ending::Close(CloseCode::Again, "too slow: fell too far behind the chat")
            }
            fanout::Ending::Broken => Ending::PeerGone,
            fanout::Ending::Close(code, reason) => Ending::Close(CloseCode::from(code), reason),
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
        match (frame, &self.user) {
            (ClientFrame::Hello { name, client_id }, None) => self.join(name, client_id),
            (ClientFrame::Hello { .. }, Some(_)) => {
                self.send_error(ErrorBody::bad_request("already joined"))
            }
            (ClientFrame::Message { text }, Some(user)) => {
                self.app.hub.post(user, text);
                ControlFlow::Continue(())
            }
            (ClientFrame::Typing, Some(user)) => {
                self.app.hub.typing(self.connection, user);
                ControlFlow::Continue(())
            }
            (ClientFrame::Message { .. } | ClientFrame::Typing, None) => self.send_error(
                ErrorBody::new(ErrorCode::NotJoined, "say hello with a name first"),
            ),
        }
    }

    fn join(&mut self, name: String, client_id: Option<String>) -> ControlFlow<Ending> {
        // With a token, its name and its person, whatever the hello asked.
        let (name, holder) = match &self.identity {
            Some(identity) => (identity.name.clone(), Holder::Person(identity.sub.clone())),
            None => (name, Holder::Client(client_id)),
        };
        // The hub sends the welcome itself, in order with the live frames.
        match self
            .app
            .hub
            .join_as(self.connection, self.ws.outbox(), name, holder)
        {
            Ok(user) => {
                self.user = Some(user);
                ControlFlow::Continue(())
            }
            // name_taken (the client may retry) or unavailable (shutting down).
            Err(error) => self.send_error(error),
        }
    }

    fn on_ping_due(&mut self) -> ControlFlow<Ending> {
        if self.unanswered_pings >= 2 {
            tracing::debug!("peer missed two pongs");
            return ControlFlow::Break(Ending::PeerGone);
        }
        self.unanswered_pings += 1;
        // Queued behind whatever the peer has not taken yet: a peer that
        // stopped reading never answers it, and is dropped.
        self.ws.send(fanout::frame::ping());
        ControlFlow::Continue(())
    }

    fn send_error(&mut self, error: ErrorBody) -> ControlFlow<Ending> {
        self.app.metrics.core.count_error(error.code);
        let json = ServerFrame::Error(error).to_json();
        self.ws.send(fanout::frame::text(json.as_bytes()));
        ControlFlow::Continue(())
    }

    /// Leaves the chat and closes the socket as politely as the peer allows.
    async fn finish(mut self, ending: Ending) {
        if let Some(user) = self.user.take() {
            self.app.hub.leave(self.connection, &user);
        }
        let outbox = self.ws.into_outbox();
        let closing = match ending {
            // tungstenite's reply to a close frame, if there is one, is
            // queued already; the peer is gone, so nothing else is said.
            Ending::PeerGone => false,
            Ending::Close(code, reason) => {
                tracing::debug!(%code, reason, "closing the socket");
                outbox.send_last(fanout::frame::close(code.into(), reason));
                true
            }
        };
        // Best effort, bounded: a peer that does not take the last frames
        // is dropped all the same when the session ends.
        let _ = timeout(CLOSE_TIMEOUT, drain(&outbox)).await;
        if closing {
            // Nobody else holds the outbox once the hub let the member go.
            if let Ok(outbox) = Arc::try_unwrap(outbox) {
                let mut stream = outbox.into_stream();
                ops::close::linger(&mut stream, CLOSE_TIMEOUT).await;
            }
        }
        self.app.metrics.core.connections.dec();
    }
}

/// Writes out what `outbox` still holds, until it is empty or broken.
async fn drain(outbox: &Outbox) {
    loop {
        match poll_fn(|cx| outbox.poll_next(cx)).await {
            Wake::Flushed | Wake::Ended(fanout::Ending::Broken) => return,
            // An ending learnt now changes nothing: the session ends anyway.
            Wake::Ended(_) => {}
        }
    }
}
