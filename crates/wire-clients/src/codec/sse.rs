//! An incremental Server-Sent Events parser, as the WHATWG "event stream
//! interpretation" describes it: bytes arrive in arbitrary chunks, lines end
//! in CRLF, LF or CR, `data:` lines accumulate, a blank line dispatches.
//!
//! It allocates nothing per event: the field buffers are reused, and the
//! caller sees borrowed views of them.

/// What the stream told us, handed to the caller one item at a time.
#[derive(Debug, PartialEq, Eq)]
pub enum SseItem<'a> {
    /// A dispatched event. `id` is the stream's last event id at dispatch
    /// time (it persists across events, as in `EventSource.lastEventId`).
    Event {
        /// The `event:` field, `message` when the event had none.
        event: &'a str,
        /// The `data:` lines, joined by newlines.
        data: &'a str,
        /// The last event id.
        id: &'a str,
    },
    /// A comment line (`: keep-alive`), without the colon and leading space.
    Comment(&'a str),
    /// A valid `retry:` field, in milliseconds.
    Retry(u64),
}

/// Parser state that survives chunk boundaries.
#[derive(Debug, Default)]
pub struct SseParser {
    /// The bytes of the current, unfinished line.
    line: Vec<u8>,
    /// The last chunk ended in CR: an LF opening the next chunk is its pair.
    after_cr: bool,
    event: String,
    data: String,
    /// Whether any `data:` field was seen since the last dispatch.
    has_data: bool,
    last_event_id: String,
}

impl SseParser {
    /// A parser at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// The id of the last event that carried one (for `Last-Event-ID`).
    pub fn last_event_id(&self) -> &str {
        &self.last_event_id
    }

