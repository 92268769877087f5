//! An SSE client stream, as `EventSource` opens one: `GET` with
//! `Accept: text/event-stream` (and `Last-Event-ID` to resume), a `200`
//! with the `text/event-stream` content type, then the body de-chunked
//! and parsed as it arrives.
//!
//! Reading and parsing are two calls, so that a reader can race the read
//! against its timers in `select!` and parse outside it; parsing hands out
//! borrowed items and allocates nothing per event. A reader that wants
//! events one at a time, owned, asks [`EventStream::next_event`] instead.

use crate::codec::sse::{SseItem, SseParser};
use crate::http::{self, BodyDecoder};
use anyhow::{Context, bail};
use bytes::BytesMut;
use std::collections::VecDeque;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// The media type of an event stream.
pub const CONTENT_TYPE: &str = "text/event-stream";

/// One dispatched event, owned (comments and `retry` are not events).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The `event:` field, `message` when the server named none.
    pub event: String,
    /// The `data:` lines, joined by newlines.
    pub data: String,
    /// The stream's last event id when this one was dispatched.
    pub id: String,
}

/// One open event stream.
#[derive(Debug)]
pub struct EventStream {
    socket: TcpStream,
    decoder: BodyDecoder,
    parser: SseParser,
    /// Body bytes read and not parsed yet.
    buffer: BytesMut,
    /// Events parsed by [`EventStream::next_event`] and not handed out yet.
    pending: VecDeque<Event>,
}

impl EventStream {
    /// Sends `GET path` over `socket` with `headers` besides `Host` and
    /// `Accept`; anything but a `200` event stream is an error.
    pub async fn open(
        mut socket: TcpStream,
        host: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> anyhow::Result<EventStream> {
        let mut all = Vec::with_capacity(headers.len() + 1);
        all.push(("Accept", CONTENT_TYPE));
        all.extend_from_slice(headers);
        http::write_get(&mut socket, host, path, &all).await?;
        let head = http::read_head(&mut socket).await?;
        if head.status != 200 {
            bail!("GET {path} answered {}", head.status);
        }
        // Parameters (`; charset=utf-8`) may follow the media type.
        let media_type = head.content_type.split(';').next().unwrap_or("").trim();
        if !media_type.eq_ignore_ascii_case(CONTENT_TYPE) {
            bail!(
                "GET {path} answered {:?}, not an event stream",
                head.content_type
            );
        }
        Ok(EventStream {
            socket,
            decoder: BodyDecoder::for_head(&head),
            parser: SseParser::new(),
            buffer: head.body_start,
            pending: VecDeque::new(),
        })
    }

    /// The next event, owned, however long it takes; `None` once the server
    /// ended the stream. Not for a reader that also calls
    /// [`EventStream::parse`], which would skip what this one keeps.
    pub async fn next_event(&mut self) -> anyhow::Result<Option<Event>> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Ok(Some(event));
            }
            if !self.has_buffered() && !self.read().await? {
                return Ok(None);
            }
            let pending = &mut self.pending;
            let parser = &mut self.parser;
            self.decoder.feed(&self.buffer, |body| {
                parser.feed(body, |item| {
                    if let SseItem::Event { event, data, id } = item {
                        pending.push_back(Event {
                            event: event.to_owned(),
                            data: data.to_owned(),
                            id: id.to_owned(),
                        });
                    }
                })
            })?;
            self.buffer.clear();
        }
    }

    /// Reads what the socket has into the buffer; `false` when the server
    /// ended the stream. Cancel-safe: bytes read are never lost.
    pub async fn read(&mut self) -> anyhow::Result<bool> {
        let read = self
            .socket
            .read_buf(&mut self.buffer)
            .await
            .context("reading the stream")?;
        Ok(read > 0)
    }

    /// Whether bytes wait in the buffer for [`EventStream::parse`].
    pub fn has_buffered(&self) -> bool {
        !self.buffer.is_empty()
    }

    /// Parses the buffered bytes, calling `on_item` for every complete item.
    pub fn parse(&mut self, mut on_item: impl FnMut(SseItem<'_>)) -> anyhow::Result<()> {
        let parser = &mut self.parser;
        self.decoder
            .feed(&self.buffer, |body| parser.feed(body, &mut on_item))?;
        self.buffer.clear();
        Ok(())
    }

    /// The id of the last event that carried one: where a new stream
    /// resumes (`Last-Event-ID`); empty before any.
    pub fn last_event_id(&self) -> &str {
        self.parser.last_event_id()
    }

    /// The socket, for a reader that ends it the hard way.
    pub fn socket(&self) -> &TcpStream {
        &self.socket
    }
}
