//! The HTTP routes served through warp: `/api/symbols`, `/api/quotes`,
//! `/metrics`, `/healthz`, and the page, mounted last. The stream itself,
//! `/events`, is served beside them on the bare connection ([`crate::events`]).

use crate::app::App;
use ops::metrics::HealthCheck;
use prometheus_client::registry::Registry;
use rust_embed::RustEmbed;
use std::sync::Arc;
use warp::Filter;
use warp::http::header;
use warp::reply::{Reply, Response};

/// The page, embedded in the binary.
#[derive(RustEmbed)]
#[folder = "../../web/sse-stocks"]
struct Assets;

pub fn routes(
    app: Arc<App>,
    registry: Arc<Registry>,
    health: Arc<dyn HealthCheck>,
) -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone {
    let with_app = warp::any().map(move || app.clone());
    let symbols = warp::path!("api" / "symbols")
        .and(warp::get())
        .and(with_app.clone())
        .map(|app: Arc<App>| warp::reply::json(&app.hub.symbols().infos()).into_response());
    let quotes = warp::path!("api" / "quotes")
        .and(warp::get())
        .and(with_app)
        .map(|app: Arc<App>| {
            let reply = warp::reply::json(&app.hub.quotes());
            warp::reply::with_header(reply, header::CACHE_CONTROL, "no-cache").into_response()
        });
    symbols
        .or(quotes)
        .unify()
        .or(ops::metrics::routes(registry, health))
        .unify()
        .or(ops::web::pages::<Assets>())
        .unify()
}
