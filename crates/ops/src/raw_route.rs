//! A route served straight on the TCP connection instead of through hyper.
//!
//! A long-lived stream served by hyper keeps, for its whole life, hyper's
//! per-connection read and write buffers (8 KiB each, the least hyper
//! allows) and its dispatcher, which polls the body and frames every write
//! as a chunk. A Server-Sent Events stream only ever writes bytes that were
//! serialized once for every client, so through hyper those costs are most
//! of its memory and CPU (BENCHMARKS.md has the figures). An app may name
//! one such route, a path taken with GET; the accept loop
//! ([`crate::server::Server::with_raw_route`]) peeks at the first bytes of
//! every new connection and hands the ones that ask for it, with the parsed
//! request head, to the app. Every other request goes to hyper as usual.

use crate::peek;
use http::{HeaderMap, HeaderName, HeaderValue, Request, StatusCode};
use std::future::Future;
use std::io;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The largest request head accepted, here and by hyper
/// ([`crate::server`]): larger gets `431`. nginx allows 8 KiB per line and
/// four such lines; 16 KiB is room for large cookies without letting a
/// client make the server buffer hundreds of kilobytes.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;

/// How many headers a raw route's request may carry.
const MAX_HEADERS: usize = 64;

/// An app's route served outside hyper.
pub trait RawRoute: Clone + Send + Sync + 'static {
    /// The path this route takes with GET, with or without a query string.
    const PATH: &'static str;

    /// Answers `request` on `socket`. The connection closes when this returns.
    fn serve(&self, request: Request<()>, socket: TcpStream) -> impl Future<Output = ()> + Send;
}

/// Whether a new connection starts with `GET <path>` followed by a space or
/// a query. Only peeks: the bytes stay for whoever reads the request. A
/// request line that trickles in slower than the peek patience is left to
/// hyper.
pub async fn asks_for(socket: &TcpStream, path: &str) -> bool {
    let asks = peek::peek_until(socket, 64, peek::PEEK_PATIENCE, |seen| {
        peek::request_line_asks_for(seen, path)
    });
    asks.await == Some(true)
}

/// Why a request head could not be read.
#[derive(Debug)]
pub enum HeadError {
    /// The connection broke or closed first: nobody to answer.
    Io(io::Error),
    /// Not a valid HTTP/1 request head.
    Invalid(&'static str),
    /// Larger than [`MAX_HEAD_BYTES`].
    TooLarge,
}

/// Reads one request head and copies what it says into an owned
/// [`Request`], so no read buffer outlives it. Bytes after the head (a
/// pipelined request) are read and dropped: a raw route ends its connection.
pub async fn read_head(socket: &mut TcpStream) -> Result<Request<()>, HeadError> {
    let mut head = Vec::new();
    loop {
        // Never read past the bound: one byte over it is enough to refuse.
        let room = (MAX_HEAD_BYTES + 1 - head.len()).min(1024);
        head.reserve(room);
        let len = (&mut *socket)
            .take(room as u64)
            .read_buf(&mut head)
            .await
            .map_err(HeadError::Io)?;
        if len == 0 {
            return Err(HeadError::Io(io::ErrorKind::UnexpectedEof.into()));
        }
        if let Some(request) = parse_head(&head)? {
            return Ok(request);
        }
    }
}

/// The request in `head`, the bytes read so far: `None` while it is
/// incomplete and within [`MAX_HEAD_BYTES`], an error once it cannot become
/// a valid head.
pub fn parse_head(head: &[u8]) -> Result<Option<Request<()>>, HeadError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut headers);
    match parsed.parse(head) {
        Ok(httparse::Status::Complete(len)) if len <= MAX_HEAD_BYTES => {
            to_request(&parsed).map(Some)
        }
        Ok(httparse::Status::Complete(_)) => Err(HeadError::TooLarge),
        Ok(httparse::Status::Partial) if head.len() <= MAX_HEAD_BYTES => Ok(None),
        Ok(httparse::Status::Partial) => Err(HeadError::TooLarge),
        Err(httparse::Error::TooManyHeaders) => Err(HeadError::TooLarge),
        Err(_) => Err(MALFORMED),
    }
}

const MALFORMED: HeadError = HeadError::Invalid("malformed request head");

fn to_request(parsed: &httparse::Request<'_, '_>) -> Result<Request<()>, HeadError> {
    let mut request = Request::builder()
        .method(parsed.method.unwrap_or("GET"))
        .uri(parsed.path.unwrap_or("/"))
        .version(match parsed.version {
            Some(0) => http::Version::HTTP_10,
            _ => http::Version::HTTP_11,
        })
        .body(())
        .map_err(|_| MALFORMED)?;
    let headers = request.headers_mut();
    for header in parsed.headers.iter() {
        let name = HeaderName::from_bytes(header.name.as_bytes()).map_err(|_| MALFORMED)?;
        let value = HeaderValue::from_bytes(header.value).map_err(|_| MALFORMED)?;
        headers.append(name, value);
    }
    Ok(request)
}

