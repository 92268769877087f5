//! The connection limits over real sockets: a small warp app served by the
//! ops accept loop, clients from several loopback addresses (all of
//! 127.0.0.0/8 reaches the server on Linux), raw HTTP/1.1 on the wire.
// Test code: a failed unwrap is a failed test, with its message.
#![allow(clippy::unwrap_used)]

use ops::Shutdown;
use ops::admission::AdmissionConfig;
use ops::metrics::{AlwaysHealthy, prometheus_client::registry::Registry};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use warp::Filter;

/// Serves `/`, `/healthz` and `/metrics` with `config`; stops when dropped.
struct App {
    addr: SocketAddr,
    shutdown: Shutdown,
}

impl Drop for App {
    fn drop(&mut self) {
        self.shutdown.trigger();
    }
}

async fn start(config: AdmissionConfig) -> App {
    let listener = ops::server::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let routes = ops::metrics::routes(Arc::new(Registry::default()), Arc::new(AlwaysHealthy))
        .or(warp::path::end().map(|| "hello"));
    let shutdown = Shutdown::new();
    let server = ops::server::Server::new(warp::service(routes), config);
    tokio::spawn(server.serve(listener, shutdown.clone()));
    App { addr, shutdown }
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

async fn connect_from(from: IpAddr, to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(from, 0)).unwrap();
    socket.connect(to).await.unwrap()
}

/// One response read off `stream`: status, head (lower case) and body.
/// Reads exactly the response, so a kept-alive connection stays usable.
async fn read_response(stream: &mut TcpStream) -> (u16, String, String) {
    let mut bytes = Vec::new();
    let head_end = loop {
        if let Some(at) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let mut chunk = [0u8; 4096];
        let read = stream.read(&mut chunk).await.unwrap();
        assert!(read > 0, "closed before a response: {bytes:?}");
        bytes.extend_from_slice(&chunk[..read]);
    };
    let head = String::from_utf8_lossy(&bytes[..head_end]).to_ascii_lowercase();
    let status = head[9..12].parse().unwrap();
    let length: usize = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length: "))
        .map_or(0, |len| len.trim().parse().unwrap());
    while bytes.len() < head_end + length {
        let mut chunk = [0u8; 4096];
        let read = stream.read(&mut chunk).await.unwrap();
        assert!(read > 0, "closed inside a body");
        bytes.extend_from_slice(&chunk[..read]);
    }
    let body = String::from_utf8_lossy(&bytes[head_end..head_end + length]).into_owned();
    (status, head, body)
}

