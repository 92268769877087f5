//! One WebSocket, from the upgrade to the close, in one task.
//!
//! The task waits on everything that can happen to its socket at once: a
//! frame from the client, its outbox asking for a write or an end (the end
//! of its token among them), and, until it joins, its own pings and the
//! shutdown. Keeping all of it in one task with no buffers of its own is
//! what keeps an idle socket down to a few KiB.
//!
//! Most of the time the task does not write at all: the hub writes a quiet
//! chat's frames straight into every socket that has nothing in flight,
//! and the chat's clock flushes a busy chat's frames and pings every
//! joined socket ([`fanout`], [`crate::clock`]). The task writes only what
//! the peer did not take at once, when it reads again. A socket whose
//! outbox outgrows `QUEUE_LEN` frames is cut off (1013) after a gap-free
//! prefix. Until it joins, a socket is nobody the clock knows, so its task
//! pings it itself.

use crate::access;
use crate::app::App;
use crate::hub::{ConnectionId, Holder};
use crate::socket::{Ending, Event, Socket, poll_incoming};
use auth::Identity;
use fanout::{Outbox, Wake};
use ops::Shutdown;
use ops::admission::Ticket;
use ops::rate::{AbuseCounter, TokenBucket};
use protocol::ws::{ClientFrame, ServerFrame, User};
use protocol::{ErrorBody, ErrorCode};
use std::future::Future;
use std::future::poll_fn;
use std::ops::ControlFlow;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::task::AbortHandle;
use tokio::time::{Instant, Interval, timeout};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_util::sync::WaitForCancellationFutureOwned;

/// How long a closing socket gets to deliver its close frame and see the
/// peer hang up.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// Pings a peer may leave unanswered before it is dropped.
pub const MAX_UNANSWERED_PINGS: u8 = 2;

/// What only a socket that has not joined yet waits for: its own pings,
/// and the shutdown. Boxed, and dropped at the join, so that an idle
/// member's task holds neither: the chat's clock pings members, and the
/// hub closes them at shutdown.
struct BeforeJoin {
    ping: Interval,
    shutdown: Pin<Box<WaitForCancellationFutureOwned>>,
}

impl BeforeJoin {
    fn new(ping_interval: Duration, shutdown: &Shutdown) -> BeforeJoin {
        let mut ping = tokio::time::interval_at(Instant::now() + ping_interval, ping_interval);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        BeforeJoin {
            ping,
            shutdown: Box::pin(shutdown.wait_owned()),
        }
    }

    fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<Event> {
        if self.shutdown.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Event::ShutdownBeforeJoin);
        }
        self.ping.poll_tick(cx).map(|_| Event::PingDue)
    }
}

/// A socket opened with a token: who holds it, and the task that closes
/// it when the token expires.
struct Signed {
    identity: Identity,
    expiry: AbortHandle,
}

/// One WebSocket's task and everything it holds.
pub struct Session {
    ws: Socket,
    connection: ConnectionId,
    app: Arc<App>,
    limiter: TokenBucket,
    abuse: AbuseCounter,
    /// The member this socket speaks for, once its `hello` succeeded
    /// (boxed, like everything a socket holds only sometimes, to keep an
    /// idle socket's task small).
    user: Option<Box<User>>,
    /// Until then, what the socket waits for besides its frames.
    before_join: Option<Box<BeforeJoin>>,
    /// Who holds the socket, from its token (token authentication only).
    signed: Option<Box<Signed>>,
    /// The connection's place in the server's limits, given back when the
    /// session ends.
    _place: Option<Ticket>,
}

