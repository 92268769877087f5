//! WebSocket frames as a server sends them (RFC 6455, section 5.2):
//! unmasked, so one encoding serves every socket. Each function returns
//! the complete frame, header and payload, ready to be written.
//!
//! A large message (a chat's welcome lists every user) is written as
//! fragments of at most `FRAGMENT_BYTES` ([`FragmentWriter`]), which
//! every client joins back into one message: a single large allocation
//! per newcomer would leave the allocator holding pages long after it was
//! freed, while fragment-sized ones are reused at once.

use bytes::{BufMut, Bytes, BytesMut};
use std::io;

/// The largest payload of one fragment of a large message.
pub(crate) const FRAGMENT_BYTES: usize = 1024;

/// Opcodes of the frames a server sends.
const CONTINUATION: u8 = 0x0;
const TEXT: u8 = 0x1;
const CLOSE: u8 = 0x8;
const PING: u8 = 0x9;

/// The bit that ends a message in one frame.
const FIN: u8 = 0x80;

/// A whole text message in one frame. `payload` must be UTF-8, which the
/// caller's serializer guarantees.
pub fn text(payload: &[u8]) -> Bytes {
    encode(TEXT, payload)
}

/// A ping with an empty payload.
pub fn ping() -> Bytes {
    encode(PING, &[])
}

/// A close frame with `code` and `reason` (cut to fit a control frame).
pub fn close(code: u16, reason: &str) -> Bytes {
    // A control frame's payload is at most 125 bytes: the code takes two.
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let mut payload = Vec::with_capacity(2 + end);
    payload.extend_from_slice(&code.to_be_bytes());
    payload.extend_from_slice(&reason.as_bytes()[..end]);
    encode(CLOSE, &payload)
}

/// Serializes a text message straight into fragment-sized pieces, then
/// gives them back as the frames of one message.
#[derive(Default)]
pub struct FragmentWriter {
    pieces: Vec<Bytes>,
    current: Vec<u8>,
}

impl FragmentWriter {
    /// The frames of the message written so far, in order: a text frame,
    /// then continuations, the last one final.
    pub fn into_frames(mut self) -> Vec<Bytes> {
        if !self.current.is_empty() || self.pieces.is_empty() {
            self.pieces
                .push(Bytes::from(std::mem::take(&mut self.current)));
        }
        let last = self.pieces.len() - 1;
        self.pieces
            .iter()
            .enumerate()
            .map(|(index, piece)| {
                let opcode = if index == 0 { TEXT } else { CONTINUATION };
                encode_fragment(opcode, piece, index == last)
            })
            .collect()
    }
}

impl io::Write for FragmentWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.current.len() == FRAGMENT_BYTES {
            let full = std::mem::replace(&mut self.current, Vec::with_capacity(FRAGMENT_BYTES));
            self.pieces.push(Bytes::from(full));
        }
        if self.current.capacity() == 0 {
            self.current.reserve_exact(FRAGMENT_BYTES);
        }
        let taken = buf.len().min(FRAGMENT_BYTES - self.current.len());
        self.current.extend_from_slice(&buf[..taken]);
        Ok(taken)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn encode(opcode: u8, payload: &[u8]) -> Bytes {
    encode_fragment(opcode, payload, true)
}

fn encode_fragment(opcode: u8, payload: &[u8], last: bool) -> Bytes {
    let mut frame = BytesMut::with_capacity(10 + payload.len());
    frame.put_u8(if last { FIN | opcode } else { opcode });
    match payload.len() {
        len @ 0..=125 => frame.put_u8(len as u8),
        len @ 126..=0xFFFF => {
            frame.put_u8(126);
            frame.put_u16(len as u16);
        }
        len => {
            frame.put_u8(127);
            frame.put_u64(len as u64);
        }
    }
    frame.put_slice(payload);
    frame.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_take_the_shortest_form() {
        assert_eq!(&text(b"hi")[..], b"\x81\x02hi");
        let medium = text(&[b'a'; 300]);
        assert_eq!(&medium[..4], &[0x81, 126, 0x01, 0x2C]);
        assert_eq!(medium.len(), 4 + 300);
        let large = text(&vec![b'a'; 70_000]);
        assert_eq!(&large[..2], &[0x81, 127]);
        assert_eq!(&large[2..10], &70_000u64.to_be_bytes());
        assert_eq!(large.len(), 10 + 70_000);
    }

    #[test]
    fn a_large_message_goes_out_in_fragments_that_join_back() {
        use std::io::Write;
        let message = "x".repeat(FRAGMENT_BYTES * 2 + 10);
        let mut writer = FragmentWriter::default();
        writer.write_all(message.as_bytes()).unwrap();
        let frames = writer.into_frames();
        assert_eq!(frames.len(), 3);
        assert_eq!(frames[0][0], 0x01, "text, not final");
        assert_eq!(frames[1][0], 0x00, "continuation, not final");
        assert_eq!(frames[2][0], 0x80, "continuation, final");
        let payload = |frame: &Bytes| match frame[1] {
            126 => frame.slice(4..),
            _ => frame.slice(2..),
        };
        let joined: Vec<u8> = frames.iter().flat_map(payload).collect();
        assert_eq!(joined, message.as_bytes());
        let mut small = FragmentWriter::default();
        small.write_all(b"{}").unwrap();
        assert_eq!(&small.into_frames()[0][..], b"\x81\x02{}");
    }

    #[test]
    fn control_frames_fit_their_bound() {
        assert_eq!(&ping()[..], &[0x89, 0]);
        let close = close(1013, &"é".repeat(100));
        assert_eq!(close[0], 0x88);
        assert!(close[1] <= 125, "{}", close[1]);
        assert_eq!(&close[2..4], &1013u16.to_be_bytes());
        assert!(std::str::from_utf8(&close[4..]).is_ok());
    }
}
