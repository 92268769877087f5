//! The runtime's HTTP side, as the Engine.IO v4 spec and the official
//! server answer it: the handshake (long-polling, or WebSocket directly),
//! a long-polling client's GETs and POSTs, and the upgrade of a
//! long-polling session to WebSocket. A request the protocol does not
//! allow gets `400` with socket.io's `{"code","message"}` (an oversized
//! payload `413`), and a client that breaks the rules of its own session
//! (two GETs or two POSTs at once, a payload that does not decode or is
//! too large) loses the session.

use crate::eio_packet;
use crate::engine::{Delivery, Engine, Reason, Refused};
use crate::link::{Fetch, Link};
use crate::server::{SocketIo, new_id};
use crate::session::Session;
use crate::ws::WsSocket;
use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use ops::admission::Ticket;
use ops::placed::Placed;
use std::future::poll_fn;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

/// socket.io's error codes for refused requests.
const UNKNOWN_TRANSPORT: (u8, &str) = (0, "Transport unknown");
const UNKNOWN_SID: (u8, &str) = (1, "Session ID unknown");
const BAD_HANDSHAKE_METHOD: (u8, &str) = (2, "Bad handshake method");
const BAD_REQUEST: (u8, &str) = (3, "Bad request");
const UNSUPPORTED_PROTOCOL: (u8, &str) = (5, "Unsupported protocol version");

/// What a request asks for, from its query.
struct Query<'a> {
    websocket: bool,
    sid: Option<&'a str>,
}

impl<A: Send + Sync + 'static, C: Send + Sync + 'static> SocketIo<A, C> {
    /// Answers one request for the runtime's path.
    pub async fn serve(&self, request: Request<Incoming>) -> Response<Bytes> {
        let query = request.uri().query().unwrap_or("").to_owned();
        let query = match parse_query(&query) {
            Ok(query) => query,
            Err(refusal) => return refused(refusal),
        };
        if query.sid.is_none() && self.inner.closing.load(Ordering::SeqCst) {
            return text(
                StatusCode::SERVICE_UNAVAILABLE,
                "the server is shutting down".into(),
            );
        }
        let method = request.method().clone();
        match (query.websocket, query.sid, method) {
            (true, sid, Method::GET) => self.websocket(request, sid),
            (false, None, Method::GET) => self.open_polling(),
            (false, None, _) => refused(BAD_HANDSHAKE_METHOD),
            (false, Some(sid), method) => {
                let Some(engine) = self.inner.find(sid) else {
                    return refused(UNKNOWN_SID);
                };
                match method {
                    Method::GET => self.fetch(&engine).await,
                    Method::POST => self.post(&engine, request.into_body()).await,
                    _ => refused(BAD_REQUEST),
                }
            }
            (true, _, _) => refused(BAD_REQUEST),
        }
    }

    /// A long-polling handshake: a new session, and its open packet.
    fn open_polling(&self) -> Response<Bytes> {
        let config = &self.inner.config;
        let engine = Arc::new(Engine::new(
            new_id(),
            Link::polling(config.max_queued, config.max_queued_bytes),
        ));
        self.inner.remember(engine.clone());
        let open = self.open_packet(&engine.sid, true);
        self.inner
            .tasks
            .spawn(Session::new(self.inner.clone(), engine, None).run());
        text(StatusCode::OK, open)
    }

    fn open_packet(&self, sid: &str, upgrades: bool) -> Bytes {
        let config = &self.inner.config;
        eio_packet::open(
            sid,
            upgrades,
            config.ping_interval.as_millis() as u64,
            config.ping_timeout.as_millis() as u64,
            config.max_payload as u64,
        )
    }

    /// A long-polling GET: the packets waiting, at once or as soon as
    /// there are some.
    async fn fetch(&self, engine: &Arc<Engine>) -> Response<Bytes> {
        match engine.link.begin_fetch() {
            Ok(()) => {}
            Err(Fetch::Overlap) => {
                engine.deliver(Delivery::Close(Reason::TransportError));
                return refused(BAD_REQUEST);
            }
            Err(_) => return refused(BAD_REQUEST),
        }
        // The GET is over when answered, and when its client went away.
        let _fetching = Done(|| engine.link.fetch_done());
        match poll_fn(|cx| engine.link.poll_fetch(cx)).await {
            Fetch::Packets(packets) => text(
                StatusCode::OK,
                eio_packet::payload(packets.iter().map(|p| &p[..])),
            ),
            Fetch::Overlap | Fetch::Upgraded => refused(BAD_REQUEST),
        }
    }

    /// A long-polling POST: its packets, handled by the session's task
    /// before the answer, so a client that posts again finds the last
    /// payload handled.
    async fn post(&self, engine: &Arc<Engine>, body: Incoming) -> Response<Bytes> {
        if engine.link.outbox().is_some() {
            return refused(BAD_REQUEST);
        }
        match engine.begin_post() {
            Ok(()) => {}
            Err(Refused::Overlap) => {
                engine.deliver(Delivery::Close(Reason::TransportError));
                return refused(BAD_REQUEST);
            }
            Err(Refused::Gone) => return refused(UNKNOWN_SID),
        }
        let _posting = Done(|| engine.end_post());
        let max_payload = self.inner.config.max_payload;
        let body = match Limited::new(body, max_payload).collect().await {
            Ok(body) => body.to_bytes(),
            Err(error) if error.downcast_ref::<LengthLimitError>().is_some() => {
                engine.deliver(Delivery::Close(Reason::TooLarge));
                return text(StatusCode::PAYLOAD_TOO_LARGE, "payload too large".into());
            }
            Err(_) => return refused(BAD_REQUEST),
        };
        let payload = match String::from_utf8(body.into()) {
            Ok(payload) if eio_packet::check_payload(&payload).is_ok() => payload,
            _ => {
                engine.deliver(Delivery::Close(Reason::TransportError));
                return refused(BAD_REQUEST);
            }
        };
        engine.deliver(Delivery::Payload(payload));
        poll_fn(|cx| engine.poll_handled(cx)).await;
        text(StatusCode::OK, Bytes::from_static(b"ok"))
    }

