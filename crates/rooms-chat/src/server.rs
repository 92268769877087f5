//! Puts the app together: the store for the mode, the Socket.IO server with
//! deliberate Engine.IO limits on top of the warp routes (page, `/healthz`,
//! `/metrics`), the origin guard, and the background tasks. One HTTP server
//! per process; Socket.IO runs on its local adapter in both modes, since
//! every room event reaches the other instances through the store's bus.

use crate::app::{self, App};
use crate::cluster::liveness::Liveness;
use crate::cluster::{RedisStore, Settings};
use crate::config::Config;
use crate::handlers;
use crate::hangups::Hangups;
use crate::health::Link;
use crate::metrics::Metrics;
use crate::origin::OriginGuard;
use crate::room::Rooms;
use crate::room::delivery::Delivery;
use crate::room::outlet::Writer;
use crate::rooms_push::RoomsPush;
use crate::store::memory::MemoryStore;
use crate::store::{Store, StoreEvent};
use anyhow::Result;
use ops::Shutdown;
use ops::origin::OriginPolicy;
use prometheus_client::registry::Registry;
use rust_embed::RustEmbed;
use socketioxide::handler::ConnectHandler;
use socketioxide::{SocketIo, SocketIoBuilder, TransportType};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use warp::Filter;

/// The page, embedded at build time.
#[derive(RustEmbed)]
#[folder = "../../web/rooms-chat"]
struct Assets;

/// Where Socket.IO listens.
const SOCKET_IO_PATH: &str = "/socket.io";

/// Small: client frames are small (a longer one takes several reads), and
/// every idle socket keeps this buffer.
const WS_READ_BUFFER: usize = 256;

/// How long a stopping instance may take to tell its members' rooms.
const FINISH_TIMEOUT: Duration = Duration::from_secs(2);

/// Serves until `shutdown`, in embedded or cluster mode as configured.
pub async fn run(config: Config, listener: TcpListener, shutdown: Shutdown) -> Result<()> {
    let mut registry = Registry::default();
    let metrics = Metrics::register(&mut registry);
    let (store, events, link, redis): (Arc<dyn Store>, _, _, _) =
        match config.server.redis_url.clone() {
            None => {
                let (store, events) = MemoryStore::new(config.history_keep);
                let link = Arc::new(Link::embedded(metrics.clone()));
                (Arc::new(store), events, link, None)
            }
            Some(url) => {
                let instance = instance_id();
                tracing::info!(instance, "cluster mode");
                let link = Arc::new(Link::cluster(instance.clone(), metrics.clone()));
                let settings = Settings {
                    url: &url,
                    instance,
                    history_keep: config.history_keep,
                    pubsub_capacity: config.pubsub_capacity,
                    timeout: config.redis_timeout,
                };
                let (store, events) =
                    RedisStore::connect(settings, link.clone(), metrics.clone()).await?;
                let store = Arc::new(store);
                (store.clone(), events, link, Some(store))
            }
        };
    serve(
        config, registry, metrics, store, events, link, redis, listener, shutdown,
    )
    .await
}

#[allow(clippy::too_many_arguments)]
async fn serve(
    config: Config,
    registry: Registry,
    metrics: Metrics,
    store: Arc<dyn Store>,
    events: mpsc::UnboundedReceiver<StoreEvent>,
    link: Arc<Link>,
    redis: Option<Arc<RedisStore>>,
    listener: TcpListener,
    shutdown: Shutdown,
) -> Result<()> {
    // Leaves room in every socket's queue for acks and what is in flight.
    let writer = Arc::new(Writer::new(
        config.write_delay,
        config.max_buffer / 4,
        metrics.clone(),
    ));
    let rooms = Arc::new(Rooms {
        store,
        delivery: Delivery::new(writer.clone(), metrics.clone()),
        link: link.clone(),
        metrics: metrics.clone(),
        pending_leaves: Default::default(),
    });
    let hangups = Arc::new(Hangups::default());
    let app = Arc::new(App {
        rooms,
        rooms_push: RoomsPush::default(),
        hangups: hangups.clone(),
        metrics,
        msg_rate: config.msg_rate,
    });
    let routes = ops::metrics::routes(Arc::new(registry), link.clone())
        .or(ops::web::pages::<Assets>())
        .unify();
    let (socket_io, io) = engine_limits(SocketIo::builder(), &config)
        .with_state(app.clone())
        .build_with_inner_svc(warp::service(routes));
    io.ns("/", handlers::on_connect.with(handlers::set_up));

    tokio::spawn(app::run_events(
        app.clone(),
        events,
        config.gap_repair_delay,
        shutdown.clone(),
    ));
    {
        let shutdown = shutdown.clone();
        tokio::spawn(async move { writer.run(shutdown).await });
    }
    {
        let app = app.clone();
        let io = io.clone();
        let delay = config.rooms_push_delay;
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let push = &app.rooms_push;
            push.run(app.clone(), io, delay, shutdown).await
        });
    }
    let liveness = redis.map(|store| {
        let liveness = Liveness {
            store,
            app: app.clone(),
            link,
            heartbeat: config.heartbeat,
            ttl: config.instance_ttl,
        };
        tokio::spawn(liveness.run(shutdown.clone()))
    });

    let policy = OriginPolicy::new(config.server.allowed_origins.clone());
    let service = OriginGuard::new(socket_io, policy, SOCKET_IO_PATH, hangups);
    tracing::info!(addr = %listener.local_addr()?, "rooms-chat listening");
    let served = ops::server::serve(listener, service, shutdown).await;
    if let Some(liveness) = liveness {
        // Cluster mode: the members leave (telling the other instances)
        // before the sockets go away. A timeout leaves it to the others,
        // who notice the silence.
        if tokio::time::timeout(FINISH_TIMEOUT, liveness)
            .await
            .is_err()
        {
            tracing::warn!("retiring took too long");
        }
    }
    // Closing the sockets lets clients reconnect elsewhere at once.
    io.close().await;
    served
}

/// The Engine.IO limits, chosen rather than inherited.
fn engine_limits(builder: SocketIoBuilder, config: &Config) -> SocketIoBuilder {
    builder
        .req_path(SOCKET_IO_PATH)
        .transports([TransportType::Polling, TransportType::Websocket])
        .ping_interval(config.ping_interval)
        .ping_timeout(config.ping_timeout)
        // A slow socket is cut off when this many packets wait for it.
        .max_buffer_size(config.max_buffer)
        .max_payload(config.max_payload)
        .ws_max_message_size(config.max_payload as usize)
        .ws_max_frame_size(config.max_payload as usize)
        .ws_read_buffer_size(WS_READ_BUFFER)
        .connect_timeout(Duration::from_secs(10))
}

/// A name for this process in the shared state: unique enough across restarts.
fn instance_id() -> String {
    format!("{:016x}", rand::random::<u64>())
}
