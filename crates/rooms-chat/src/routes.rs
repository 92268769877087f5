//! The HTTP surface of rooms-chat: our Socket.IO runtime at `/socket.io`
//! (its limits chosen from the configuration) in front of the warp routes
//! (the page, `/healthz`, `/metrics`), and the origin guard in front of both.

use crate::app::App;
use crate::config::Config;
use crate::handlers;
use crate::origin::{Body, OriginGuard};
use crate::session::Session;
use ops::HttpService;
use ops::metrics::HealthCheck;
use ops::origin::OriginPolicy;
use prometheus_client::registry::Registry;
use rust_embed::RustEmbed;
use socketio::{SocketIo, WithSocketIo};
use std::sync::Arc;
use std::time::Duration;
use warp::Filter;

/// The page, embedded at build time.
#[derive(RustEmbed)]
#[folder = "../../web/rooms-chat"]
struct Assets;

/// Where Socket.IO listens.
pub(crate) const SOCKET_IO_PATH: &str = "/socket.io";

/// How long a client may stay connected to Engine.IO without connecting
/// to `/`.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The Socket.IO runtime with its limits, the app and its handlers.
pub(crate) fn socket_io(config: &Config, app: Arc<App>) -> SocketIo<App, Session> {
    let runtime = socketio::Config {
        path: format!("{SOCKET_IO_PATH}/"),
        ping_interval: config.ping_interval,
        ping_timeout: config.ping_timeout,
        max_payload: config.max_payload,
        max_queued: config.max_buffer,
        max_queued_bytes: config.max_queued_bytes,
        connect_timeout: CONNECT_TIMEOUT,
        recovery: !config.recovery.is_zero(),
    };
    SocketIo::new(runtime, app, handlers::table())
}

/// The service the accept loop runs: the origin guard, then Socket.IO,
/// then the warp routes for every other request.
pub(crate) fn service(
    io: &SocketIo<App, Session>,
    registry: Arc<Registry>,
    health: Arc<dyn HealthCheck>,
    policy: OriginPolicy,
) -> impl HttpService<Body> + use<> {
    let routes = ops::metrics::routes(registry, health)
        .or(ops::web::pages::<Assets>())
        .unify();
    let service = WithSocketIo::new(warp::service(routes), io.clone());
    OriginGuard::new(service, policy, SOCKET_IO_PATH)
}
