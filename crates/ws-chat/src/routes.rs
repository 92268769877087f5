//! The plain HTTP side of ws-chat: `/metrics`, `/healthz` and the embedded
//! page (mounted last, so it only sees what nothing else claimed). `/ws` is
//! not here: `upgrade` answers it before warp sees the request.

use ops::metrics::prometheus_client::registry::Registry;
use ops::metrics::{AlwaysHealthy, HealthCheck};
use std::sync::Arc;
use warp::Filter;

/// The page in `web/ws-chat`, compiled into the binary.
#[derive(rust_embed::RustEmbed)]
#[folder = "../../web/ws-chat"]
struct Page;

pub fn routes(
    registry: Arc<Registry>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = warp::Rejection> + Clone {
    let health: Arc<dyn HealthCheck> = Arc::new(AlwaysHealthy);
    ops::metrics::routes(registry, health)
        .or(ops::web::pages::<Page>())
        .unify()
}
