//! An incremental decoder of HTTP/1.1 `Transfer-Encoding: chunked` bodies:
//! a streaming response (an SSE stream from hyper) arrives as
//! `<hex size>\r\n<bytes>\r\n` pieces split anywhere by TCP.

use anyhow::{Context, bail};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading the hex size line (extensions after `;` are ignored).
    Size,
    /// Inside a chunk, with this many bytes to go.
    Data(u64),
    /// After a chunk's bytes: expecting its CRLF.
    DataEnd,
    /// After the zero-size chunk: trailer lines up to an empty one.
    Trailer,
    Done,
}

/// Decoder state that survives read boundaries.
#[derive(Debug)]
pub struct ChunkedDecoder {
    state: State,
    /// The unfinished size, CRLF or trailer line.
    line: Vec<u8>,
}

impl Default for ChunkedDecoder {
    fn default() -> Self {
        ChunkedDecoder {
            state: State::Size,
            line: Vec::new(),
        }
    }
}

impl ChunkedDecoder {
    /// A decoder at the start of a body.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the final chunk and trailer have been read: the body is over.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Decodes `input`, passing every piece of body to `on_body`.
    pub fn feed(&mut self, mut input: &[u8], mut on_body: impl FnMut(&[u8])) -> anyhow::Result<()> {
        while !input.is_empty() {
            match self.state {
                State::Data(remaining) => {
                    let take = remaining.min(input.len() as u64) as usize;
                    on_body(&input[..take]);
                    input = &input[take..];
                    self.state = match remaining - take as u64 {
                        0 => State::DataEnd,
                        left => State::Data(left),
                    };
                }
                State::Done => bail!("bytes after the end of a chunked body"),
                State::Size | State::DataEnd | State::Trailer => {
                    let Some(end) = memchr::memchr(b'\n', input) else {
                        self.line.extend_from_slice(input);
                        if self.line.len() > 4096 {
                            bail!("chunk framing line longer than 4 KiB");
                        }
                        return Ok(());
                    };
                    self.line.extend_from_slice(&input[..end]);
                    input = &input[end + 1..];
                    let line = std::mem::take(&mut self.line);
                    let line = line.strip_suffix(b"\r").unwrap_or(&line);
                    self.state = self.after_line(line)?;
                }
            }
        }
        Ok(())
    }

    fn after_line(&self, line: &[u8]) -> anyhow::Result<State> {
        Ok(match self.state {
            State::Size => {
                let text = std::str::from_utf8(line).context("chunk size is not text")?;
                let hex = text.split(';').next().unwrap_or("").trim();
                let size = u64::from_str_radix(hex, 16)
                    .with_context(|| format!("bad chunk size {text:?}"))?;
                if size == 0 {
                    State::Trailer
                } else {
                    State::Data(size)
                }
            }
            State::DataEnd if line.is_empty() => State::Size,
            State::DataEnd => bail!("chunk not followed by CRLF"),
            State::Trailer if line.is_empty() => State::Done,
            State::Trailer => State::Trailer,
            State::Data(_) | State::Done => unreachable!("lines are read only between chunks"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(pieces: &[&[u8]]) -> anyhow::Result<(Vec<u8>, bool)> {
        let mut decoder = ChunkedDecoder::new();
        let mut body = Vec::new();
        for piece in pieces {
            decoder.feed(piece, |bytes| body.extend_from_slice(bytes))?;
        }
        Ok((body, decoder.is_done()))
    }

    const BODY: &[u8] =
        b"5\r\nhello\r\n1;ext=1\r\n \r\nA\r\n0123456789\r\n0\r\nX-Trailer: 1\r\n\r\n";

    #[test]
    fn decodes_at_every_split() {
        for split in 0..=BODY.len() {
            let (head, tail) = BODY.split_at(split);
            assert_eq!(
                decode(&[head, tail]).unwrap(),
                (b"hello 0123456789".to_vec(), true),
                "{split}"
            );
        }
        let bytes: Vec<&[u8]> = BODY.chunks(1).collect();
        assert_eq!(decode(&bytes).unwrap().0, b"hello 0123456789");
    }

    #[test]
    fn an_open_stream_is_not_done() {
        let (body, done) = decode(&[b"3\r\nabc\r\n2\r\nd"]).unwrap();
        assert_eq!(body, b"abcd");
        assert!(!done);
    }

    #[test]
    fn rejects_broken_framing() {
        assert!(decode(&[b"zz\r\n"]).is_err());
        assert!(decode(&[b"1\r\nab\r\n"]).is_err());
        assert!(decode(&[b"0\r\n\r\nmore"]).is_err());
        assert!(decode(&[&[b'1'; 5000]]).is_err());
    }
}
