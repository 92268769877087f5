//! Outgoing text frames as WebSocket fragments of at most
//! [`FRAGMENT_BYTES`] each.
//!
//! tungstenite copies every frame into a per-socket write buffer that keeps
//! its largest size for the life of the socket, and a `welcome` lists every
//! user: with ten thousand users it is hundreds of KiB. Sent whole, it would
//! leave that much behind in every socket; sent in fragments (which every
//! WebSocket client joins back into one message), the buffer stays small.
//! The welcome is also serialized straight into fragment-sized pieces, so
//! a newcomer never costs the server one large allocation either.

use bytes::{Bytes, BytesMut};
use std::io;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};

/// The largest fragment the server writes. The write buffer also writes out
/// once it holds this much, so the buffer every socket keeps for good is
/// about two fragments large.
pub const FRAGMENT_BYTES: usize = 512;

/// The frames of one text message made of `pieces`, in order.
pub fn text_frames<I>(pieces: I) -> impl Iterator<Item = Message>
where
    I: ExactSizeIterator<Item = Bytes>,
{
    let last = pieces.len().saturating_sub(1);
    pieces.enumerate().map(move |(index, piece)| {
        let opcode = if index == 0 {
            Data::Text
        } else {
            Data::Continue
        };
        Message::Frame(Frame::message(piece, OpCode::Data(opcode), index == last))
    })
}

/// `bytes` cut into fragment-sized pieces that share its memory.
pub fn pieces(bytes: &Bytes) -> impl ExactSizeIterator<Item = Bytes> + '_ {
    let count = bytes.len().div_ceil(FRAGMENT_BYTES).max(1);
    (0..count).map(move |index| {
        let start = index * FRAGMENT_BYTES;
        bytes.slice(start..(start + FRAGMENT_BYTES).min(bytes.len()))
    })
}

/// An `io::Write` that cuts what is written into fragment-sized pieces.
#[derive(Default)]
pub struct PieceWriter {
    done: Vec<Bytes>,
    current: BytesMut,
}

impl PieceWriter {
    pub fn into_pieces(mut self) -> Vec<Bytes> {
        if !self.current.is_empty() || self.done.is_empty() {
            self.done.push(self.current.freeze());
        }
        self.done
    }
}

impl io::Write for PieceWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.current.len() == FRAGMENT_BYTES {
            let full =
                std::mem::replace(&mut self.current, BytesMut::with_capacity(FRAGMENT_BYTES));
            self.done.push(full.freeze());
        }
        if self.current.capacity() == 0 {
            self.current.reserve(FRAGMENT_BYTES);
        }
        let taken = buf.len().min(FRAGMENT_BYTES - self.current.len());
        self.current.extend_from_slice(&buf[..taken]);
        Ok(taken)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn pieces_cover_the_bytes_in_order() {
        let len = FRAGMENT_BYTES * 2 + FRAGMENT_BYTES / 2;
        let bytes = Bytes::from((0..len).map(|n| n as u8).collect::<Vec<_>>());
        let pieces: Vec<Bytes> = pieces(&bytes).collect();
        assert_eq!(pieces.len(), 3);
        assert_eq!(pieces.concat(), bytes.to_vec());
        assert_eq!(super::pieces(&Bytes::from_static(b"{}")).len(), 1);
    }

    #[test]
    fn the_writer_cuts_at_the_fragment_size() {
        let mut writer = PieceWriter::default();
        let data = vec![7u8; FRAGMENT_BYTES * 2 + 10];
        writer.write_all(&data[..5]).unwrap();
        writer.write_all(&data[5..]).unwrap();
        let pieces = writer.into_pieces();
        let sizes: Vec<usize> = pieces.iter().map(Bytes::len).collect();
        assert_eq!(sizes, [FRAGMENT_BYTES, FRAGMENT_BYTES, 10]);
        assert_eq!(pieces.concat(), data);
    }

    #[test]
    fn only_the_last_frame_is_final_and_only_the_first_says_text() {
        let long = vec![b'x'; FRAGMENT_BYTES * 2 + FRAGMENT_BYTES / 2];
        let frames: Vec<Message> = text_frames(pieces(&Bytes::from(long))).collect();
        assert_eq!(frames.len(), 3);
        for (index, frame) in frames.iter().enumerate() {
            let Message::Frame(frame) = frame else {
                panic!("raw frames expected")
            };
            assert_eq!(frame.header().is_final, index == 2);
            let expected = if index == 0 {
                Data::Text
            } else {
                Data::Continue
            };
            assert_eq!(frame.header().opcode, OpCode::Data(expected));
        }
    }
}
