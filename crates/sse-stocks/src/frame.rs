//! How events are written on the wire (the `text/event-stream` format). Every
//! frame is built here once and then shared, byte for byte, by every stream.

use crate::event_id::EventId;
use bytes::{BufMut, Bytes, BytesMut};
use std::time::Duration;

/// Sent after a stretch of silence so proxies and clients see the stream alive.
pub const KEEPALIVE: Bytes = Bytes::from_static(b": keep-alive\n\n");

/// `retry: <ms>`: how long the client waits before reconnecting.
pub fn retry(delay: Duration) -> Bytes {
    Bytes::from(format!("retry: {}\n\n", delay.as_millis()))
}

/// One complete event: `id:` (if any), `event:`, one `data:` line per line of
/// `data`, and the blank line that ends it.
pub fn event(id: Option<EventId>, event: &str, data: &str) -> Bytes {
    let mut frame = BytesMut::with_capacity(data.len() + event.len() + 48);
    write_event(&mut frame, id, event, data);
    frame.freeze()
}

/// Appends one event to `frame` (to build several events in one write).
pub fn write_event(frame: &mut BytesMut, id: Option<EventId>, event: &str, data: &str) {
    if let Some(id) = id {
        // An EventId is digits and a dash: nothing to strip.
        frame.put_slice(format!("id: {id}\n").as_bytes());
    }
    frame.put_slice(b"event: ");
    put_single_line(frame, event);
    frame.put_u8(b'\n');
    // A line break inside `data` would end the field early: each line of the
    // payload becomes its own `data:` line, which the client joins again.
    for line in data.split('\n') {
        frame.put_slice(b"data: ");
        frame.put_slice(line.trim_end_matches('\r').as_bytes());
        frame.put_u8(b'\n');
    }
    frame.put_u8(b'\n');
}

/// Writes `text` without CR or LF, which would start a new field.
fn put_single_line(frame: &mut BytesMut, text: &str) {
    for part in text.split(['\r', '\n']) {
        frame.put_slice(part.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_has_id_name_data_and_a_blank_line() {
        let frame = event(Some(EventId::new(5, 1)), "tick", r#"{"a":1}"#);
        assert_eq!(&frame[..], b"id: 5-1\nevent: tick\ndata: {\"a\":1}\n\n");
        let frame = event(None, "snapshot", "[]");
        assert_eq!(&frame[..], b"event: snapshot\ndata: []\n\n");
    }

    #[test]
    fn line_breaks_cannot_inject_fields() {
        let frame = event(None, "ti\r\nck\nid: 9", "a\r\nb\nc");
        assert_eq!(
            &frame[..],
            b"event: tickid: 9\ndata: a\ndata: b\ndata: c\n\n"
        );
    }

    #[test]
    fn retry_and_keepalive() {
        assert_eq!(&retry(Duration::from_millis(1500))[..], b"retry: 1500\n\n");
        assert_eq!(&KEEPALIVE[..], b": keep-alive\n\n");
    }
}
