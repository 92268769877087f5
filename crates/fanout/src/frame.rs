//! WebSocket frames as a server sends them (RFC 6455, section 5.2):
//! unmasked, so one encoding serves every socket. Each function returns
//! the complete frame, header and payload, ready to be written.

use bytes::{BufMut, Bytes, BytesMut};

/// Opcodes of the frames a server sends.
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

fn encode(opcode: u8, payload: &[u8]) -> Bytes {
    let mut frame = BytesMut::with_capacity(10 + payload.len());
    frame.put_u8(FIN | opcode);
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
    fn control_frames_fit_their_bound() {
        assert_eq!(&ping()[..], &[0x89, 0]);
        let close = close(1013, &"é".repeat(100));
        assert_eq!(close[0], 0x88);
        assert!(close[1] <= 125, "{}", close[1]);
        assert_eq!(&close[2..4], &1013u16.to_be_bytes());
        assert!(std::str::from_utf8(&close[4..]).is_ok());
    }
}
