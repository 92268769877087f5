//! Puts the app together: the state backend for the mode, the Socket.IO
//! server with deliberate Engine.IO limits on top of the warp routes (page,
//! `/healthz`, `/metrics`), the origin guard, and the background tasks.
//! One HTTP server per process.

use crate::app::{self, App};
use crate::config::Config;
use crate::handlers;
use crate::health::Link;
use crate::liveness::Liveness;
use crate::metrics::Metrics;
use crate::origin::OriginGuard;
use crate::resubscribe;
use crate::rooms_push::RoomsPush;
use crate::sequencer::{Batching, Sequencer};
use crate::store::memory::MemoryStore;
use crate::store::redis::{self, RedisStore};
use crate::store::{Store, StoreEvent};
use anyhow::{Context, Result};
use futures::future::BoxFuture;
use ops::Shutdown;
use ops::origin::OriginPolicy;
use prometheus_client::registry::Registry;
use rust_embed::RustEmbed;
use socketioxide::adapter::{Adapter, Emitter, LocalAdapter};
use socketioxide::handler::ConnectHandler;
use socketioxide::{SocketIo, SocketIoBuilder, TransportType};
use socketioxide_redis::{FredAdapter, RedisAdapterConfig, RedisAdapterCtr};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use warp::Filter;

/// The page, embedded at build time.
#[derive(RustEmbed)]
#[folder = "../../web/rooms-chat"]
struct Assets;

/// The Socket.IO adapter of cluster mode: socketioxide-redis over fred.
type Cluster = FredAdapter<Emitter>;

/// Where Socket.IO listens.
const SOCKET_IO_PATH: &str = "/socket.io";

/// Small: client frames are small (a longer one takes several reads), and
/// every idle socket keeps this buffer.
const WS_READ_BUFFER: usize = 256;

/// How long a stopping instance may take to tell its members' rooms.
const FINISH_TIMEOUT: Duration = Duration::from_secs(2);

/// Buffer of the adapter's per-channel queue (notices between instances).
const ADAPTER_STREAM_BUFFER: usize = 16 * 1024;

/// Serves until `shutdown`, in embedded or cluster mode as configured.
pub async fn run(config: Config, listener: TcpListener, shutdown: Shutdown) -> Result<()> {
    let mut registry = Registry::default();
    let metrics = Metrics::register(&mut registry);
    match config.server.redis_url.clone() {
        None => {
            let (store, events) = MemoryStore::new(config.history_keep);
            let link = Arc::new(Link::embedded(metrics.clone()));
            let parts = Parts {
                config,
                registry,
                metrics,
                store: Arc::new(store),
                events,
                link,
            };
            serve(
                parts,
                SocketIo::builder(),
                listener,
                shutdown,
                |io| {
                    let connect = handlers::on_connect::<LocalAdapter>;
                    io.ns("/", connect.with(handlers::set_up::<LocalAdapter>));
                    Box::pin(async { Ok(()) })
                },
                |_, _| None,
            )
            .await
        }
        Some(url) => {
            let instance = instance_id();
            tracing::info!(instance, "cluster mode");
            let (store, events) = RedisStore::connect(
                &url,
                instance.clone(),
                config.history_keep,
                config.pubsub_capacity,
                metrics.clone(),
            )
            .await?;
            let store = Arc::new(store);
            let link = Arc::new(Link::cluster(instance, metrics.clone()));
            // The adapter's own connection: reconnect forever and subscribe
            // again after a reconnect, or cross-instance notices stop for good
            // after the first Redis restart.
            let subscriber = redis::builder(&url, config.pubsub_capacity)?
                .build_subscriber_client()
                .context("build the adapter's Redis client")?;
            let _resubscriber = resubscribe::keep_subscriptions(&subscriber);
            let adapter_subscriber = subscriber.clone();
            let adapter = RedisAdapterCtr::new_with_fred_config(
                subscriber,
                RedisAdapterConfig::new()
                    .with_prefix("rooms-chat-io")
                    .with_stream_buffer(ADAPTER_STREAM_BUFFER),
            )
            .await
            .with_context(|| format!("cannot connect the Socket.IO adapter to {url}"))?;
            let builder = SocketIo::builder().with_adapter::<Cluster>(adapter);
            let parts = Parts {
                config: config.clone(),
                registry,
                metrics,
                store: store.clone(),
                events,
                link: link.clone(),
            };
            serve(
                parts,
                builder,
                listener,
                shutdown.clone(),
                |io| {
                    let connect = handlers::on_connect::<Cluster>;
                    let init = io.ns("/", connect.with(handlers::set_up::<Cluster>));
                    Box::pin(async move {
                        init.await.context("initialize the Socket.IO adapter")?;
                        Ok(())
                    })
                },
                move |app, io| {
                    let liveness = Liveness {
                        store,
                        app,
                        io,
                        link,
                        adapter_subscriber,
                        heartbeat: config.heartbeat,
                        ttl: config.instance_ttl,
                    };
                    Some(tokio::spawn(liveness.run(shutdown)))
                },
            )
            .await
        }
    }
}

