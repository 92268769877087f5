//! Looking at the start of a new connection's first request without
//! reading it, so that whoever serves the connection (hyper, a raw route)
//! still reads every byte. The accept path peeks to learn who the client is
//! behind a trusted proxy, whether a connection continues a session, asks
//! for the raw route, or is a probe; this is the one loop that does it.

use std::time::Duration;
use tokio::net::TcpStream;

/// How long a client gets to show what it asks for before the accept path
/// decides without it.
pub(crate) const PEEK_PATIENCE: Duration = Duration::from_secs(2);

/// A peek returns at once while any byte waits, so more bytes are waited
/// for with a short sleep; a request head split over segments is rare.
const PEEK_AGAIN_AFTER: Duration = Duration::from_millis(10);

/// Peeks at up to `max_bytes` of `stream` until `decide` can tell from
/// them (`Some`), giving up (`None`) when the client closes, the bytes
/// reach `max_bytes` undecided, or `patience` runs out.
pub(crate) async fn peek_until<T>(
    stream: &TcpStream,
    max_bytes: usize,
    patience: Duration,
    mut decide: impl FnMut(&[u8]) -> Option<T>,
) -> Option<T> {
    let mut buffer = vec![0u8; max_bytes];
    let give_up = tokio::time::Instant::now() + patience;
    loop {
        let len = match tokio::time::timeout_at(give_up, stream.peek(&mut buffer)).await {
            Ok(Ok(len)) => len,
            Ok(Err(_)) | Err(_) => return None,
        };
        if let Some(decision) = decide(&buffer[..len]) {
            return Some(decision);
        }
        if len == 0 || len == max_bytes || tokio::time::Instant::now() >= give_up {
            return None;
        }
        tokio::time::sleep(PEEK_AGAIN_AFTER).await;
    }
}

/// The request line in `seen` (without its `\r\n`), once it has all arrived.
pub(crate) fn request_line(seen: &[u8]) -> Option<&[u8]> {
    seen.windows(2)
        .position(|pair| pair == b"\r\n")
        .map(|end| &seen[..end])
}

/// Whether the first bytes of a request, `seen`, are `GET <path>` then a
/// space or a query; `None` while too few bytes arrived to tell.
pub fn request_line_asks_for(seen: &[u8], path: &str) -> Option<bool> {
    let wanted_len = "GET ".len() + path.len();
    let matches_so_far = seen
        .iter()
        .zip(b"GET ".iter().chain(path.as_bytes()))
        .all(|(seen, wanted)| seen == wanted);
    if !matches_so_far {
        return Some(false);
    }
    seen.get(wanted_len).map(|next| matches!(next, b' ' | b'?'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;
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
    async fn waits_for_bytes_that_arrive_in_pieces() {
        let (mut client, server) = connected_pair().await;
        client.write_all(b"GET / HT").await.unwrap();
        let writer = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            client.write_all(b"TP/1.1\r\n").await.unwrap();
            client
        });
        let line = peek_until(&server, 64, PEEK_PATIENCE, line_of).await;
        assert_eq!(line.as_deref(), Some(&b"GET / HTTP/1.1"[..]));
        drop(writer.await.unwrap());
    }

    fn line_of(seen: &[u8]) -> Option<Vec<u8>> {
        request_line(seen).map(<[u8]>::to_vec)
    }

    #[tokio::test]
    async fn gives_up_on_silence_a_close_or_a_full_buffer() {
        let (_client, server) = connected_pair().await;
        let silent = peek_until(&server, 64, Duration::from_millis(50), line_of).await;
        assert!(silent.is_none());

        let (client, server) = connected_pair().await;
        drop(client);
        let closed = peek_until(&server, 64, PEEK_PATIENCE, line_of).await;
        assert!(closed.is_none());

        let (mut client, server) = connected_pair().await;
        client.write_all(&[b'a'; 64]).await.unwrap();
        let full = peek_until(&server, 64, PEEK_PATIENCE, line_of).await;
        assert!(full.is_none());
    }

    #[test]
    fn a_request_line_asks_for_a_path_and_nothing_that_merely_starts_like_it() {
        for (seen, expected) in [
            (&b"GET /events HTTP/1.1"[..], Some(true)),
            (b"GET /events?symbols=AAPL", Some(true)),
            (b"GET /eventsource", Some(false)),
            (b"POST /events", Some(false)),
            (b"GET /ev", None),
            (b"\x16\x03\x01", Some(false)),
        ] {
            assert_eq!(
                request_line_asks_for(seen, "/events"),
                expected,
                "{}",
                String::from_utf8_lossy(seen)
            );
        }
    }
}
