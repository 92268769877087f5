//! One client, from its handshake to its close, in one task.
//!
//! The task waits on everything that can happen to the session at once:
//! its way out asking to be written or cut off, a delivery from an HTTP
//! request (a long-polling payload, an upgrade's WebSocket, a close), a
//! frame on its WebSocket or on the one being probed, its heartbeat. It
//! decodes each packet and runs the app's handler for it to the end
//! before it reads the next one, so a socket's events are handled in
//! order with no other task or channel; meanwhile it keeps writing what
//! its outbox queued.

use crate::eio_packet::{self, Incoming, outgoing};
use crate::engine::{Delivery, Engine, Reason};
use crate::handlers::{Connect, Cx, Resume};
use crate::link::{Cutoff, Frame};
use crate::server::Inner;
use crate::sio_packet::{self, Packet, encode};
use crate::socket::{Ack, Socket, SocketRef};
use crate::ws::WsSocket;
use fanout::Wake;
use futures::FutureExt;
use serde_json::Value;
use serde_json::value::RawValue;
use std::future::{Future, poll_fn};
use std::ops::ControlFlow;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::{Instant, Sleep};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::error::{Error as WsError, ProtocolError};

/// How long a closing WebSocket gets to deliver its last frames and see
/// the peer hang up.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// One session's task and everything it holds.
pub(crate) struct Session<A, C> {
    io: Arc<Inner<A, C>>,
    engine: Arc<Engine>,
    /// The WebSocket the client speaks, if it does.
    ws: Option<WsSocket>,
    /// The WebSocket of an upgrade under way (boxed: most sessions never
    /// have one, and an idle session's task should stay small).
    probe: Option<Box<WsSocket>>,
    /// The Socket.IO socket, once the client connected to `/`.
    socket: Option<SocketRef<C>>,
    /// The next ping, or the end of the wait for a pong.
    heartbeat: Pin<Box<Sleep>>,
    awaiting_pong: bool,
    opened: Instant,
    /// The way out was cut off while a handler ran.
    cutoff: Option<Cutoff>,
    /// A handler panicked.
    failed: bool,
}

/// Something that woke the task up.
enum Event {
    Cutoff(Cutoff),
    Delivery(Delivery),
    Ws(Read),
    Probe(Read),
    Heartbeat,
}

/// One read from a WebSocket, its error already turned into a reason so
/// that no large error value lives in the task.
enum Read {
    Message(Message),
    Ended(Reason),
}

impl<A: Send + Sync + 'static, C: Send + Sync + 'static> Session<A, C> {
    /// The session of `engine`; `ws` when the client connected over
    /// WebSocket directly.
    pub(crate) fn new(io: Arc<Inner<A, C>>, engine: Arc<Engine>, ws: Option<WsSocket>) -> Self {
        let ping_interval = io.config.ping_interval;
        Session {
            io,
            engine,
            ws,
            probe: None,
            socket: None,
            heartbeat: Box::pin(tokio::time::sleep(ping_interval)),
            awaiting_pong: false,
            opened: Instant::now(),
            cutoff: None,
            failed: false,
        }
    }

    /// Serves the session until it ends, then lets the app and the
    /// client know.
    pub(crate) async fn run(mut self) {
        let _ended = Ended {
            io: self.io.clone(),
            engine: self.engine.clone(),
        };
        let reason = loop {
            if let Some(cutoff) = self.cutoff.take() {
                break cutoff_reason(cutoff);
            }
            if self.failed {
                break Reason::HandlerFailed;
            }
            let engine = self.engine.clone();
            let event = tokio::select! {
                biased;
                cutoff = poll_fn(|cx| engine.link.poll_cutoff(cx)) => Event::Cutoff(cutoff),
                delivery = poll_fn(|cx| engine.poll_delivery(cx)) => Event::Delivery(delivery),
                read = poll_fn(|cx| poll_ws(self.ws.as_mut(), cx)) => Event::Ws(read),
                read = poll_fn(|cx| poll_probe(self.probe.as_deref_mut(), cx)) => Event::Probe(read),
                () = self.heartbeat.as_mut() => Event::Heartbeat,
            };
            if let ControlFlow::Break(reason) = self.handle(event).await {
                break reason;
            }
        };
        // Boxed, as the rarely taken paths below, so that they take no
        // room in every idle session's task.
        Box::pin(self.finish(reason)).await;
    }

