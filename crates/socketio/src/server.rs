//! The runtime as an app holds it ([`SocketIo`]: the settings, the app's
//! state and handlers, its sessions and their tasks),
//! and as the HTTP server runs it ([`WithSocketIo`], a tower service in
//! front of the app's other routes).

use crate::config::Config;
use crate::engine::{Delivery, Engine, Reason};
use crate::handlers::Handlers;
use crate::link::Frame;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use futures::future::BoxFuture;
use http::{Request, Response};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio_util::task::TaskTracker;
use tower_service::Service;

/// The Engine.IO + Socket.IO server of an app with state `A`, whose
/// sockets carry data `C`. Cheap to clone.
pub struct SocketIo<A, C> {
    pub(crate) inner: Arc<Inner<A, C>>,
}

impl<A, C> Clone for SocketIo<A, C> {
    fn clone(&self) -> Self {
        SocketIo {
            inner: self.inner.clone(),
        }
    }
}

/// What every request and session of the runtime shares.
pub(crate) struct Inner<A, C> {
    pub(crate) config: Config,
    pub(crate) app: Arc<A>,
    pub(crate) handlers: Handlers<A, C>,
    /// Every session by its id: long-polling requests name theirs, and
    /// the shutdown closes them all.
    sessions: Mutex<HashMap<Box<str>, Arc<Engine>>>,
    /// Every session's task, for the shutdown to wait for.
    pub(crate) tasks: TaskTracker,
    /// The server shuts down: no new session.
    pub(crate) closing: AtomicBool,
}

impl<A: Send + Sync + 'static, C: Send + Sync + 'static> SocketIo<A, C> {
    /// The runtime for `app`, answering with `handlers`.
    pub fn new(config: Config, app: Arc<A>, handlers: Handlers<A, C>) -> SocketIo<A, C> {
        SocketIo {
            inner: Arc::new(Inner {
                config,
                app,
                handlers,
                sessions: Mutex::new(HashMap::new()),
                tasks: TaskTracker::new(),
                closing: AtomicBool::new(false),
            }),
        }
    }

    /// The runtime's settings.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// Closes every session (a WebSocket with 1001, a long-polling client
    /// with the close packet: the official client reconnects, to another
    /// instance) after the app's disconnect handlers, and refuses new ones;
    /// waits at most `grace` for the sessions to end.
    pub async fn shut_down(&self, grace: Duration) {
        self.inner.closing.store(true, Ordering::SeqCst);
        let sessions: Vec<Arc<Engine>> = self.inner.sessions.lock().values().cloned().collect();
        for engine in sessions {
            engine.deliver(Delivery::Close(Reason::ServerShutdown));
        }
        self.inner.tasks.close();
        if tokio::time::timeout(grace, self.inner.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                open = self.inner.tasks.len(),
                "sessions still open at shutdown"
            );
        }
    }

    /// Sends `frame` to every connected socket, as a volatile packet (a
    /// snapshot the next one replaces): dropped for a socket that is
    /// behind. How many sockets it was dropped for.
    pub fn send_volatile_to_all(&self, frame: &Frame) -> usize {
        let sessions: Vec<Arc<Engine>> = self.inner.sessions.lock().values().cloned().collect();
        sessions
            .iter()
            .filter(|engine| engine.connected.load(Ordering::Relaxed))
            .filter(|engine| !engine.link.send_volatile(frame))
            .count()
    }

    /// Whether a request for `path` is the runtime's.
    pub fn handles(&self, path: &str) -> bool {
        let own = &self.inner.config.path;
        path == own || path == own.trim_end_matches('/')
    }
}

impl<A, C> Inner<A, C> {
    pub(crate) fn remember(&self, engine: Arc<Engine>) {
        self.sessions.lock().insert(engine.sid.clone(), engine);
    }

    pub(crate) fn find(&self, sid: &str) -> Option<Arc<Engine>> {
        self.sessions.lock().get(sid).cloned()
    }

    pub(crate) fn forget(&self, sid: &str) {
        self.sessions.lock().remove(sid);
    }
}

/// A fresh random id (a session's, a socket's), URL-safe.
pub(crate) fn new_id() -> Box<str> {
    let bytes: [u8; 15] = rand::random();
    URL_SAFE_NO_PAD.encode(bytes).into_boxed_str()
}

/// The runtime's path goes to the runtime, everything else to `routes`.
pub struct WithSocketIo<S, A, C> {
    routes: S,
    io: SocketIo<A, C>,
}

impl<S: Clone, A, C> Clone for WithSocketIo<S, A, C> {
    fn clone(&self) -> Self {
        WithSocketIo {
            routes: self.routes.clone(),
            io: self.io.clone(),
        }
    }
}

impl<S, A, C> WithSocketIo<S, A, C> {
    /// `io` in front of `routes`.
    pub fn new(routes: S, io: SocketIo<A, C>) -> Self {
        WithSocketIo { routes, io }
    }
}

/// Any error of a response body.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The body of every response through [`WithSocketIo`]: the runtime's
/// own, or the routes' behind it.
pub type Body = UnsyncBoxBody<Bytes, BoxError>;

impl<S, B, A, C> Service<Request<Incoming>> for WithSocketIo<S, A, C>
where
    S: Service<Request<Incoming>, Response = Response<B>, Error = Infallible>,
    S::Future: Send + 'static,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
    A: Send + Sync + 'static,
    C: Send + Sync + 'static,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response<Body>, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.routes.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Incoming>) -> Self::Future {
        if self.io.handles(request.uri().path()) {
            let io = self.io.clone();
            Box::pin(async move {
                let response = io.serve(request).await;
                Ok(response.map(|bytes| {
                    Full::new(bytes)
                        .map_err(|never| match never {})
                        .boxed_unsync()
                }))
            })
        } else {
            let routes = self.routes.call(request);
            Box::pin(async move {
                let response = routes.await?;
                Ok(response.map(|body| body.map_err(Into::into).boxed_unsync()))
            })
        }
    }
}
