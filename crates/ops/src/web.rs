//! The app's web page, embedded in the binary at build time so a binary runs
//! from any folder. Each app derives `rust_embed::RustEmbed` on its own
//! `web/<app>` folder and mounts [`pages`] last, after its API routes.
//! `GET /shared/<file>` serves `web/shared`, the files every page uses (the
//! wire inspector, the pages' small helpers), embedded here once so the three
//! apps serve the same copy.

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
            match find::<A>(path) {
                Some(file) => Ok(file_response(path, file)),
                None => Err(warp::reject::not_found()),
            }
        })
}

/// The embedded file at `path`: under `shared/` from `web/shared`, else from `A`.
fn find<A: RustEmbed>(path: &str) -> Option<rust_embed::EmbeddedFile> {
    match path.strip_prefix("shared/") {
        Some(shared) => Shared::get(shared),
        None => A::get(path),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Any app's folder will do: the shared files must come out beside it.
    #[derive(RustEmbed)]
    #[folder = "../../web/ws-chat"]
    struct Page;

    fn text(path: &str) -> String {
        let file = find::<Page>(path).unwrap();
        String::from_utf8_lossy(&file.data).into_owned()
    }

    #[test]
    fn finds_the_shared_folder_beside_the_app_folder() {
        assert!(text("shared/inspector.js").contains("WireInspector"));
        assert!(text("shared/inspector.css").contains(".wire-panel"));
        assert!(text("app.js").contains("./shared/inspector.js"));
        assert!(text("app.js").contains("./shared/page.js"));
        assert_eq!(
            find::<Page>("shared/inspector.css")
                .unwrap()
                .metadata
                .mimetype(),
            "text/css"
        );
    }

    #[test]
    fn unknown_files_are_found_in_neither_folder() {
        assert!(find::<Page>("shared/nope.js").is_none());
        assert!(find::<Page>("shared/").is_none());
        assert!(find::<Page>("nope.js").is_none());
        // The app's own files are not reachable under shared/, nor the reverse.
        assert!(find::<Page>("shared/app.js").is_none());
        assert!(find::<Page>("inspector.js").is_none());
    }
}
