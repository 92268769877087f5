//! One client's event stream: `retry`, then a snapshot (or the replay of
//! what it missed, or a reset), then the live ticks of its symbols, with
//! keep-alive comments in silences, until the client leaves or the server
//! stops.
//!
//! The stream is polled only when the socket took the last write, so a
//! slow client simply falls behind in the hub's broadcast channel. When it
//! falls out of it, it catches up from the replay buffer, a chunk at a time
//! as its socket drains (as a resuming client does), and then goes live
//! again; only if the buffer no longer holds its last tick does it get
//! `reset` with a fresh snapshot. It never holds more than the chunk it is
//! writing.

use crate::cluster::Cluster;
use crate::event_id::EventId;
use crate::frame;
use crate::hub::{Batch, CatchUp, Hub, Opening, Resume, Update};
use crate::symbols::SymbolSet;
use bytes::{Bytes, BytesMut};
use futures::Stream;
use rand::Rng;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;

/// Ticks a catching-up stream takes from the replay buffer at a time: a
/// couple of seconds of feed, a few tens of kilobytes.
const CATCH_UP_TICKS: usize = 256;

/// How a stream is opened: which symbols, from where, and its timings.
pub struct StreamRequest {
    pub symbols: SymbolSet,
    pub resume: Resume,
    pub retry: Duration,
    pub max_age: Option<Duration>,
}

pub struct EventStream {
    hub: Arc<Hub>,
    symbols: SymbolSet,
    first: Option<Bytes>,
    /// Live updates; None while the stream catches up from the replay
    /// buffer (after a resume, or after falling behind the live updates).
    updates: Option<BroadcastStream<Update>>,
    /// The id of the last tick this stream wrote (or deliberately skipped):
    /// anything at or below it is never written again.
    last_sent: Option<EventId>,
    ends_at: Option<Instant>,
    _open: OpenStream,
}

impl EventStream {
    /// Subscribes a new stream. A resume id the hub no longer holds is
    /// looked up in Redis in cluster mode; otherwise the stream resets.
    pub async fn open(
        hub: Arc<Hub>,
        cluster: Option<&Cluster>,
        request: StreamRequest,
    ) -> EventStream {
        let opening = match hub.open(request.symbols, request.resume) {
            Ok(opening) => opening,
            Err(not_held) => {
                // From Redis up to its newest tick, not merely up to the
                // oldest tick of the replay buffer: that one is the next to
                // be dropped, and at a fast TICK_MS it (and the ticks after
                // it, published before `updates` was subscribed) could be
                // gone by the time the stream reads on, leaving a reset or a
                // gap. The subscription covers everything after the fetch,
                // and ticks at or below `last_sent` are never written twice.
                let replayed = match cluster {
                    Some(cluster) => cluster.ticks_between(not_held.from, None).await,
                    None => None,
                };
                match replayed {
                    Some(ticks) => hub.replayed_opening(
                        not_held.updates,
                        request.symbols,
                        not_held.from,
                        ticks,
                    ),
                    None => hub.reset_opening(request.symbols),
                }
            }
        };
        let Opening {
            first,
            updates,
            last_sent,
        } = opening;
        let mut rng = rand::rng();
        // Jitter: the clients of a stopped instance come back spread over
        // half a retry period, and streams of the same age end apart.
        let retry = request.retry + request.retry.mul_f64(rng.random_range(0.0..0.5));
        let ends_at = request
            .max_age
            .map(|max_age| Instant::now() + max_age.mul_f64(rng.random_range(1.0..1.1)));
        let mut head = BytesMut::with_capacity(first.len() + 16);
        head.extend_from_slice(&frame::retry(retry));
        head.extend_from_slice(&first);
        hub.metrics().core.messages_out.inc_by(count_events(&first));
        EventStream {
            symbols: request.symbols,
            first: Some(head.freeze()),
            updates: updates.map(BroadcastStream::new),
            last_sent,
            ends_at,
            _open: OpenStream::new(&hub),
            hub,
        }
    }

