//! The app's side of the runtime: a table of small typed async functions,
//! one per event, plus one for connects and one for disconnects.
//!
//! ```text
//! let handlers = Handlers::new(on_connect)
//!     .on("join", on_join)          // async fn(Cx<App, Session>, JoinRequest)
//!     .on("message", on_message)
//!     .on_disconnect(on_disconnect);
//! ```
//!
//! An event's first argument is deserialized into the handler's type; a
//! client whose data does not fit, who sends an unknown event, or binary
//! attachments, is answered with [`Handlers::refusal`]'s payload (when it
//! asked for an answer) and the handler is not called.

use crate::engine::Reason;
use crate::socket::{Ack, SocketRef};
use futures::future::BoxFuture;
use serde::de::DeserializeOwned;
use serde_json::Value;
use serde_json::value::RawValue;
use std::future::Future;
use std::sync::Arc;

/// What an event handler gets besides the event's data.
pub struct Cx<A, C> {
    /// The app's shared state.
    pub app: Arc<A>,
    /// The socket the event came from.
    pub socket: SocketRef<C>,
    /// The answer the client may wait for.
    pub ack: Ack,
}

/// What a connect handler gets.
pub struct Connect<A> {
    /// The app's shared state.
    pub app: Arc<A>,
    /// The client's auth payload (an object), `Null` without one; without
    /// the recovery fields, which are in `resume`.
    pub auth: Value,
    /// What a client that was connected before hands back to recover its
    /// socket (with [`crate::Config::recovery`]).
    pub resume: Option<Resume>,
}

/// A reconnecting client's claim on its former socket: socket.io's
/// connection state recovery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resume {
    /// The private id its former socket was given in its connect reply.
    pub pid: String,
    /// The offset of the last event it received (the last argument of
    /// every event the app sends with [`crate::Frame::event_with_offset`]).
    pub offset: String,
}

/// A socket the connect handler lets in.
pub struct Accepted<C> {
    pub(crate) data: C,
    /// The former socket's id and pid, when the app recovered it.
    pub(crate) recovered: Option<(Box<str>, Box<str>)>,
}

impl<C> Accepted<C> {
    /// A new socket with the app's `data`.
    pub fn new(data: C) -> Accepted<C> {
        Accepted {
            data,
            recovered: None,
        }
    }

    /// The socket that had `id` and `pid` before its connection dropped,
    /// back with `data`: the client learns it was recovered.
    pub fn recovered(data: C, id: &str, pid: &str) -> Accepted<C> {
        Accepted {
            data,
            recovered: Some((id.into(), pid.into())),
        }
    }
}

/// A refused connect, as the client's `connect_error` carries it.
#[derive(Debug, Clone)]
pub struct Refusal {
    /// The error's `message`.
    pub message: String,
    /// The error's `data`, for the client's code to look at.
    pub data: Option<Value>,
}

impl From<&str> for Refusal {
    fn from(message: &str) -> Refusal {
        Refusal {
            message: message.to_owned(),
            data: None,
        }
    }
}

type ConnectFn<A, C> =
    Box<dyn Fn(Connect<A>) -> BoxFuture<'static, Result<Accepted<C>, Refusal>> + Send + Sync>;
type ConnectedFn<A, C> = Box<dyn Fn(Arc<A>, SocketRef<C>) -> BoxFuture<'static, ()> + Send + Sync>;
type EventFn<A, C> =
    Box<dyn Fn(Cx<A, C>, Option<&RawValue>) -> BoxFuture<'static, ()> + Send + Sync>;
type DisconnectFn<A, C> =
    Box<dyn Fn(Arc<A>, SocketRef<C>, Reason) -> BoxFuture<'static, ()> + Send + Sync>;