/// The status line and headers of a response whose body ends when the
/// connection closes (`connection: close`, no length, no chunks): the way a
/// stream that never ends on its own is sent over HTTP/1.1.
pub fn response_head(status: StatusCode, headers: &HeaderMap) -> Vec<u8> {
    let mut head = Vec::with_capacity(256);
    head.extend_from_slice(b"HTTP/1.1 ");
    head.extend_from_slice(status.as_str().as_bytes());
    head.push(b' ');
    head.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    head.extend_from_slice(b"\r\n");
    for (name, value) in headers {
        head.extend_from_slice(name.as_str().as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(b"connection: close\r\n\r\n");
    head
}

/// How long a refused client may still send after its answer.
const LINGER: Duration = Duration::from_secs(1);

/// Writes a complete small response (an error), then closes the connection
/// so that the response arrives ([`crate::close::linger`]).
pub async fn respond(
    socket: &mut TcpStream,
    status: StatusCode,
    content_type: &'static str,
    body: &[u8],
) -> io::Result<()> {
    let mut headers = HeaderMap::new();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static(content_type),
    );
    headers.insert(http::header::CONTENT_LENGTH, HeaderValue::from(body.len()));
    let mut response = response_head(status, &headers);
    response.extend_from_slice(body);
    socket.write_all(&response).await?;
    crate::close::linger(socket, LINGER).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    async fn connected_pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        (client, server)
    }

    #[tokio::test]
    async fn recognizes_the_route_and_nothing_that_merely_starts_like_it() {
        for (request, expected) in [
            (&b"GET /events HTTP/1.1\r\n"[..], true),
            (b"GET /events?symbols=AAPL HTTP/1.1\r\n", true),
            (b"GET /eventsource HTTP/1.1\r\n", false),
            (b"POST /events HTTP/1.1\r\n", false),
            (b"GET / HTTP/1.1\r\n", false),
            (b"\x16\x03\x01garbage", false),
        ] {
            let (mut client, server) = connected_pair().await;
            client.write_all(request).await.unwrap();
            assert_eq!(
                asks_for(&server, "/events").await,
                expected,
                "{}",
                String::from_utf8_lossy(request)
            );
        }
    }

    #[tokio::test]
    async fn waits_for_a_request_line_that_arrives_in_pieces() {
        let (mut client, server) = connected_pair().await;
        client.write_all(b"GET /ev").await.unwrap();
        let writer = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            client.write_all(b"ents HTTP/1.1\r\n").await.unwrap();
            client
        });
        assert!(asks_for(&server, "/events").await);
        drop(writer.await.unwrap());
    }

    #[tokio::test]
    async fn reads_a_head_into_an_owned_request() {
        let (mut client, mut server) = connected_pair().await;
        client
            .write_all(b"GET /events?symbols=AAPL HTTP/1.1\r\nHost: a\r\nLast-Event-ID: 1-2\r\n")
            .await
            .unwrap();
        let reader = tokio::spawn(async move { read_head(&mut server).await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        client.write_all(b"\r\n").await.unwrap();
        let request = reader.await.unwrap().unwrap();
        assert_eq!(request.uri().query(), Some("symbols=AAPL"));
        assert_eq!(request.headers()["last-event-id"], "1-2");
        assert_eq!(request.headers()["host"], "a");
    }

    #[tokio::test]
    async fn refuses_a_head_that_is_too_large_or_malformed() {
        let (mut client, mut server) = connected_pair().await;
        let mut huge = b"GET /events HTTP/1.1\r\n".to_vec();
        huge.extend(std::iter::repeat_n(b'a', MAX_HEAD_BYTES));
        client.write_all(&huge).await.unwrap();
        assert!(matches!(
            read_head(&mut server).await,
            Err(HeadError::TooLarge)
        ));

        let (mut client, mut server) = connected_pair().await;
        client
            .write_all(b"GET /events HTTP/1.1\r\nno colon\r\n\r\n")
            .await
            .unwrap();
        assert!(matches!(
            read_head(&mut server).await,
            Err(HeadError::Invalid(_))
        ));
    }

    #[test]
    fn a_response_head_is_delimited_by_the_connection_closing() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "content-type",
            HeaderValue::from_static("text/event-stream"),
        );
        let head = String::from_utf8(response_head(StatusCode::OK, &headers)).unwrap();
        assert_eq!(
            head,
            "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n"
        );
    }
}
