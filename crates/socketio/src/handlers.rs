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
    /// The client's auth payload (an object), `Null` without one.
    pub auth: Value,
}

type ConnectFn<A, C> =
    Box<dyn Fn(Connect<A>) -> BoxFuture<'static, Result<C, String>> + Send + Sync>;
type EventFn<A, C> =
    Box<dyn Fn(Cx<A, C>, Option<&RawValue>) -> BoxFuture<'static, ()> + Send + Sync>;
type DisconnectFn<A, C> =
    Box<dyn Fn(Arc<A>, SocketRef<C>, Reason) -> BoxFuture<'static, ()> + Send + Sync>;

/// The app's handlers, for sockets whose data is `C`, in an app `A`.
pub struct Handlers<A, C> {
    connect: ConnectFn<A, C>,
    /// A list, not a map: an app has a handful of events.
    events: Vec<(&'static str, EventFn<A, C>)>,
    disconnect: Option<DisconnectFn<A, C>>,
    refusal: fn(&str) -> Value,
}

impl<A: Send + Sync + 'static, C: Send + Sync + 'static> Handlers<A, C> {
    /// A table whose connect handler makes each socket's data, or refuses
    /// the socket with a message the client gets as `connect_error`.
    pub fn new<F, Fut>(connect: F) -> Handlers<A, C>
    where
        F: Fn(Connect<A>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<C, String>> + Send + 'static,
    {
        Handlers {
            connect: Box::new(move |request| Box::pin(connect(request))),
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

    pub(crate) fn connect(&self, request: Connect<A>) -> BoxFuture<'static, Result<C, String>> {
        (self.connect)(request)
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