/// The app's handlers, for sockets whose data is `C`, in an app `A`.
pub struct Handlers<A, C> {
    connect: ConnectFn<A, C>,
    connected: Option<ConnectedFn<A, C>>,
    /// A list, not a map: an app has a handful of events.
    events: Vec<(&'static str, EventFn<A, C>)>,
    disconnect: Option<DisconnectFn<A, C>>,
    refusal: fn(&str) -> Value,
}

impl<A: Send + Sync + 'static, C: Send + Sync + 'static> Handlers<A, C> {
    /// A table whose connect handler makes each socket's data, or refuses
    /// the socket with what the client gets as `connect_error`.
    pub fn new<F, Fut>(connect: F) -> Handlers<A, C>
    where
        F: Fn(Connect<A>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Accepted<C>, Refusal>> + Send + 'static,
    {
        Handlers {
            connect: Box::new(move |request| Box::pin(connect(request))),
            connected: None,
            events: Vec::new(),
            disconnect: None,
            refusal: default_refusal,
        }
    }

    /// Handles the event `name`, whose first argument is a `T`.
    pub fn on<T, F, Fut>(mut self, name: &'static str, handler: F) -> Self
    where
        T: DeserializeOwned + Send + 'static,
        F: Fn(Cx<A, C>, T) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let refusal = self.refusal;
        let erased: EventFn<A, C> = Box::new(move |cx, data| {
            let data = data.map_or("null", RawValue::get);
            match serde_json::from_str::<T>(data) {
                Ok(data) => Box::pin(handler(cx, data)),
                Err(error) => {
                    cx.ack.send(&refusal(&format!("invalid payload: {error}")));
                    Box::pin(std::future::ready(()))
                }
            }
        });
        self.events.push((name, erased));
        self
    }

    /// Runs once a socket is connected, right after the client was told
    /// (and before its first event is read): what the app sends here
    /// follows the connect reply.
    pub fn on_connected<F, Fut>(mut self, handler: F) -> Self
    where
        F: Fn(Arc<A>, SocketRef<C>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.connected = Some(Box::new(move |app, socket| Box::pin(handler(app, socket))));
        self
    }

    /// Runs when a connected socket's session ends, whatever the reason.
    pub fn on_disconnect<F, Fut>(mut self, handler: F) -> Self
    where
        F: Fn(Arc<A>, SocketRef<C>, Reason) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.disconnect = Some(Box::new(move |app, socket, reason| {
            Box::pin(handler(app, socket, reason))
        }));
        self
    }

    /// The answer to an event the runtime refuses, from its reason; set it
    /// before the events (their data errors use it too). The default is
    /// `{"ok":false,"error":{"code":"bad_request","message":…}}`.
    pub fn refusal(mut self, refusal: fn(&str) -> Value) -> Self {
        self.refusal = refusal;
        self
    }

    pub(crate) fn connect(
        &self,
        request: Connect<A>,
    ) -> BoxFuture<'static, Result<Accepted<C>, Refusal>> {
        (self.connect)(request)
    }

    pub(crate) fn connected(
        &self,
        app: Arc<A>,
        socket: SocketRef<C>,
    ) -> Option<BoxFuture<'static, ()>> {
        self.connected.as_ref().map(|handler| handler(app, socket))
    }

    /// The handler's future for the event `name`, or the refusal sent at
    /// once for an unknown one.
    pub(crate) fn event(
        &self,
        name: &str,
        cx: Cx<A, C>,
        data: Option<&RawValue>,
    ) -> Option<BoxFuture<'static, ()>> {
        match self.events.iter().find(|(known, _)| *known == name) {
            Some((_, handler)) => Some(handler(cx, data)),
            None => {
                cx.ack
                    .send(&(self.refusal)(&format!("unknown event {name:?}")));
                None
            }
        }
    }

    /// Answers an event that came with binary attachments.
    pub(crate) fn refuse_binary(&self, ack: Ack) {
        ack.send(&(self.refusal)(
            "binary attachments are not supported: send JSON",
        ));
    }

    pub(crate) fn disconnect(
        &self,
        app: Arc<A>,
        socket: SocketRef<C>,
        reason: Reason,
    ) -> Option<BoxFuture<'static, ()>> {
        self.disconnect
            .as_ref()
            .map(|handler| handler(app, socket, reason))
    }
}

fn default_refusal(message: &str) -> Value {
    serde_json::json!({"ok": false, "error": {"code": "bad_request", "message": message}})
}
