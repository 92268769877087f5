//! What a server answers between binding its port and being able to serve
//! (an app that waits for Redis, for one): `/healthz` says `503` with
//! `"status":"starting"`, so that a load balancer or an orchestrator waits
//! for it; `/metrics` answers with the process's series; anything else
//! gets `503` with `Retry-After`, so that a client tries again shortly
//! instead of waiting in the listen queue with no word.

use crate::metrics::{metrics_route, prometheus_client::registry::Registry};
use std::sync::Arc;
use warp::Filter;
use warp::http::StatusCode;
use warp::reply::Reply;

/// How long a client is told to wait before it tries again.
const RETRY_AFTER_SECONDS: u64 = 1;

/// The routes served while the app starts.
pub fn routes()
-> impl Filter<Extract = (warp::reply::Response,), Error = std::convert::Infallible> + Clone {
    let healthz = warp::path!("healthz").map(|| {
        let body = serde_json::json!({ "status": "starting" });
        warp::reply::with_status(warp::reply::json(&body), StatusCode::SERVICE_UNAVAILABLE)
            .into_response()
    });
    let anything_else = warp::any().map(|| {
        let reply = warp::reply::with_status(
            "starting: try again shortly\n",
            StatusCode::SERVICE_UNAVAILABLE,
        );
        warp::reply::with_header(reply, "retry-after", RETRY_AFTER_SECONDS.to_string())
            .into_response()
    });
    metrics_route(Arc::new(Registry::default()))
        .or(healthz)
        .unify()
        .or(anything_else)
        .unify()
}