impl Session {
    /// The session of `ws`, holding the connection's `place` in the
    /// limits, opened with `identity`'s token if any (closed when it
    /// expires).
    pub fn new(
        ws: Socket,
        place: Option<Ticket>,
        app: Arc<App>,
        identity: Option<Identity>,
        shutdown: &Shutdown,
    ) -> Session {
        let signed = identity.map(|identity| {
            let expiry = access::close_at_expiry(ws.outbox(), &identity);
            Box::new(Signed { identity, expiry })
        });
        Session {
            before_join: Some(Box::new(BeforeJoin::new(
                app.config.ping_interval,
                shutdown,
            ))),
            ws,
            connection: app.hub.new_connection_id(),
            limiter: TokenBucket::new(app.config.msg_rate),
            abuse: AbuseCounter::default(),
            user: None,
            signed,
            _place: place,
            app,
        }
    }

    /// Serves the socket until it closes, then tells the hub.
    ///
    /// Not an `async fn`: the compiler keeps an `async fn`'s arguments
    /// twice in its future (as given, and as moved into its body), and an
    /// idle socket's task is this future. The block below uses the session
    /// where it was captured, so it is there once.
    #[allow(clippy::manual_async_fn)] // the point of it, see above
    pub fn run(mut self) -> impl Future<Output = ()> + Send {
        async move {
            self.app.metrics.core.connections.inc();
            self.app.metrics.core.connections_total.inc();
            let ending = self.serve().await;
            self.boxed_finish(ending).await;
        }
    }

    /// The goodbye, made outside `run`: the goodbye's future (its timers,
    /// its linger) is far larger than everything else a socket holds, and
    /// would otherwise take room in every idle socket's task.
    fn boxed_finish(self, ending: Ending) -> Pin<Box<impl Future<Output = ()> + Send>> {
        Box::pin(self.finish(ending))
    }

    /// Handles what happens to the socket, one event at a time, until it
    /// must end. The loop holds nothing of its own across its waits, so
    /// an idle socket's task is the session and no more.
    async fn serve(&mut self) -> Ending {
        loop {
            let event = poll_fn(|cx| self.poll_event(cx)).await;
            if let ControlFlow::Break(ending) = self.handle(event) {
                return ending;
            }
        }
    }

    /// The next event, in this order: the shutdown and the ping of a
    /// socket that has not joined, its outbox, then the client's frames.
    fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<Event> {
        if let Some(before_join) = &mut self.before_join
            && let Poll::Ready(event) = before_join.poll_event(cx)
        {
            return Poll::Ready(event);
        }
        if let Poll::Ready(wake) = self.ws.outbox().poll_next(cx) {
            return Poll::Ready(Event::Outbox(wake));
        }
        poll_incoming(&mut self.ws, cx)
    }

    fn handle(&mut self, event: Event) -> ControlFlow<Ending> {
        match event {
            Event::Incoming(message) => self.on_message(message),
            Event::Broken(ending) => ControlFlow::Break(ending),
            Event::Outbox(Wake::Flushed) => ControlFlow::Continue(()),
            Event::Outbox(Wake::Ended(ending)) => ControlFlow::Break(self.ended(ending)),
            Event::PingDue => {
                self.ws
                    .outbox()
                    .ping(fanout::frame::ping(), MAX_UNANSWERED_PINGS);
                ControlFlow::Continue(())
            }
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
            fanout::Ending::Unresponsive => {
                tracing::debug!("peer missed two pongs");
                Ending::PeerGone
            }
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
                self.ws.outbox().pong();
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
        let (name, holder) = match self.signed.as_ref().map(|signed| &signed.identity) {
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
                self.user = Some(Box::new(user));
                self.before_join = None;
                ControlFlow::Continue(())
            }
            // name_taken (the client may retry) or unavailable (shutting down).
            Err(error) => self.send_error(error),
        }
    }

    fn send_error(&mut self, error: ErrorBody) -> ControlFlow<Ending> {
        self.app.metrics.core.count_error(error.code);
        let json = ServerFrame::Error(error).to_json();
        self.ws.send(fanout::frame::text(json.as_bytes()));
        ControlFlow::Continue(())
    }

    /// Leaves the chat and closes the socket as politely as the peer allows.
    async fn finish(mut self, ending: Ending) {
        if let Some(signed) = self.signed.take() {
            signed.expiry.abort();
        }
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