    /// A WebSocket: a new session over it, or the upgrade of the
    /// long-polling session `sid`.
    fn websocket(&self, mut request: Request<Incoming>, sid: Option<&str>) -> Response<Bytes> {
        let Some(accept) = websocket_accept(request.headers()) else {
            return refused(BAD_REQUEST);
        };
        let upgrading = match sid {
            None => None,
            Some(sid) => match self.inner.find(sid) {
                Some(engine) if engine.begin_upgrade().is_ok() => Some(engine),
                Some(_) => return refused(BAD_REQUEST),
                None => return refused(UNKNOWN_SID),
            },
        };
        let on_upgrade = hyper::upgrade::on(&mut request);
        let io = self.clone();
        self.inner.tasks.spawn(async move {
            let upgraded = match on_upgrade.await {
                Ok(upgraded) => upgraded,
                Err(error) => return tracing::debug!(%error, "upgrade failed"),
            };
            let Some((stream, unread, place)) = into_parts(upgraded) else {
                return tracing::error!("an upgraded connection of an unknown kind");
            };
            let config = &io.inner.config;
            let ws = WsSocket::new(stream, unread, place, config);
            match upgrading {
                Some(engine) => engine.deliver(Delivery::Upgrade(Box::new(ws))),
                None => io.open_websocket(ws).await,
            }
        });
        let mut response = Response::new(Bytes::new());
        *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let headers = response.headers_mut();
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
        response
    }

    /// A session over WebSocket from its handshake: this task is its task.
    async fn open_websocket(&self, ws: WsSocket) {
        let link = Link::websocket(ws.outbox().clone());
        let engine = Arc::new(Engine::new(new_id(), link));
        self.inner.remember(engine.clone());
        let open = self.open_packet(&engine.sid, false);
        ws.outbox().send(fanout::frame::text(&open), true);
        Session::new(self.inner.clone(), engine, Some(ws))
            .run()
            .await;
    }
}

/// Runs its function when dropped: the end of a request, answered or not.
struct Done<F: FnMut()>(F);

impl<F: FnMut()> Drop for Done<F> {
    fn drop(&mut self) {
        (self.0)()
    }
}

/// The query of an Engine.IO request: `EIO=4`, a known transport, maybe a
/// session id.
fn parse_query(query: &str) -> Result<Query<'_>, (u8, &'static str)> {
    let mut version = None;
    let mut transport = None;
    let mut sid = None;
    for pair in query.split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "EIO" => version = Some(value),
            "transport" => transport = Some(value),
            "sid" => sid = Some(value),
            _ => {}
        }
    }
    if version != Some("4") {
        return Err(UNSUPPORTED_PROTOCOL);
    }
    let websocket = match transport {
        Some("websocket") => true,
        Some("polling") => false,
        _ => return Err(UNKNOWN_TRANSPORT),
    };
    Ok(Query { websocket, sid })
}

/// The `Sec-WebSocket-Accept` for a well-formed upgrade request.
fn websocket_accept(headers: &HeaderMap) -> Option<HeaderValue> {
    let upgrade = headers.get(header::UPGRADE)?.to_str().ok()?;
    if !upgrade.eq_ignore_ascii_case("websocket")
        || headers.get(header::SEC_WEBSOCKET_VERSION)? != "13"
    {
        return None;
    }
    let key = headers.get(header::SEC_WEBSOCKET_KEY)?;
    HeaderValue::from_str(&derive_accept_key(key.as_bytes())).ok()
}

/// The socket behind an upgraded connection, what the HTTP server read
/// past the request, and the connection's place in the limits (when the
/// connection came through `ops`' accept loop).
fn into_parts(upgraded: Upgraded) -> Option<(TcpStream, Bytes, Option<Ticket>)> {
    match upgraded.downcast::<TokioIo<Placed<TcpStream>>>() {
        Ok(parts) => {
            let (stream, place) = parts.io.into_inner().into_parts();
            Some((stream, parts.read_buf, place))
        }
        Err(upgraded) => match upgraded.downcast::<TokioIo<TcpStream>>() {
            Ok(parts) => Some((parts.io.into_inner(), parts.read_buf, None)),
            Err(_) => None,
        },
    }
}

fn text(status: StatusCode, body: Bytes) -> Response<Bytes> {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=UTF-8"),
    );
    response
}

fn refused((code, message): (u8, &'static str)) -> Response<Bytes> {
    let body = format!(r#"{{"code":{code},"message":"{message}"}}"#);
    let mut response = Response::new(Bytes::from(body));
    *response.status_mut() = StatusCode::BAD_REQUEST;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_needs_version_four_and_a_known_transport() {
        let query = parse_query("EIO=4&transport=polling&t=N8hyd6w").unwrap();
        assert!(!query.websocket);
        assert_eq!(query.sid, None);
        let query = parse_query("EIO=4&transport=websocket&sid=abc").unwrap();
        assert!(query.websocket);
        assert_eq!(query.sid, Some("abc"));
        assert_eq!(
            parse_query("EIO=3&transport=polling").err(),
            Some(UNSUPPORTED_PROTOCOL)
        );
        assert_eq!(
            parse_query("transport=polling").err(),
            Some(UNSUPPORTED_PROTOCOL)
        );
        assert_eq!(
            parse_query("EIO=4&transport=flash").err(),
            Some(UNKNOWN_TRANSPORT)
        );
    }
}
