//! Prometheus metrics and the `/metrics` and `/healthz` endpoints.
//!
//! Every app registers [`CoreMetrics`] (the series the contract names:
//! connections, messages in and out, errors) and its own series in one
//! `prometheus_client` registry.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde_json::{Map, Value};
use std::sync::{Arc, LazyLock};
use warp::Filter;
use warp::http::StatusCode;

pub use prometheus_client;

/// The `code` label of `errors_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CodeLabel {
    /// A contract error code (`bad_request`, `rate_limited`, ...).
    pub code: String,
}

/// The series every server exports.
#[derive(Clone, Default)]
pub struct CoreMetrics {
    /// Clients connected now (sockets or streams).
    pub connections: Gauge,
    /// Clients accepted since start.
    pub connections_total: Counter,
    /// Frames or events received from clients.
    pub messages_in: Counter,
    /// Frames or events written to clients.
    pub messages_out: Counter,
    /// Errors sent to clients, by contract code.
    pub errors: Family<CodeLabel, Counter>,
    /// Clients cut off for being too slow or abusive.
    pub disconnects_forced: Counter,
}

impl CoreMetrics {
    /// The series, registered in `registry` under their exported names.
    pub fn register(registry: &mut Registry) -> CoreMetrics {
        let metrics = CoreMetrics::default();
        registry.register(
            "connections_open",
            "Clients connected now",
            metrics.connections.clone(),
        );
        registry.register(
            "connections_accepted",
            "Clients accepted since start",
            metrics.connections_total.clone(),
        );
        registry.register(
            "messages_in",
            "Messages received from clients",
            metrics.messages_in.clone(),
        );
        registry.register(
            "messages_out",
            "Messages written to clients",
            metrics.messages_out.clone(),
        );
        registry.register(
            "errors",
            "Errors sent to clients, by code",
            metrics.errors.clone(),
        );
        registry.register(
            "disconnects_forced",
            "Clients disconnected by the server for being slow or abusive",
            metrics.disconnects_forced.clone(),
        );
        metrics
    }

    /// Counts one error sent to a client, by its contract code.
    pub fn count_error(&self, code: protocol::ErrorCode) {
        self.errors
            .get_or_create(&CodeLabel {
                code: code.as_str().to_owned(),
            })
            .inc();
    }
}

/// The `reason` label of `connections_refused_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    /// Why the connection was refused (an admission [`crate::admission::Reason`]).
    pub reason: &'static str,
}

/// Series about the process rather than the app, kept by `ops` itself (the
/// accept loop and the tokio runtime) and appended to every app's
/// `/metrics`. One set per process: servers started side by side in one
/// process (tests) add up.
#[derive(Clone, Default)]
pub struct ProcessMetrics {
    /// Connections answered 503/429 or dropped before any request was
    /// served, by reason (see [`crate::admission`]).
    pub connections_refused: Family<ReasonLabel, Counter>,
    /// TCP connections the accept loop holds now, of every kind.
    pub tcp_connections: Gauge,
    /// Tasks alive in the tokio runtime, read at each scrape: the figure
    /// that shows a task leak after clients have come and gone.
    pub tokio_alive_tasks: Gauge,
}

impl ProcessMetrics {
    /// Counts one refused connection, by reason.
    pub fn count_refusal(&self, reason: &'static str) {
        self.connections_refused
            .get_or_create(&ReasonLabel { reason })
            .inc();
    }
}

struct ProcessSeries {
    metrics: ProcessMetrics,
    registry: Registry,
}

static PROCESS: LazyLock<ProcessSeries> = LazyLock::new(|| {
    let metrics = ProcessMetrics::default();
    let mut registry = Registry::default();
    registry.register(
        "connections_refused",
        "Connections refused before any request was served, by reason",
        metrics.connections_refused.clone(),
    );
    registry.register(
        "tcp_connections",
        "TCP connections held by the accept loop now",
        metrics.tcp_connections.clone(),
    );
    registry.register(
        "tokio_alive_tasks",
        "Tasks alive in the tokio runtime",
        metrics.tokio_alive_tasks.clone(),
    );
    ProcessSeries { metrics, registry }
});

/// The process-wide series.
pub fn process() -> &'static ProcessMetrics {
    &PROCESS.metrics
}

/// The text exposition of the app's `registry` followed by the process
/// series, as one document (a single `# EOF` at the end).
pub fn encode(registry: &Registry) -> Result<String, std::fmt::Error> {
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        let alive = i64::try_from(runtime.metrics().num_alive_tasks()).unwrap_or(i64::MAX);
        PROCESS.metrics.tokio_alive_tasks.set(alive);
    }
    let mut body = String::new();
    prometheus_client::encoding::text::encode_registry(&mut body, registry)?;
    prometheus_client::encoding::text::encode_registry(&mut body, &PROCESS.registry)?;
    prometheus_client::encoding::text::encode_eof(&mut body)?;
    Ok(body)
}

/// What `/healthz` says: whether the instance can serve, and details.
pub struct HealthReport {
    /// Whether a load balancer may send clients here.
    pub serving: bool,
    /// What the app adds to the answer (mode, Redis link, ...).
    pub details: Map<String, Value>,
}

/// Something that knows whether the instance can serve (e.g. its Redis link).
pub trait HealthCheck: Send + Sync + 'static {
    /// The state now.
    fn report(&self) -> HealthReport;
}

/// Always healthy: embedded mode has nothing that can fail independently.
pub struct AlwaysHealthy;

impl HealthCheck for AlwaysHealthy {
    fn report(&self) -> HealthReport {
        HealthReport {
            serving: true,
            details: Map::new(),
        }
    }
}

/// `GET /metrics` and `GET /healthz`.
pub fn routes(
    registry: Arc<Registry>,
    health: Arc<dyn HealthCheck>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = warp::Rejection> + Clone {
    metrics_route(registry).or(healthz_route(health)).unify()
}

/// `GET /metrics`: the app's series in `registry`, then the process's.
pub fn metrics_route(
    registry: Arc<Registry>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = warp::Rejection> + Clone {
    warp::path!("metrics")
        .and(warp::get())
        .map(move || match encode(&registry) {
            Ok(body) => warp::reply::with_header(
                body,
                "content-type",
                "text/plain; version=0.0.4; charset=utf-8",
            )
            .into_response(),
            Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        })
}

/// `GET /healthz`: `200` with `"status":"ok"` while `health` can serve,
/// `503` with `"unavailable"` otherwise, and the details either way.
pub fn healthz_route(
    health: Arc<dyn HealthCheck>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = warp::Rejection> + Clone {
    warp::path!("healthz").and(warp::get()).map(move || {
        let report = health.report();
        let mut body = Map::new();
        body.insert(
            "status".into(),
            Value::from(if report.serving { "ok" } else { "unavailable" }),
        );
        body.extend(report.details);
        let status = if report.serving {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        warp::reply::with_status(warp::reply::json(&body), status).into_response()
    })
}

use warp::Reply;