    /// Feeds one chunk of the body; calls `on_item` for every complete item.
    pub fn feed(&mut self, mut chunk: &[u8], mut on_item: impl FnMut(SseItem<'_>)) {
        // An empty chunk must not forget a CR that ended the previous one.
        if chunk.is_empty() {
            return;
        }
        if self.after_cr && chunk.first() == Some(&b'\n') {
            chunk = &chunk[1..];
        }
        self.after_cr = false;
        while let Some(end) = memchr::memchr2(b'\n', b'\r', chunk) {
            let terminator = chunk[end];
            if self.line.is_empty() {
                self.process_line(&chunk[..end], &mut on_item);
            } else {
                self.line.extend_from_slice(&chunk[..end]);
                let line = std::mem::take(&mut self.line);
                self.process_line(&line, &mut on_item);
                self.line = line;
                self.line.clear();
            }
            chunk = &chunk[end + 1..];
            if terminator == b'\r' {
                match chunk.first() {
                    Some(b'\n') => chunk = &chunk[1..],
                    Some(_) => {}
                    None => self.after_cr = true,
                }
            }
        }
        self.line.extend_from_slice(chunk);
    }

    fn process_line(&mut self, line: &[u8], on_item: &mut impl FnMut(SseItem<'_>)) {
        // Invalid UTF-8 is replaced, as a browser decoder would.
        let line = String::from_utf8_lossy(line);
        if line.is_empty() {
            self.dispatch(on_item);
            return;
        }
        if let Some(comment) = line.strip_prefix(':') {
            on_item(SseItem::Comment(
                comment.strip_prefix(' ').unwrap_or(comment),
            ));
            return;
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line.as_ref(), ""),
        };
        match field {
            "event" => {
                self.event.clear();
                self.event.push_str(value);
            }
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            "id" if !value.contains('\0') => {
                self.last_event_id.clear();
                self.last_event_id.push_str(value);
            }
            "retry" if !value.is_empty() && value.bytes().all(|byte| byte.is_ascii_digit()) => {
                if let Ok(millis) = value.parse() {
                    on_item(SseItem::Retry(millis));
                }
            }
            _ => {} // Unknown fields are ignored, as the specification says.
        }
    }

    fn dispatch(&mut self, on_item: &mut impl FnMut(SseItem<'_>)) {
        if self.has_data {
            let event = if self.event.is_empty() {
                "message"
            } else {
                &self.event
            };
            on_item(SseItem::Event {
                event,
                data: &self.data,
                id: &self.last_event_id,
            });
        }
        self.event.clear();
        self.data.clear();
        self.has_data = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Everything the parser produced, owned, for comparison.
    #[derive(Debug, PartialEq, Eq)]
    enum Owned {
        Event(String, String, String),
        Comment(String),
        Retry(u64),
    }

    fn parse_in_chunks(chunks: &[&[u8]]) -> Vec<Owned> {
        let mut parser = SseParser::new();
        let mut items = Vec::new();
        for chunk in chunks {
            parser.feed(chunk, |item| {
                items.push(match item {
                    SseItem::Event { event, data, id } => {
                        Owned::Event(event.into(), data.into(), id.into())
                    }
                    SseItem::Comment(text) => Owned::Comment(text.into()),
                    SseItem::Retry(millis) => Owned::Retry(millis),
                })
            });
        }
        items
    }

    fn event(event: &str, data: &str, id: &str) -> Owned {
        Owned::Event(event.into(), data.into(), id.into())
    }

    const STREAM: &[u8] = b"retry: 3000\n\nevent: snapshot\ndata: [1,2]\n\n: keep-alive\n\nid: 7\nevent: tick\ndata: {\"a\":1}\n\nid: 8\nevent: tick\ndata:x\ndata: y\n\n";

    fn expected_stream() -> Vec<Owned> {
        vec![
            Owned::Retry(3000),
            event("snapshot", "[1,2]", ""),
            Owned::Comment("keep-alive".into()),
            event("tick", "{\"a\":1}", "7"),
            event("tick", "x\ny", "8"),
        ]
    }

    #[test]
    fn parses_a_whole_stream() {
        assert_eq!(parse_in_chunks(&[STREAM]), expected_stream());
    }

    #[test]
    fn every_chunk_boundary_gives_the_same_items() {
        for split in 0..=STREAM.len() {
            let (head, tail) = STREAM.split_at(split);
            assert_eq!(parse_in_chunks(&[head, tail]), expected_stream(), "{split}");
        }
        let bytes: Vec<&[u8]> = STREAM.chunks(1).collect();
        assert_eq!(parse_in_chunks(&bytes), expected_stream());
    }

    #[test]
    fn crlf_and_cr_line_endings_are_lines_too() {
        let crlf = String::from_utf8(STREAM.to_vec())
            .unwrap()
            .replace('\n', "\r\n");
        let cr = String::from_utf8(STREAM.to_vec())
            .unwrap()
            .replace('\n', "\r");
        for text in [crlf, cr] {
            for split in 0..=text.len() {
                let (head, tail) = text.as_bytes().split_at(split);
                assert_eq!(parse_in_chunks(&[head, tail]), expected_stream(), "{split}");
            }
        }
    }

    #[test]
    fn follows_the_specification_edge_cases() {
        let items = parse_in_chunks(&[
            b"data\n\ndata:  two spaces\n\nevent: lonely\n\nid: 1\0\ndata: a\n\nretry: 12x\nfoo: bar\ndata: b\n\nid\ndata: c\n\n",
        ]);
        assert_eq!(
            items,
            vec![
                event("message", "", ""),
                event("message", " two spaces", ""),
                // `event:` without data dispatches nothing; an id with NUL is ignored.
                event("message", "a", ""),
                event("message", "b", ""),
                // A bare `id` resets the last event id.
                event("message", "c", ""),
            ]
        );
    }

    #[test]
    fn last_event_id_persists_and_an_unfinished_event_is_not_dispatched() {
        let mut parser = SseParser::new();
        let mut events = 0;
        parser.feed(b"id: 41\ndata: a\n\ndata: b\n", |_| events += 1);
        assert_eq!(events, 1);
        assert_eq!(parser.last_event_id(), "41");
    }
}
