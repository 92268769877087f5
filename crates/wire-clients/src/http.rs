//! Just enough HTTP/1.1 client for SSE: write a GET, read the response
//! head, then hand out the body, de-chunked when the server chunks it.
//! It works on a socket the caller connected, so a load generator can
//! choose the source address.

use crate::codec::chunked::ChunkedDecoder;
use anyhow::{Context, bail};
use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Largest response head accepted.
const MAX_HEAD: usize = 16 * 1024;

/// A response head, and the body bytes that came with it.
#[derive(Debug)]
pub struct ResponseHead {
    /// The status code.
    pub status: u16,
    /// Whether the body is `Transfer-Encoding: chunked`.
    pub chunked: bool,
    /// The `Content-Type` header, empty when there is none.
    pub content_type: String,
    /// Bytes read past the head: the start of the body.
    pub body_start: BytesMut,
}

/// Writes `GET path` with extra header lines.
pub async fn write_get(
    stream: &mut TcpStream,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> anyhow::Result<()> {
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .context("writing the request")
}

/// Reads up to the blank line that ends the head.
pub async fn read_head(stream: &mut TcpStream) -> anyhow::Result<ResponseHead> {
    let mut buffer = BytesMut::with_capacity(4096);
    loop {
        if let Some(end) = memchr::memmem::find(&buffer, b"\r\n\r\n") {
            let head = buffer.split_to(end + 4);
            return parse_head(&head, buffer);
        }
        if buffer.len() > MAX_HEAD {
            bail!("response head over {MAX_HEAD} bytes");
        }
        if stream.read_buf(&mut buffer).await? == 0 {
            bail!("connection closed before the response head");
        }
    }
}

fn parse_head(head: &[u8], body_start: BytesMut) -> anyhow::Result<ResponseHead> {
    let head = std::str::from_utf8(head).context("response head is not text")?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .with_context(|| format!("bad status line {status_line:?}"))?;
    let mut chunked = false;
    let mut content_type = String::new();
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.to_ascii_lowercase().contains("chunked");
        } else if name.eq_ignore_ascii_case("content-type") {
            value.clone_into(&mut content_type);
        }
    }
    Ok(ResponseHead {
        status,
        chunked,
        content_type,
        body_start,
    })
}

/// Turns raw body bytes into content, whatever the transfer encoding.
#[derive(Debug)]
pub enum BodyDecoder {
    /// `Transfer-Encoding: chunked`: de-chunked as it arrives.
    Chunked(ChunkedDecoder),
    /// The bytes are the body, up to the end of the connection.
    Identity,
}

impl BodyDecoder {
    /// The decoder the head's transfer encoding asks for.
    pub fn for_head(head: &ResponseHead) -> Self {
        if head.chunked {
            BodyDecoder::Chunked(ChunkedDecoder::new())
        } else {
            BodyDecoder::Identity
        }
    }

    /// Decodes `bytes`, passing every piece of body to `on_body`.
    pub fn feed(&mut self, bytes: &[u8], mut on_body: impl FnMut(&[u8])) -> anyhow::Result<()> {
        match self {
            BodyDecoder::Chunked(decoder) => decoder.feed(bytes, on_body),
            BodyDecoder::Identity => {
                on_body(bytes);
                Ok(())
            }
        }
    }
}

/// A whole small response (for `/api/symbols`), read to the end.
pub async fn get_body(
    stream: &mut TcpStream,
    host: &str,
    path: &str,
) -> anyhow::Result<(u16, Vec<u8>)> {
    write_get(stream, host, path, &[("Connection", "close")]).await?;
    let head = read_head(stream).await?;
    let mut decoder = BodyDecoder::for_head(&head);
    let mut body = Vec::new();
    decoder.feed(&head.body_start, |bytes| body.extend_from_slice(bytes))?;
    let mut buffer = BytesMut::with_capacity(8192);
    while stream.read_buf(&mut buffer).await? > 0 {
        decoder.feed(&buffer, |bytes| body.extend_from_slice(bytes))?;
        buffer.clear();
        if let BodyDecoder::Chunked(chunked) = &decoder
            && chunked.is_done()
        {
            break;
        }
    }
    Ok((head.status, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_streaming_head() {
        let head = parse_head(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n",
            BytesMut::from(&b"5\r\n"[..]),
        )
        .unwrap();
        assert_eq!(head.status, 200);
        assert!(head.chunked);
        assert_eq!(head.content_type, "text/event-stream");
        assert_eq!(&head.body_start[..], b"5\r\n");
        assert!(parse_head(b"garbage\r\n\r\n", BytesMut::new()).is_err());
    }
}
