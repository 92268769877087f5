//! The state every handler shares, built from the configuration; the task
//! that takes this instance's store events (room events from the bus,
//! room-list changes, evictions, resyncs) to the rooms; and the app as
//! `ops` runs it: the store for the mode (embedded, or Redis through
//! [`crate::cluster`]), the background tasks, and at the end the members
//! retired and the sockets closed. One HTTP server per process; the
//! Socket.IO runtime knows nothing of the other instances, since every
//! room event reaches them through the store's bus.

use crate::clock;
use crate::cluster::liveness::Liveness;
use crate::cluster::{RedisStore, Settings};
use crate::config::Config;
use crate::health::Link;
use crate::metrics::Metrics;
use crate::room::delivery::Delivery;
use crate::room::outgoing::Outgoing;
use crate::room::{Rooms, repair};
use crate::rooms_push::RoomsPush;
use crate::routes;
use crate::session::Session;
use crate::store::memory::MemoryStore;
use crate::store::{Store, StoreEvent};
use anyhow::Result;
use ops::admission::AdmissionConfig;
use ops::origin::OriginPolicy;
use ops::{ServerConfig, Shutdown};
use prometheus_client::registry::Registry;
use socketio::SocketIo;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// How long a stopping instance may take to tell its members' rooms.
const FINISH_TIMEOUT: Duration = Duration::from_secs(2);

/// Pause between two attempts to reach Redis at start.
const REDIS_RETRY: Duration = Duration::from_millis(500);

/// How long a starting instance waits for every shard to answer before it
/// serves the rooms of those that do.
const SHARDS_PATIENCE: Duration = Duration::from_secs(10);

/// What every handler shares: the rooms, the room-list push, the series
/// and the settings the handlers read.
pub(crate) struct App {
    /// The room rules and their delivery.
    pub(crate) rooms: Arc<Rooms>,
    /// The `rooms` push to every socket when the list changes.
    pub(crate) rooms_push: RoomsPush,
    /// The series `/metrics` shows.
    pub(crate) metrics: Metrics,
    /// `MSG_RATE`: events per second one socket may send.
    pub(crate) msg_rate: u32,
    /// `WRITE_DELAY_MS`: the clock's period for busy rooms.
    pub(crate) write_delay: Duration,
    /// `RECOVERY_MS`: how long a dropped socket is held for its client.
    pub(crate) recovery: Duration,
    /// `PRESENCE_GRACE_MS`: how long a dropped socket still counts as
    /// present in its rooms.
    pub(crate) presence_grace: Duration,
    /// Token authentication, when `AUTH_JWT_*` turns it on.
    pub(crate) auth: Option<auth::Verifier>,
}

/// Runs until shutdown: applies store events in order and repairs gaps
/// that lasted `gap_repair_delay`.
async fn run_events(
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
                    let backlog = !events.is_empty();
                    app.rooms.delivery.arrive_with_backlog(event, backlog);
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
    io: SocketIo<App, Session>,
    registry: Arc<Registry>,
    origins: OriginPolicy,
    limits: AdmissionConfig,
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
            &self.io,
            self.registry.clone(),
            ops::metrics::with_auth_flag(self.app.rooms.link.clone(), self.app.auth.is_some()),
            self.origins.clone(),
        );
        ops::server::Server::new(service, self.limits.clone())
            .serve(listener, shutdown)
            .await;
        Ok(())
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
        self.io.shut_down(FINISH_TIMEOUT).await;
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
                    wait_replicas: config.wait_replicas,
                };
                let (store, events) = connect_when_up(settings, &link, &metrics, shutdown).await?;
                let store = Arc::new(store);
                (store.clone(), events, link, Some(store))
            }
        };
    let outgoing = Outgoing::new(config.write_delay, metrics.clone());
    let rooms = Arc::new(Rooms {
        store,
        delivery: Delivery::new(outgoing, metrics.clone()),
        link: link.clone(),
        metrics: metrics.clone(),
        pending_leaves: Default::default(),
        list_max: config.rooms_list_max,
    });
    let app = Arc::new(App {
        rooms,
        rooms_push: RoomsPush::default(),
        metrics,
        msg_rate: config.msg_rate,
        write_delay: config.write_delay,
        recovery: config.recovery,
        presence_grace: config.presence_grace,
        auth: config.auth.clone().map(auth::Verifier::new),
    });
    // Long-polling clients without keep-alive open a connection per
    // request, each naming its session: only new sessions pay the
    // handshake rate.
    let mut limits = config.server.limits.clone();
    limits.session_path = Some(routes::SOCKET_IO_PATH);
    let io = routes::socket_io(&config, app.clone());

    tokio::spawn(run_events(
        app.clone(),
        events,
        config.gap_repair_delay,
        shutdown.clone(),
    ));
    tokio::spawn(clock::run(app.clone(), shutdown.clone()));
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
    let redis_store = redis.clone();
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
    if let Some(store) = &redis_store {
        wait_for_every_shard(store, &app.rooms.link, shutdown).await;
    }
    Ok(Server {
        app,
        io,
        registry: Arc::new(registry),
        origins: OriginPolicy::new(config.server.allowed_origins.clone()),
        limits,
        liveness,
    })
}

/// Connects to Redis, trying again until it answers: an instance started
/// before its Redis, or while it is down, waits (its `/healthz` says
/// `starting`) instead of exiting. A URL that cannot work fails at once.
async fn connect_when_up(
    settings: Settings<'_>,
    link: &Arc<Link>,
    metrics: &Metrics,
    shutdown: &Shutdown,
) -> Result<(RedisStore, mpsc::UnboundedReceiver<StoreEvent>)> {
    redis_link::connect::config(settings.url)?;
    loop {
        let attempt = Settings {
            instance: settings.instance.clone(),
            ..settings
        };
        match RedisStore::connect(attempt, link.clone(), metrics.clone()).await {
            Ok(connected) => return Ok(connected),
            Err(error) => tracing::warn!("cannot reach Redis yet, trying again: {error:#}"),
        }
        tokio::select! {
            () = tokio::time::sleep(REDIS_RETRY) => {}
            () = shutdown.wait() => anyhow::bail!("stopped before Redis answered"),
        }
    }
}

/// Waits until the first heartbeats find every shard serving, so that a
/// load balancer sees the instance ready only once its rooms are; past
/// [`SHARDS_PATIENCE`] it serves the rooms it can, and says `degraded`.
async fn wait_for_every_shard(store: &RedisStore, link: &Link, shutdown: &Shutdown) {
    let give_up = tokio::time::Instant::now() + SHARDS_PATIENCE;
    let ready = || store.shards().all_beaten() && link.is_fully_up();
    while !ready() && tokio::time::Instant::now() < give_up && !shutdown.is_triggered() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    if !link.is_fully_up() {
        tracing::warn!("serving while some Redis shards do not answer");
    }
}

/// A name for this process in the shared state: unique enough across restarts.
fn instance_id() -> String {
    format!("{:016x}", rand::random::<u64>())
}
