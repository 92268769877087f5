//! What every connection's task shares with the accept loop: the kind of
//! service an app hands in, and [`Serving`], the bundle each task gets a
//! clone of. It sits below the files that serve connections
//! ([`crate::connection`], [`crate::refusal`]) and the loop that accepts
//! them ([`crate::server`]), so that none of them needs another's types.

use crate::admission::Admission;
use crate::shutdown::Shutdown;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::task::TaskTracker;

/// How long a client gets to send a complete request head.
pub(crate) const HEAD_TIMEOUT: Duration = Duration::from_secs(10);

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The service an app hands in: a tower service answering hyper's requests.
pub trait HttpService<B>:
    tower_service::Service<
        http::Request<Incoming>,
        Response = http::Response<B>,
        Future: Send + 'static,
        Error: Into<BoxError>,
    > + Clone
    + Send
    + 'static
{
}

impl<S, B> HttpService<B> for S where
    S: tower_service::Service<
            http::Request<Incoming>,
            Response = http::Response<B>,
            Future: Send + 'static,
            Error: Into<BoxError>,
        > + Clone
        + Send
        + 'static
{
}

/// The body of the service's responses.
pub trait ResponseBody:
    hyper::body::Body<Data: Send, Error: Into<BoxError>> + Send + 'static
{
}

impl<B> ResponseBody for B where
    B: hyper::body::Body<Data: Send, Error: Into<BoxError>> + Send + 'static
{
}

/// What every connection's task needs, cloned from the accept loop.
#[derive(Clone)]
pub(crate) struct Serving<S, R> {
    pub(crate) http: http1::Builder,
    pub(crate) service: S,
    pub(crate) route: Option<R>,
    pub(crate) admission: Arc<Admission>,
    pub(crate) shutdown: Shutdown,
    pub(crate) connections: TaskTracker,
}
