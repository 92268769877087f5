//! The HTTP surface of rooms-chat: Socket.IO at `/socket.io` (Engine.IO
//! limits chosen rather than inherited) in front of the warp routes (the
//! page, `/healthz`, `/metrics`), and the origin guard in front of both.

use crate::app::App;
use crate::config::Config;
use crate::hangups::Hangups;
use crate::origin::{Body, OriginGuard};
use ops::HttpService;
use ops::metrics::HealthCheck;
use ops::origin::OriginPolicy;
use prometheus_client::registry::Registry;
use rust_embed::RustEmbed;
use socketioxide::layer::SocketIoLayer;
use socketioxide::{SocketIo, SocketIoBuilder, TransportType};
use std::sync::Arc;
use std::time::Duration;
use tower_layer::Layer;
use warp::Filter;

/// The page, embedded at build time.
#[derive(RustEmbed)]
#[folder = "../../web/rooms-chat"]
struct Assets;

/// Where Socket.IO listens.
pub const SOCKET_IO_PATH: &str = "/socket.io";

/// Small: client frames are small (a longer one takes several reads), and
/// every idle socket keeps this buffer.
const WS_READ_BUFFER: usize = 256;

/// The Socket.IO server with its limits and the app as its state; the
/// handlers are set on the returned [`SocketIo`].
pub fn socket_io(config: &Config, app: Arc<App>) -> (SocketIoLayer, SocketIo) {
    engine_limits(SocketIo::builder(), config)
        .with_state(app)
        .build_layer()
}

/// The service the accept loop runs: the origin guard, then Socket.IO,
/// then the warp routes for every other request.
pub fn service(
    socket_io: &SocketIoLayer,
    registry: Arc<Registry>,
    health: Arc<dyn HealthCheck>,
    policy: OriginPolicy,
    hangups: Arc<Hangups>,
) -> impl HttpService<Body> + use<> {
    let routes = ops::metrics::routes(registry, health)
        .or(ops::web::pages::<Assets>())
        .unify();
    let service = socket_io.layer(warp::service(routes));
    OriginGuard::new(service, policy, SOCKET_IO_PATH, hangups)
}

/// The Engine.IO limits, chosen rather than inherited.
fn engine_limits(builder: SocketIoBuilder, config: &Config) -> SocketIoBuilder {
    builder
        .req_path(SOCKET_IO_PATH)
        .transports([TransportType::Polling, TransportType::Websocket])
        .ping_interval(config.ping_interval)
        .ping_timeout(config.ping_timeout)
        // Past this many packets, frames wait in the socket's outlet.
        .max_buffer_size(config.max_buffer)
        .max_payload(config.max_payload)
        .ws_max_message_size(config.max_payload as usize)
        .ws_max_frame_size(config.max_payload as usize)
        .ws_read_buffer_size(WS_READ_BUFFER)
        .connect_timeout(Duration::from_secs(10))
}