    async fn handle(&mut self, event: Event) -> ControlFlow<Reason> {
        match event {
            Event::Cutoff(cutoff) => ControlFlow::Break(cutoff_reason(cutoff)),
            // Boxed: a WebSocket session never takes this path.
            Event::Delivery(Delivery::Payload(payload)) => Box::pin(self.on_payload(payload)).await,
            Event::Delivery(Delivery::Upgrade(ws)) => {
                self.probe = Some(ws);
                ControlFlow::Continue(())
            }
            Event::Delivery(Delivery::Close(reason)) => ControlFlow::Break(reason),
            Event::Ws(Read::Message(Message::Text(text))) => self.on_packet(&text).await,
            // A binary frame is an attachment, refused with its packet;
            // tungstenite answers pings and closes itself.
            Event::Ws(Read::Message(_)) => ControlFlow::Continue(()),
            Event::Ws(Read::Ended(reason)) => ControlFlow::Break(reason),
            Event::Probe(read) => {
                self.on_probe(read);
                ControlFlow::Continue(())
            }
            Event::Heartbeat => self.on_heartbeat(),
        }
    }

    /// A long-polling payload, packet by packet.
    async fn on_payload(&mut self, payload: String) -> ControlFlow<Reason> {
        let mut flow = ControlFlow::Continue(());
        for record in eio_packet::payload_records(&payload) {
            flow = self.on_packet(record).await;
            if flow.is_break() || self.failed || self.cutoff.is_some() {
                break;
            }
        }
        self.engine.handled();
        flow
    }

    /// One Engine.IO packet on the session's transport.
    async fn on_packet(&mut self, text: &str) -> ControlFlow<Reason> {
        match eio_packet::decode(text) {
            Err(error) => {
                tracing::debug!(%error, "an Engine.IO packet that does not decode");
                ControlFlow::Break(Reason::TransportError)
            }
            Ok(Incoming::Close) => ControlFlow::Break(Reason::TransportClose),
            Ok(Incoming::Pong) => {
                if self.awaiting_pong {
                    self.awaiting_pong = false;
                    let next_ping = Instant::now() + self.io.config.ping_interval;
                    self.heartbeat.as_mut().reset(next_ping);
                }
                ControlFlow::Continue(())
            }
            Ok(Incoming::Message(message)) => self.on_message(message).await,
            // Pings come from the server in v4; probes and the upgrade on
            // the probed WebSocket; attachments are refused with their
            // packet.
            Ok(Incoming::Ping(_) | Incoming::Upgrade | Incoming::Noop | Incoming::Binary) => {
                ControlFlow::Continue(())
            }
        }
    }

    /// A frame on the WebSocket of an upgrade: `2probe`, answered, then
    /// `5`, which moves the session over. Anything else drops the probe,
    /// and the client goes on polling.
    fn on_probe(&mut self, read: Read) {
        let Some(probe) = &self.probe else {
            return;
        };
        match read {
            Read::Message(Message::Text(text)) if text.as_str() == "2probe" => {
                probe
                    .outbox()
                    .send(fanout::frame::text(outgoing::PROBE_ANSWER), true);
                self.engine.link.start_upgrade();
            }
            Read::Message(Message::Text(text)) if text.as_str() == "5" => {
                if let Some(ws) = self.probe.take() {
                    self.engine.link.switch_to(ws.outbox().clone());
                    self.ws = Some(*ws);
                }
            }
            Read::Message(Message::Ping(_) | Message::Pong(_)) => {}
            _ => {
                tracing::debug!("an upgrade probe failed");
                self.probe = None;
            }
        }
    }

    /// One Socket.IO packet.
    async fn on_message(&mut self, text: &str) -> ControlFlow<Reason> {
        let packet = match sio_packet::decode(text) {
            Ok(packet) => packet,
            Err(error) => {
                tracing::debug!(%error, "a Socket.IO packet that does not decode");
                return ControlFlow::Break(Reason::TransportError);
            }
        };
        let Some(socket) = self.socket.clone() else {
            if let Packet::Connect { namespace, auth } = packet {
                Box::pin(self.on_connect(namespace, auth)).await;
            }
            // Anything else before the connect is ignored, as socket.io
            // does.
            return ControlFlow::Continue(());
        };
        match packet {
            Packet::Event {
                namespace: "/",
                name,
                args,
                ack,
            } => {
                let cx = Cx {
                    app: self.io.app.clone(),
                    socket,
                    ack: Ack::new(self.engine.clone(), ack),
                };
                if let Some(handler) = self.io.handlers.event(&name, cx, args.first().copied()) {
                    self.drive(handler).await;
                }
                ControlFlow::Continue(())
            }
            Packet::Binary {
                namespace: "/",
                ack,
                ..
            } => {
                self.io
                    .handlers
                    .refuse_binary(Ack::new(self.engine.clone(), ack));
                ControlFlow::Continue(())
            }
            Packet::Disconnect { namespace: "/" } => ControlFlow::Break(Reason::ClientDisconnect),
            // A second connect, answers to acks the server never asked
            // for, other namespaces: ignored.
            _ => ControlFlow::Continue(()),
        }
    }