    /// The bytes this stream writes for `batch`, and how many events they hold.
    fn select(&mut self, batch: &Batch) -> Option<(Bytes, u64)> {
        let last_sent = self.last_sent;
        let is_new = |id: EventId| last_sent.is_none_or(|last| id > last);
        self.last_sent = self.last_sent.max(batch.last_id());
        let all_new = batch.ticks.first().is_some_and(|tick| is_new(tick.id));
        if all_new && self.symbols.is_superset_of(batch.symbols) {
            return Some((batch.all.clone(), batch.ticks.len() as u64));
        }
        let mut wanted = batch
            .ticks
            .iter()
            .filter(|tick| is_new(tick.id) && self.symbols.contains(tick.symbol));
        let first = wanted.next()?;
        let Some(second) = wanted.next() else {
            return Some((first.frame.clone(), 1));
        };
        let mut chunk = BytesMut::from(&first.frame[..]);
        chunk.extend_from_slice(&second.frame);
        let mut count = 2;
        for tick in wanted {
            chunk.extend_from_slice(&tick.frame);
            count += 1;
        }
        Some((chunk.freeze(), count))
    }

    /// Starts over from a snapshot after the ticks in between were lost.
    fn reset(&mut self) -> Bytes {
        let opening = self.hub.reset_opening(self.symbols);
        self.updates = opening.updates.map(BroadcastStream::new);
        self.last_sent = opening.last_sent;
        opening.first
    }

    /// The next piece of the replay buffer, or None when there was nothing
    /// of this stream's symbols in it (then it goes on).
    fn catch_up(&mut self) -> Option<Bytes> {
        let Some(after) = self.last_sent else {
            return Some(self.reset());
        };
        let (chunk, events) = match self.hub.catch_up(self.symbols, after, CATCH_UP_TICKS) {
            CatchUp::Behind {
                chunk,
                events,
                last,
            } => {
                self.last_sent = Some(last);
                (chunk, events)
            }
            CatchUp::Live {
                chunk,
                events,
                updates,
                last_sent,
            } => {
                self.updates = Some(BroadcastStream::new(updates));
                self.last_sent = last_sent;
                (chunk, events)
            }
            CatchUp::Lost => return Some(self.reset()),
        };
        if events == 0 {
            return None;
        }
        self.hub.metrics().core.messages_out.inc_by(events);
        Some(chunk)
    }

    fn is_over(&self) -> bool {
        self.hub.is_closing()
            || self
                .ends_at
                .is_some_and(|ends_at| Instant::now() >= ends_at)
    }
}

impl Stream for EventStream {
    type Item = Bytes;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if let Some(first) = self.first.take() {
            return Poll::Ready(Some(first));
        }
        loop {
            if self.is_over() {
                return Poll::Ready(None);
            }
            let Some(updates) = self.updates.as_mut() else {
                match self.catch_up() {
                    Some(chunk) => return Poll::Ready(Some(chunk)),
                    None => continue,
                }
            };
            let chunk = match ready!(Pin::new(updates).poll_next(cx)) {
                None | Some(Ok(Update::Closing)) => return Poll::Ready(None),
                Some(Ok(Update::Ticks(batch))) => match self.select(&batch) {
                    Some((chunk, events)) => {
                        self.hub.metrics().core.messages_out.inc_by(events);
                        chunk
                    }
                    None => continue,
                },
                Some(Ok(Update::KeepAlive)) => frame::KEEPALIVE,
                // Fell behind the live updates: catch up from the replay
                // buffer while it still holds the last tick sent.
                Some(Err(BroadcastStreamRecvError::Lagged(_))) => {
                    self.updates = None;
                    continue;
                }
                Some(Ok(Update::Reset)) => self.reset(),
            };
            return Poll::Ready(Some(chunk));
        }
    }
}

/// Counts `event:` lines, for the events-written metric of a replay.
fn count_events(bytes: &[u8]) -> u64 {
    let mut count = 0;
    let mut at_line_start = true;
    for (index, byte) in bytes.iter().enumerate() {
        if at_line_start && bytes[index..].starts_with(b"event: ") {
            count += 1;
        }
        at_line_start = *byte == b'\n';
    }
    count
}

/// Counts a stream as open for as long as it lives.
struct OpenStream {
    connections: prometheus_client::metrics::gauge::Gauge,
}

