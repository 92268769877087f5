//! Property tests over arbitrary input for the codecs the load generator
//! reads servers with (`wire_clients::codec`, and its own probes and
//! stamps): a server under test may send anything, and a measurement must
//! not panic on it or depend on how TCP split the bytes. Never a panic, nothing kept
//! beyond the input, the same items however the input is cut, and every
//! encoder's output decodes back to what was encoded.
//!
//! `PROPTEST_CASES` sets the number of cases (256 by default, as in
//! `cargo test`; `scripts/fuzz.sh` runs many more).
// Test code: a failed unwrap is a failed test, with its message.
#![allow(clippy::unwrap_used)]

use loadgen::codec::probe;
use loadgen::codec::stamp::Stamp;
use proptest::prelude::*;
use wire_clients::codec::chunked::ChunkedDecoder;
use wire_clients::codec::socketio::{self, Inbound};
use wire_clients::codec::sse::{SseItem, SseParser};

/// An owned copy of what the SSE parser hands out.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Item {
    Event {
        event: String,
        data: String,
        id: String,
    },
    Comment(String),
    Retry(u64),
}

fn sse_items(chunks: &[&[u8]]) -> Vec<Item> {
    let mut parser = SseParser::new();
    let mut items = Vec::new();
    for chunk in chunks {
        parser.feed(chunk, |item| {
            items.push(match item {
                SseItem::Event { event, data, id } => Item::Event {
                    event: event.to_owned(),
                    data: data.to_owned(),
                    id: id.to_owned(),
                },
                SseItem::Comment(text) => Item::Comment(text.to_owned()),
                SseItem::Retry(millis) => Item::Retry(millis),
            })
        });
    }
    items
}

/// Bytes that look like an event stream more often than random bytes do.
fn sse_like() -> impl Strategy<Value = Vec<u8>> {
    let token = prop_oneof![
        Just(b"data: ".to_vec()),
        Just(b"data:".to_vec()),
        Just(b"event: tick".to_vec()),
        Just(b"id: 1-2".to_vec()),
        Just(b"retry: 1000".to_vec()),
        Just(b": keep-alive".to_vec()),
        Just(b"\n".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b"\r".to_vec()),
        Just("é日".as_bytes().to_vec()),
        prop::collection::vec(any::<u8>(), 0..12),
    ];
    prop::collection::vec(token, 0..40).prop_map(|tokens| tokens.concat())
}

/// `bytes` cut at the given points.
fn cut<'a>(bytes: &'a [u8], points: &[prop::sample::Index]) -> Vec<&'a [u8]> {
    let mut points: Vec<usize> = points.iter().map(|p| p.index(bytes.len() + 1)).collect();
    points.sort_unstable();
    let mut pieces = Vec::new();
    let mut start = 0;
    for point in points {
        pieces.push(&bytes[start..point]);
        start = point;
    }
    pieces.push(&bytes[start..]);
    pieces
}

/// A body in chunked transfer encoding, with the given chunk sizes.
fn chunked(body: &[u8], sizes: &[usize], extension: bool) -> Vec<u8> {
    let mut encoded = Vec::new();
    let mut rest = body;
    let mut sizes = sizes.iter().cycle();
    while !rest.is_empty() {
        let size = (*sizes.next().unwrap_or(&1)).clamp(1, rest.len());
        let ext = if extension { ";name=value" } else { "" };
        encoded.extend_from_slice(format!("{size:x}{ext}\r\n").as_bytes());
        encoded.extend_from_slice(&rest[..size]);
        encoded.extend_from_slice(b"\r\n");
        rest = &rest[size..];
    }
    encoded.extend_from_slice(b"0\r\n\r\n");
    encoded
}