    /// A connect: to `/` only, with an object or nothing as auth, and
    /// accepted by the app's connect handler; then the app's
    /// connected handler.
    async fn on_connect(&mut self, namespace: &str, auth: Option<&RawValue>) {
        if namespace != "/" {
            self.send(&encode::connect_error(namespace, "Invalid namespace", None));
            return;
        }
        let auth = match auth.map(|auth| serde_json::from_str::<Value>(auth.get())) {
            None => Value::Null,
            Some(Ok(auth @ Value::Object(_))) => auth,
            Some(_) => {
                let refusal = "the auth payload must be an object";
                self.send(&encode::connect_error(namespace, refusal, None));
                return;
            }
        };
        let (auth, resume) = match self.io.config.recovery {
            true => split_resume(auth),
            false => (auth, None),
        };
        let request = Connect {
            app: self.io.app.clone(),
            auth,
            resume,
        };
        let connecting = self.io.handlers.connect(request);
        let accepted = match self.drive(connecting).await {
            None => return,
            Some(Ok(accepted)) => accepted,
            Some(Err(refusal)) => {
                let data = refusal.data.as_ref();
                self.send(&encode::connect_error(namespace, &refusal.message, data));
                return;
            }
        };
        let (id, pid) = match accepted.recovered {
            Some((id, pid)) => (id, Some(pid)),
            None => (
                crate::server::new_id(),
                self.io.config.recovery.then(crate::server::new_id),
            ),
        };
        self.send(&encode::connected(&id, pid.as_deref()));
        let socket = Arc::new(Socket::new(self.engine.clone(), id, pid, accepted.data));
        self.engine.connected.store(true, Ordering::Relaxed);
        self.socket = Some(socket.clone());
        if let Some(connected) = self.io.handlers.connected(self.io.app.clone(), socket) {
            self.drive(connected).await;
        }
    }

    /// Runs a handler to its end while the way out keeps being written;
    /// `None` if it panicked, which ends the session (the app's
    /// disconnect handler still runs).
    async fn drive<T>(&mut self, handler: impl Future<Output = T>) -> Option<T> {
        let link = &self.engine.link;
        let cutoff = &mut self.cutoff;
        let mut handler = std::pin::pin!(AssertUnwindSafe(handler).catch_unwind());
        let outcome = poll_fn(|cx| {
            if cutoff.is_none()
                && let Poll::Ready(cut) = link.poll_cutoff(cx)
            {
                *cutoff = Some(cut);
            }
            handler.as_mut().poll(cx)
        })
        .await;
        match outcome {
            Ok(output) => Some(output),
            Err(_) => {
                tracing::error!(sid = %self.engine.sid, "a handler panicked: the session ends");
                self.failed = true;
                None
            }
        }
    }

    /// Pings when due; ends the session when the pong, or the connect,
    /// is late.
    fn on_heartbeat(&mut self) -> ControlFlow<Reason> {
        if self.awaiting_pong {
            return ControlFlow::Break(Reason::PingTimeout);
        }
        if self.socket.is_none() && self.opened.elapsed() >= self.io.config.connect_timeout {
            return ControlFlow::Break(Reason::ConnectTimeout);
        }
        self.send(outgoing::PING);
        self.awaiting_pong = true;
        let deadline = Instant::now() + self.io.config.ping_timeout;
        self.heartbeat.as_mut().reset(deadline);
        ControlFlow::Continue(())
    }

    fn send(&self, packet: &[u8]) {
        self.engine.link.send(&Frame::new(packet), true);
    }

    /// Lets the app know, then closes the transport as politely as the
    /// peer allows.
    async fn finish(mut self, reason: Reason) {
        tracing::debug!(sid = %self.engine.sid, ?reason, "session ends");
        self.engine.end();
        if let Some(socket) = self.socket.take()
            && let Some(disconnected) =
                self.io
                    .handlers
                    .disconnect(self.io.app.clone(), socket, reason)
        {
            disconnected.await;
        }
        self.probe = None;
        let Some(ws) = self.ws.take() else {
            // A long-polling client gets its last packets (a disconnect)
            // with its next GET, as socket.io does; then its id is gone.
            let fetched = poll_fn(|cx| self.engine.link.poll_fetched(cx));
            let _ = tokio::time::timeout(CLOSE_TIMEOUT, fetched).await;
            self.io.forget(&self.engine.sid);
            return;
        };
        self.io.forget(&self.engine.sid);
        drop(ws);
        let Some(outbox) = self.engine.link.detach() else {
            return;
        };
        if let Some((code, text)) = close_frame(reason) {
            outbox.send_last(fanout::frame::close(code, text));
        }
        // Best effort, bounded: a peer that does not take the last frames
        // is dropped all the same.
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, drain(&outbox)).await;
        // Nobody else holds the outbox once the link let it go.
        if let Ok(outbox) = Arc::try_unwrap(outbox) {
            let mut stream = outbox.into_stream();
            ops::close::linger(&mut stream, CLOSE_TIMEOUT).await;
        }
    }
}

