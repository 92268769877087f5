//! The plain HTTP side of ws-chat: `/metrics`, `/healthz` and the embedded
//! page (mounted last, so it only sees what nothing else claimed). `/ws` is
//! not here: `upgrade` answers it before warp sees the request.

use ops::metrics::AlwaysHealthy;
use ops::metrics::prometheus_client::registry::Registry;
use std::sync::Arc;
use warp::Filter;

/// The page in `web/ws-chat`, compiled into the binary.
#[derive(rust_embed::RustEmbed)]
#[folder = "../../web/ws-chat"]
struct Page;

/// With `tokens_required`, `/healthz` says `"auth":"token"`.
pub fn routes(
    registry: Arc<Registry>,
    tokens_required: bool,
) -> impl Filter<Extract = (warp::reply::Response,), Error = warp::Rejection> + Clone {
    let health = ops::metrics::with_auth_flag(Arc::new(AlwaysHealthy), tokens_required);
    ops::metrics::routes(registry, health)
        .or(ops::web::pages::<Page>())
        .unify()
}