/// What both modes hand to [`serve`].
struct Parts {
    config: Config,
    registry: Registry,
    metrics: Metrics,
    store: Arc<dyn Store>,
    events: mpsc::UnboundedReceiver<StoreEvent>,
    link: Arc<Link>,
}

async fn serve<A: Adapter>(
    parts: Parts,
    builder: SocketIoBuilder<A>,
    listener: TcpListener,
    shutdown: Shutdown,
    register: impl FnOnce(&SocketIo<A>) -> BoxFuture<'static, Result<()>>,
    start_extra: impl FnOnce(Arc<App<A>>, SocketIo<A>) -> Option<JoinHandle<()>>,
) -> Result<()> {
    let Parts {
        config,
        registry,
        metrics,
        store,
        events,
        link,
    } = parts;
    let app = Arc::new(App {
        store: store.clone(),
        pending_leaves: Default::default(),
        sequencer: Sequencer::new(
            Batching {
                delay: config.write_delay,
                // Leaves room in every socket's buffer for acks, notices
                // and the previous window, still being written.
                max_frames: config.max_buffer / 4,
            },
            config.gap_repair_delay,
            metrics.clone(),
        ),
        rooms_push: RoomsPush::default(),
        link: link.clone(),
        metrics,
        msg_rate: config.msg_rate,
    });
    let routes = ops::metrics::routes(Arc::new(registry), link)
        .or(ops::web::pages::<Assets>())
        .unify();
    let (socket_io, io) = engine_limits(builder, &config)
        .with_state(app.clone())
        .build_with_inner_svc(warp::service(routes));
    register(&io).await?;

    tokio::spawn(app::run_events(
        app.clone(),
        events,
        config.gap_repair_delay / 2,
        shutdown.clone(),
    ));
    tokio::spawn(app::run_flushes(app.clone(), shutdown.clone()));
    {
        let app = app.clone();
        let io = io.clone();
        let delay = config.rooms_push_delay;
        let shutdown = shutdown.clone();
        tokio::spawn(async move { app.rooms_push.run(io, store, delay, shutdown).await });
    }
    let extra = start_extra(app, io.clone());

    let policy = OriginPolicy::new(config.server.allowed_origins.clone());
    let service = OriginGuard::new(socket_io, policy, SOCKET_IO_PATH);
    tracing::info!(addr = %listener.local_addr()?, "rooms-chat listening");
    let served = ops::server::serve(listener, service, shutdown).await;
    if let Some(extra) = extra {
        // Cluster mode: the members leave (telling the other instances)
        // before the namespace goes away.
        let _ = tokio::time::timeout(FINISH_TIMEOUT, extra).await;
    }
    // Closing the sockets lets clients reconnect elsewhere at once.
    io.close().await;
    served
}

/// The Engine.IO limits, chosen rather than inherited.
fn engine_limits<A: Adapter>(builder: SocketIoBuilder<A>, config: &Config) -> SocketIoBuilder<A> {
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