/// Ends the session however its task ends, a handler's panic included:
/// its id is forgotten, and requests waiting on it are answered.
struct Ended<A, C> {
    io: Arc<Inner<A, C>>,
    engine: Arc<Engine>,
}

impl<A, C> Drop for Ended<A, C> {
    fn drop(&mut self) {
        self.engine.end();
        self.io.forget(&self.engine.sid);
    }
}

/// The close frame a WebSocket gets, unless the peer is gone already.
fn close_frame(reason: Reason) -> Option<(u16, &'static str)> {
    match reason {
        Reason::TransportClose => None,
        Reason::TooSlow => Some((1013, "too slow: fell too far behind")),
        Reason::TooLarge => Some((1009, "message larger than maxPayload")),
        Reason::TransportError => Some((1002, "protocol violation")),
        Reason::PingTimeout => Some((1000, "ping timeout")),
        Reason::ConnectTimeout => Some((1000, "connect timeout")),
        Reason::ClientDisconnect | Reason::ServerDisconnect => Some((1000, "")),
        Reason::HandlerFailed => Some((1011, "server error")),
        Reason::CutOff => Some((1013, "cut off: reconnect and resume")),
        Reason::ServerShutdown => Some((1001, "server shutting down")),
    }
}

/// The recovery fields of a connect's auth payload (both strings, as
/// socket.io reads them), taken out of it.
fn split_resume(mut auth: Value) -> (Value, Option<Resume>) {
    let Some(fields) = auth.as_object_mut() else {
        return (auth, None);
    };
    let pid = fields.remove("pid");
    let offset = fields.remove("offset");
    let resume = match (pid, offset) {
        (Some(Value::String(pid)), Some(Value::String(offset))) => Some(Resume { pid, offset }),
        _ => None,
    };
    (auth, resume)
}

fn cutoff_reason(cutoff: Cutoff) -> Reason {
    match cutoff {
        Cutoff::TooSlow => Reason::TooSlow,
        Cutoff::Broken => Reason::TransportClose,
    }
}

/// The next read from `ws`; never while there is none.
fn poll_ws(ws: Option<&mut WsSocket>, cx: &mut Context<'_>) -> Poll<Read> {
    let Some(ws) = ws else {
        return Poll::Pending;
    };
    ws.poll_read(cx).map(|read| match read {
        Some(Ok(message)) => Read::Message(message),
        Some(Err(WsError::Capacity(_))) => Read::Ended(Reason::TooLarge),
        // A peer that vanished without a close frame is gone, not rude.
        Some(Err(WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake))) => {
            Read::Ended(Reason::TransportClose)
        }
        Some(Err(WsError::Protocol(error))) => {
            tracing::debug!(%error, "WebSocket protocol violation");
            Read::Ended(Reason::TransportError)
        }
        Some(Err(_)) | None => Read::Ended(Reason::TransportClose),
    })
}

/// The next read from the WebSocket being probed, whose outbox (its
/// `3probe`) this writes too; never while there is none.
fn poll_probe(probe: Option<&mut WsSocket>, cx: &mut Context<'_>) -> Poll<Read> {
    let Some(probe) = probe else {
        return Poll::Pending;
    };
    loop {
        match probe.outbox().poll_next(cx) {
            Poll::Ready(Wake::Flushed) => {}
            Poll::Ready(Wake::Ended(_)) => return Poll::Ready(Read::Ended(Reason::TransportClose)),
            Poll::Pending => break,
        }
    }
    poll_ws(Some(probe), cx)
}

/// Writes out what `outbox` still holds, until it is empty or broken.
async fn drain(outbox: &fanout::Outbox) {
    loop {
        match poll_fn(|cx| outbox.poll_next(cx)).await {
            Wake::Flushed | Wake::Ended(fanout::Ending::Broken) => return,
            Wake::Ended(_) => {}
        }
    }
}
