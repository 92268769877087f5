//! Whether a new connection continues a session rather than starting one:
//! an Engine.IO long-polling client without keep-alive opens a connection
//! for every poll and every send, each naming its session (`sid=`), and
//! must not pay the handshake rate for each of them.
//!
//! Only the request line is looked at, peeked so that hyper still reads it.
//! A forged `sid` gains nothing: the session layer refuses an unknown one
//! at once, and only requests under the app's session path are exempt.

use crate::peek;
use tokio::net::TcpStream;

/// Enough for any request line the apps serve; a longer one is no session's.
const REQUEST_LINE_BYTES: usize = 2048;

/// Whether the first request on `stream` names a session under `path`.
/// A client that has not sent its request line within the peek patience
/// is taken to start something new.
pub(crate) async fn continues_session(stream: &TcpStream, path: &str) -> bool {
    let names = peek::peek_until(stream, REQUEST_LINE_BYTES, peek::PEEK_PATIENCE, |seen| {
        peek::request_line(seen).map(|line| names_session(line, path))
    });
    names.await == Some(true)
}

/// `GET /socket.io/?EIO=4&transport=polling&sid=abc HTTP/1.1` names a
/// session under `/socket.io/`.
fn names_session(request_line: &[u8], path: &str) -> bool {
    let Ok(line) = std::str::from_utf8(request_line) else {
        return false;
    };
    let mut parts = line.split(' ');
    let (Some(_method), Some(target), Some(_version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let Some((target_path, query)) = target.split_once('?') else {
        return false;
    };
    target_path.starts_with(path)
        && query
            .split('&')
            .any(|pair| pair.strip_prefix("sid=").is_some_and(|sid| !sid.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const PATH: &str = "/socket.io/";

    fn names(line: &str) -> bool {
        names_session(line.as_bytes(), PATH)
    }

    #[test]
    fn a_poll_or_a_send_names_its_session() {
        assert!(names(
            "GET /socket.io/?EIO=4&transport=polling&t=x&sid=abc HTTP/1.1"
        ));
        assert!(names(
            "POST /socket.io/?EIO=4&transport=polling&sid=abc HTTP/1.1"
        ));
        assert!(names(
            "GET /socket.io/?sid=abc&EIO=4&transport=websocket HTTP/1.1"
        ));
    }

    #[test]
    fn a_handshake_or_another_path_does_not() {
        assert!(!names(
            "GET /socket.io/?EIO=4&transport=polling&t=x HTTP/1.1"
        ));
        assert!(!names("GET /socket.io/?EIO=4&sid= HTTP/1.1"));
        assert!(!names("GET /socket.io/?EIO=4&xsid=abc HTTP/1.1"));
        assert!(!names("GET /ws?sid=abc HTTP/1.1"));
        assert!(!names("GET / HTTP/1.1"));
        assert!(!names("GET /socket.io/?sid=abc"));
        assert!(!names("garbage"));
    }

    #[tokio::test]
    async fn the_request_line_is_peeked_not_read() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (mut server, _) = listener.accept().await.unwrap();
        let request = b"GET /socket.io/?EIO=4&sid=abc HTTP/1.1\r\nHost: x\r\n\r\n";
        client.write_all(&request[..20]).await.unwrap();
        let peek = tokio::spawn(async move {
            let continues = continues_session(&server, PATH).await;
            let mut read = vec![0u8; request.len()];
            server.read_exact(&mut read).await.unwrap();
            (continues, read)
        });
        tokio::time::sleep(Duration::from_millis(30)).await;
        client.write_all(&request[20..]).await.unwrap();
        let (continues, read) = peek.await.unwrap();
        assert!(continues);
        assert_eq!(read, request);
    }
}