proptest! {
    #[test]
    fn sse_items_do_not_depend_on_how_the_bytes_were_cut(
        stream in sse_like(),
        points in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
    ) {
        let whole = sse_items(&[&stream]);
        let pieces = cut(&stream, &points);
        prop_assert_eq!(sse_items(&pieces), whole.clone());
        let byte_by_byte: Vec<&[u8]> = stream.chunks(1).collect();
        prop_assert_eq!(sse_items(&byte_by_byte), whole.clone());
        for item in whole {
            if let Item::Event { data, .. } = item {
                // Replacement characters may grow invalid bytes threefold.
                prop_assert!(data.len() <= 3 * stream.len());
            }
        }
    }

    #[test]
    fn sse_events_written_by_the_rules_come_back(
        events in prop::collection::vec(("[a-z]{0,8}", prop::collection::vec("[ -~é]{0,30}", 1..4), "[0-9]{1,5}-[0-9]{1,3}"), 0..6),
        points in prop::collection::vec(any::<prop::sample::Index>(), 0..6),
    ) {
        let mut stream = String::new();
        let mut expected = Vec::new();
        for (event, lines, id) in &events {
            if !event.is_empty() {
                stream.push_str(&format!("event: {event}\n"));
            }
            stream.push_str(&format!("id: {id}\n"));
            for line in lines {
                stream.push_str(&format!("data: {line}\n"));
            }
            stream.push('\n');
            expected.push(Item::Event {
                event: if event.is_empty() { "message".into() } else { event.clone() },
                data: lines.join("\n"),
                id: id.clone(),
            });
        }
        prop_assert_eq!(sse_items(&cut(stream.as_bytes(), &points)), expected);
    }

    #[test]
    fn a_chunked_body_decodes_whole_however_it_arrives(
        body in prop::collection::vec(any::<u8>(), 0..2000),
        sizes in prop::collection::vec(1usize..700, 1..5),
        extension in any::<bool>(),
        points in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
    ) {
        let encoded = chunked(&body, &sizes, extension);
        let mut decoder = ChunkedDecoder::new();
        let mut decoded = Vec::new();
        for piece in cut(&encoded, &points) {
            decoder.feed(piece, |bytes| decoded.extend_from_slice(bytes)).unwrap();
        }
        prop_assert!(decoder.is_done());
        prop_assert_eq!(decoded, body);
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_chunked_decoder(
        input in prop::collection::vec(any::<u8>(), 0..600),
        points in prop::collection::vec(any::<prop::sample::Index>(), 0..4),
    ) {
        let mut decoder = ChunkedDecoder::new();
        let mut decoded = 0;
        for piece in cut(&input, &points) {
            if decoder.feed(piece, |bytes| decoded += bytes.len()).is_err() {
                break;
            }
        }
        prop_assert!(decoded <= input.len());
    }

    #[test]
    fn socketio_frames_of_any_text_decode_without_panic(frame in "\\PC{0,60}|[0-4]{1,3}[0-9/,]{0,6}\\PC{0,20}") {
        match socketio::decode(&frame) {
            Inbound::Open(json) | Inbound::Connected(json) | Inbound::ConnectError(json) | Inbound::Other(json) => {
                prop_assert!(frame.ends_with(json));
            }
            Inbound::Event { payload, .. } | Inbound::Ack { payload, .. } => {
                prop_assert!(frame.ends_with(payload));
                if let Some(name) = socketio::event_name(payload) {
                    prop_assert!(payload.contains(name));
                }
                // The probes read server payloads without a JSON parser.
                let _ = probe::room_message(payload);
                let _ = probe::ack(payload);
            }
            Inbound::Close | Inbound::Ping | Inbound::Pong | Inbound::Disconnect => {}
        }
        let _ = probe::raw_field(&frame, "ts");
        let _ = probe::is_ws_presence_notice(&frame);
    }

    #[test]
    fn an_encoded_event_decodes_to_itself(
        ack_id in prop::option::of(any::<u64>()),
        event in "[a-z_]{1,12}",
        text in "\\PC{0,40}",
    ) {
        let frame = socketio::encode_event(ack_id, &event, &serde_json::json!({"room": "r", "text": text}));
        match socketio::decode(&frame) {
            Inbound::Event { ack_id: decoded_id, payload } => {
                prop_assert_eq!(decoded_id, ack_id);
                prop_assert_eq!(socketio::event_name(payload), Some(event.as_str()));
                let value: serde_json::Value = serde_json::from_str(payload).unwrap();
                prop_assert_eq!(value[1]["text"].as_str(), Some(text.as_str()));
            }
            other => prop_assert!(false, "{frame} decoded as {other:?}"),
        }
    }

    #[test]
    fn stamps_round_trip_and_foreign_text_is_not_a_stamp(
        sender in any::<u32>(),
        seq in any::<u32>(),
        sent_micros in any::<u64>(),
        min_len in 0usize..200,
        foreign in "\\PC{0,40}",
    ) {
        let stamp = Stamp { sender, seq, sent_micros };
        let text = stamp.to_text(min_len);
        prop_assert!(text.len() >= min_len.saturating_sub(1));
        prop_assert_eq!(Stamp::parse(&text), Some(stamp));
        if let Some(parsed) = Stamp::parse(&foreign) {
            // Only text that starts with three numbers is read as a stamp.
            let head = foreign.split(' ').next().unwrap();
            let fields: Vec<&str> = head.split(':').collect();
            prop_assert_eq!(fields.len(), 3);
            prop_assert_eq!(fields[0].parse::<u32>().ok(), Some(parsed.sender));
            prop_assert_eq!(fields[2].parse::<u64>().ok(), Some(parsed.sent_micros));
        }
    }
}
