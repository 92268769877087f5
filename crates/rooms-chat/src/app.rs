//! The state every handler shares, built from the configuration; the task
//! that takes this instance's store events (room events from the bus,
//! room-list changes, evictions, resyncs) to the rooms; and the app as
//! `ops` runs it: the store for the mode (embedded, or Redis through
//! [`crate::cluster`]), the background tasks, and at the end the members
//! retired and the sockets closed. One HTTP server per process; Socket.IO
//! runs on its local adapter in both modes, since every room event reaches
//! the other instances through the store's bus.

use crate::cluster::liveness::Liveness;
use crate::cluster::{RedisStore, Settings};
use crate::config::Config;
use crate::handlers;
use crate::hangups::Hangups;
use crate::health::Link;
use crate::metrics::Metrics;
use crate::recipient::Member;
use crate::room::delivery::Delivery;
use crate::room::outlet::Writer;
use crate::room::{Rooms, repair};
use crate::rooms_push::RoomsPush;
use crate::routes;
use crate::store::memory::MemoryStore;
use crate::store::{Store, StoreEvent};
use anyhow::Result;
use ops::admission::{Admission, AdmissionConfig};
use ops::origin::OriginPolicy;
use ops::{ServerConfig, Shutdown};
use prometheus_client::registry::Registry;
use socketioxide::SocketIo;
use socketioxide::extract::SocketRef;
use socketioxide::handler::ConnectHandler;
use socketioxide::layer::SocketIoLayer;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// How long a stopping instance may take to tell its members' rooms.
const FINISH_TIMEOUT: Duration = Duration::from_secs(2);

pub struct App {
    pub rooms: Arc<Rooms>,
    pub rooms_push: RoomsPush,
    pub hangups: Arc<Hangups>,
    pub metrics: Metrics,
    pub msg_rate: u32,
}

impl App {
    /// The socket as the room delivers to it.
    pub fn member(&self, socket: &SocketRef) -> Member {
        Member {
            socket: socket.clone(),
            hangups: self.hangups.clone(),
        }
    }
}

/// Runs until shutdown: applies store events in order and repairs gaps
/// that lasted `gap_repair_delay`.
pub async fn run_events(
    app: Arc<App>,
    mut events: mpsc::UnboundedReceiver<StoreEvent>,
    gap_repair_delay: Duration,
    shutdown: Shutdown,
) {
    let mut ticker = tokio::time::interval(gap_repair_delay / 2);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            event = events.recv() => match event {
                Some(StoreEvent::Room(event)) => {
                    app.rooms.delivery.arrive(event);
                }
                Some(StoreEvent::RoomsChanged) => app.rooms_push.changed(),
                Some(StoreEvent::Evicted { room, sid }) => app.rooms.evict(&room, &sid),
                Some(StoreEvent::Resync) => {
                    // Off this task, so live events keep flowing meanwhile.
                    let app = app.clone();
                    tokio::spawn(async move {
                        let rooms = &app.rooms;
                        repair::resync(&rooms.delivery, rooms.store.as_ref(), &app.metrics).await;
                        app.rooms_push.changed();
                    });
                }
                None => return,
            },
            _ = ticker.tick() => {
                let app = app.clone();
                tokio::spawn(async move {
                    let rooms = &app.rooms;
                    repair::repair_gaps(
                        &rooms.delivery,
                        rooms.store.as_ref(),
                        gap_repair_delay,
                        &app.metrics,
                    )
                    .await;
                });
            }
            _ = shutdown.wait() => return,
        }
    }
}

/// rooms-chat running: the shared state, the Socket.IO server, the series,
/// and in cluster mode the liveness task that retires the members at the end.
pub struct Server {
    app: Arc<App>,
    socket_io: SocketIoLayer,
    io: SocketIo,
    registry: Arc<Registry>,
    origins: OriginPolicy,
    liveness: Option<JoinHandle<()>>,
}

impl ops::launch::Launch for Server {
    const NAME: &'static str = "rooms-chat";
    type Config = Config;

    fn config_from_env() -> Result<Config> {
        Config::from_env()
    }

    fn server_config(config: &Config) -> &ServerConfig {
        &config.server
    }

    async fn start(config: Config, shutdown: &Shutdown) -> Result<Server> {
        start(config, shutdown).await
    }

    async fn serve(&self, listener: TcpListener, shutdown: Shutdown) -> Result<()> {
        let service = routes::service(
            &self.socket_io,
            self.registry.clone(),
            self.app.rooms.link.clone(),
            self.origins.clone(),
            self.app.hangups.clone(),
        );
        // Long-polling clients without keep-alive open a connection per
        // request, each naming its session: only new sessions pay the
        // handshake rate.
        let mut limits = AdmissionConfig::from_env()?;
        limits.session_path = Some(routes::SOCKET_IO_PATH);
        ops::server::serve_with_admission(listener, service, Admission::new(limits), shutdown).await
    }

    async fn drain(self) {
        if let Some(liveness) = self.liveness {
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
        self.io.close().await;
    }
}

/// The store for the mode, the shared state on it, the Socket.IO server
/// and the background tasks.
async fn start(config: Config, shutdown: &Shutdown) -> Result<Server> {
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
    // Leaves room in every socket's queue for acks and what is in flight.
    let writer = Arc::new(Writer::new(
        config.write_delay,
        config.max_buffer / 4,
        config.max_queued_bytes,
        metrics.clone(),
    ));
    let rooms = Arc::new(Rooms {
        store,
        delivery: Delivery::new(writer.clone(), metrics.clone()),
        link: link.clone(),
        metrics: metrics.clone(),
        pending_leaves: Default::default(),
        list_max: config.rooms_list_max,
    });
    let app = Arc::new(App {
        rooms,
        rooms_push: RoomsPush::default(),
        hangups: Arc::new(Hangups::default()),
        metrics,
        msg_rate: config.msg_rate,
    });
    let (socket_io, io) = routes::socket_io(&config, app.clone());
    io.ns("/", handlers::on_connect.with(handlers::set_up));

    tokio::spawn(run_events(
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
    Ok(Server {
        app,
        socket_io,
        io,
        registry: Arc::new(registry),
        origins: OriginPolicy::new(config.server.allowed_origins.clone()),
        liveness,
    })
}

/// A name for this process in the shared state: unique enough across restarts.
fn instance_id() -> String {
    format!("{:016x}", rand::random::<u64>())
}