impl OpenStream {
    fn new(hub: &Hub) -> OpenStream {
        let core = &hub.metrics().core;
        core.connections.inc();
        core.connections_total.inc();
        OpenStream {
            connections: core.connections.clone(),
        }
    }
}

impl Drop for OpenStream {
    fn drop(&mut self) {
        self.connections.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::NewTick;
    use crate::metrics::Metrics;
    use crate::symbols::SymbolTable;
    use futures::StreamExt;
    use protocol::sse::Quote;

    fn quote(price: f64) -> Quote {
        Quote {
            symbol: "AAA".into(),
            price,
            change: 0.0,
            change_pct: 0.0,
            ts: 0,
        }
    }

    fn text(bytes: Bytes) -> String {
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    /// A new stream of every symbol, as a first visit opens it.
    async fn open_fresh(hub: &Arc<Hub>) -> EventStream {
        let request = StreamRequest {
            symbols: hub.symbols().all(),
            resume: Resume::Fresh,
            retry: Duration::from_secs(1),
            max_age: None,
        };
        EventStream::open(hub.clone(), None, request).await
    }

    #[tokio::test]
    async fn a_stream_that_falls_behind_the_buffer_gets_a_reset_then_goes_on_live() {
        let symbols = SymbolTable::from_list(&["AAA".into()]).unwrap();
        let hub = Arc::new(Hub::new(symbols, vec![quote(1.0)], 10, Metrics::default()));
        let mut stream = open_fresh(&hub).await;
        let head = text(stream.next().await.unwrap());
        assert!(head.starts_with("retry: ") && head.contains("event: snapshot\n"));

        // The client reads nothing while far more updates pass than the
        // channel holds.
        for seq in 1..=1000 {
            hub.publish(vec![NewTick {
                id: EventId::new(1, seq),
                quote: quote(seq as f64),
            }]);
        }
        let reset = text(stream.next().await.unwrap());
        assert!(
            reset.starts_with(
                "id: 1-1000\nevent: reset\ndata: [{\"symbol\":\"AAA\",\"price\":1000.0"
            ),
            "{reset}"
        );
        hub.publish(vec![NewTick {
            id: EventId::new(1, 1001),
            quote: quote(1001.0),
        }]);
        assert!(text(stream.next().await.unwrap()).starts_with("id: 1-1001\nevent: tick\n"));

        hub.close();
        assert!(stream.next().await.is_none());
    }

    #[tokio::test]
    async fn a_stream_that_falls_behind_within_the_buffer_catches_up_without_a_gap() {
        let symbols = SymbolTable::from_list(&["AAA".into()]).unwrap();
        let hub = Arc::new(Hub::new(
            symbols,
            vec![quote(1.0)],
            5000,
            Metrics::default(),
        ));
        hub.publish(vec![NewTick {
            id: EventId::new(1, 1),
            quote: quote(1.0),
        }]);
        let mut stream = open_fresh(&hub).await;
        stream.next().await.unwrap();
        for seq in 2..=1000 {
            hub.publish(vec![NewTick {
                id: EventId::new(1, seq),
                quote: quote(seq as f64),
            }]);
        }
        // Every tick, in order, once: from the buffer, then live again.
        let mut received = String::new();
        while !received.contains("id: 1-1000\n") {
            received.push_str(&text(stream.next().await.unwrap()));
        }
        let ids: Vec<u64> = received
            .lines()
            .filter_map(|line| line.strip_prefix("id: 1-"))
            .map(|seq| seq.parse().unwrap())
            .collect();
        assert_eq!(ids, (2..=1000).collect::<Vec<_>>());
        assert!(!received.contains("reset"));
        hub.publish(vec![NewTick {
            id: EventId::new(1, 1001),
            quote: quote(1001.0),
        }]);
        assert!(text(stream.next().await.unwrap()).starts_with("id: 1-1001\n"));
    }

    #[test]
    fn counts_events_not_data_that_mentions_them() {
        assert_eq!(count_events(b""), 0);
        assert_eq!(
            count_events(b"id: 1-1\nevent: tick\ndata: event: x\n\nevent: tick\ndata: {}\n\n"),
            2
        );
    }
}