/// Sends `GET path` with `extra` header lines from `from`, reads the answer.
async fn get(
    app: &App,
    from: IpAddr,
    path: &str,
    extra: &str,
) -> (TcpStream, (u16, String, String)) {
    let mut stream = connect_from(from, app.addr).await;
    let request = format!("GET {path} HTTP/1.1\r\nhost: test\r\n{extra}\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let response = read_response(&mut stream).await;
    (stream, response)
}

/// A connection that was admitted (it got its `200`) and stays open.
async fn held(app: &App, from: IpAddr, extra: &str) -> TcpStream {
    let (stream, (status, _, body)) = get(app, from, "/", extra).await;
    assert_eq!((status, body.as_str()), (200, "hello"));
    stream
}

async fn metrics(app: &App) -> String {
    let (_, (status, _, body)) = get(app, ip("127.0.0.1"), "/metrics", "").await;
    assert_eq!(status, 200);
    body
}

fn config() -> AdmissionConfig {
    AdmissionConfig::only_max_connections(1000)
}

#[tokio::test]
async fn past_max_connections_new_clients_get_503_and_probes_still_answer() {
    let app = start(AdmissionConfig::only_max_connections(3)).await;
    let mut open = Vec::new();
    for _ in 0..3 {
        open.push(held(&app, ip("127.0.0.1"), "").await);
    }
    let (_, (status, head, body)) = get(&app, ip("127.0.0.1"), "/", "").await;
    assert_eq!(status, 503, "{head}{body}");
    assert!(head.contains("retry-after: 5"), "{head}");
    assert!(head.contains("connection: close"), "{head}");

    // The orchestrator's probe and the scraper are served from the reserve.
    let (_, (status, _, body)) = get(&app, ip("127.0.0.1"), "/healthz", "").await;
    assert_eq!(status, 200, "{body}");
    let metrics = metrics(&app).await;
    assert!(
        metrics.contains("connections_refused_total{reason=\"max_connections\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("tokio_alive_tasks "), "{metrics}");

    // A probe served beyond the cap does not keep its slot: no keep-alive.
    let (mut probe, (status, head, _)) = get(&app, ip("127.0.0.1"), "/healthz", "").await;
    assert_eq!(status, 200);
    assert!(head.contains("connection: close"), "{head}");
    let mut rest = Vec::new();
    assert_eq!(probe.read_to_end(&mut rest).await.unwrap(), 0);

    // A client that leaves gives its slot to the next one.
    drop(open.pop());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, (status, _, _)) = get(&app, ip("127.0.0.1"), "/", "").await;
        if status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "the freed slot never came back");
        // The server notices the close when it next reads the socket.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn one_address_is_limited_without_locking_out_the_others() {
    let app = start(AdmissionConfig {
        max_connections_per_ip: 2,
        ..config()
    })
    .await;
    let _first = held(&app, ip("127.0.0.2"), "").await;
    let _second = held(&app, ip("127.0.0.2"), "").await;
    let (_, (status, head, _)) = get(&app, ip("127.0.0.2"), "/", "").await;
    assert_eq!(status, 429, "{head}");
    assert!(head.contains("retry-after: 5"), "{head}");
    // Another client is served, and so is a probe from the limited one.
    let _other = held(&app, ip("127.0.0.3"), "").await;
    let (_, (status, _, _)) = get(&app, ip("127.0.0.2"), "/healthz", "").await;
    assert_eq!(status, 200);
    assert!(
        metrics(&app)
            .await
            .contains("connections_refused_total{reason=\"per_ip\"}")
    );
}

#[tokio::test]
async fn the_handshake_rate_refuses_a_burst_with_429() {
    let app = start(AdmissionConfig {
        handshake_rate: 1,
        ..config()
    })
    .await;
    let started = Instant::now();
    let mut statuses = Vec::new();
    for _ in 0..20 {
        let (_, (status, head, _)) = get(&app, ip("127.0.0.4"), "/", "").await;
        if status == 429 {
            assert!(head.contains("retry-after: 1"), "{head}");
        }
        statuses.push(status);
    }
    // A burst of two, then one a second: however slow this machine is,
    // no more got through than the bucket held.
    let allowed = 2 + started.elapsed().as_secs() as usize + 1;
    let admitted = statuses.iter().filter(|status| **status == 200).count();
    assert!(admitted >= 2 && admitted <= allowed, "{statuses:?}");
    assert!(statuses.iter().all(|status| [200, 429].contains(status)));
    assert!(
        metrics(&app)
            .await
            .contains("connections_refused_total{reason=\"handshake_rate\"}")
    );
}

#[tokio::test]
async fn requests_that_continue_a_session_take_no_handshake_token() {
    // A long-polling client without keep-alive: one connection per poll.
    let app = start(AdmissionConfig {
        handshake_rate: 1,
        session_path: Some("/socket.io/"),
        ..config()
    })
    .await;
    let from = ip("127.0.0.5");
    let poll = "/socket.io/?EIO=4&transport=polling&sid=abc";
    let started = Instant::now();
    let mut polls = Vec::new();
    for _ in 0..20 {
        polls.push(get(&app, from, poll, "").await.1.0);
    }
    // The route answers 404 for this path: what matters is that none was
    // refused with 429.
    assert!(polls.iter().all(|status| *status == 404), "{polls:?}");
    // New sessions still pay: a burst of two, then one a second.
    let mut opens = Vec::new();
    for _ in 0..20 {
        opens.push(
            get(&app, from, "/socket.io/?EIO=4&transport=polling", "")
                .await
                .1
                .0,
        );
    }
    let allowed = 2 + started.elapsed().as_secs() as usize + 1;
    let admitted = opens.iter().filter(|status| **status != 429).count();
    assert!(admitted >= 2 && admitted <= allowed, "{opens:?}");
}

#[tokio::test]
async fn forwarded_for_names_the_client_only_behind_a_trusted_proxy() {
    let app = start(AdmissionConfig {
        max_connections_per_ip: 1,
        trusted_proxies: "127.0.0.5".parse().unwrap(),
        ..config()
    })
    .await;
    // Two clients behind the trusted proxy, one connection each.
    let _alice = held(&app, ip("127.0.0.5"), "x-forwarded-for: 203.0.113.1\r\n").await;
    let _bob = held(&app, ip("127.0.0.5"), "x-forwarded-for: 203.0.113.2\r\n").await;
    let (_, (status, _, _)) = get(
        &app,
        ip("127.0.0.5"),
        "/",
        "x-forwarded-for: 203.0.113.1\r\n",
    )
    .await;
    assert_eq!(status, 429, "alice's second connection");

    // From an untrusted peer the header is ignored: the peer is the client.
    let _mallory = held(&app, ip("127.0.0.6"), "x-forwarded-for: 203.0.113.3\r\n").await;
    let (_, (status, _, _)) = get(
        &app,
        ip("127.0.0.6"),
        "/",
        "x-forwarded-for: 203.0.113.4\r\n",
    )
    .await;
    assert_eq!(status, 429, "a forged header is no way around the limit");
}

#[tokio::test]
async fn request_heads_over_16_kib_get_431() {
    let app = start(config()).await;
    let cookie = |len: usize| format!("cookie: {}\r\n", "a".repeat(len));
    let (_, (status, _, body)) = get(&app, ip("127.0.0.1"), "/", &cookie(15 * 1024)).await;
    assert_eq!((status, body.as_str()), (200, "hello"));
    let (_, (status, _, _)) = get(&app, ip("127.0.0.1"), "/", &cookie(17 * 1024)).await;
    assert_eq!(status, 431);
    let (_, (status, _, _)) = get(&app, ip("127.0.0.1"), "/", &cookie(200 * 1024)).await;
    assert_eq!(status, 431);
}
