//! The app's web page, embedded in the binary at build time so a binary runs
//! from any folder. Each app derives `rust_embed::RustEmbed` on its own
//! `web/<app>` folder and mounts [`pages`] last, after its API routes.
//! `GET /shared/<file>` serves `web/shared`, the files every page uses (the
//! wire inspector), embedded here once so the three apps serve the same copy.

use rust_embed::RustEmbed;
use warp::Filter;
use warp::http::{StatusCode, header};
use warp::reply::{Reply, Response};

pub use rust_embed;

/// `web/shared`: the files the three pages have in common.
#[derive(RustEmbed)]
#[folder = "../../web/shared"]
struct Shared;

/// `GET /` (index.html) and `GET /<file>` from the embedded folder `A`.
pub fn pages<A: RustEmbed + Send + Sync + 'static>()
-> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone {
    warp::get()
        .and(warp::path::tail())
        .and_then(|tail: warp::path::Tail| async move {
            let path = match tail.as_str() {
                "" => "index.html",
                path => path,
            };
            let file = match path.strip_prefix("shared/") {
                Some(shared) => Shared::get(shared),
                None => A::get(path),
            };
            match file {
                Some(file) => Ok(file_response(path, file)),
                None => Err(warp::reject::not_found()),
            }
        })
}

fn file_response(path: &str, file: rust_embed::EmbeddedFile) -> Response {
    let mut response = Response::new(file.data.into_owned().into());
    let headers = response.headers_mut();
    if let Ok(mime) = file.metadata.mimetype().parse() {
        headers.insert(header::CONTENT_TYPE, mime);
    }
    // The page itself must be revalidated so a deploy is picked up at once;
    // vendored libraries are pinned and can be cached for a day.
    let cache = if path.starts_with("vendor/") {
        "public, max-age=86400"
    } else {
        "no-cache"
    };
    headers.insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static(cache),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        header::HeaderValue::from_static("nosniff"),
    );
    *response.status_mut() = StatusCode::OK;
    response.into_response()
}
