//! One client's event stream: `retry`, then a snapshot (or the replay of
//! what it missed, or a reset), then the live ticks of its symbols, with
//! keep-alive comments in silences, until the client leaves or the server
//! stops.
//!
//! The stream is polled by hyper only when the socket can take more, so a
//! slow client simply falls behind in the hub's broadcast channel; when it
//! falls out of it, it gets `reset` and a fresh snapshot. It never holds
//! more than the update it is writing.

use crate::cluster::Cluster;
use crate::event_id::EventId;
use crate::frame;
use crate::hub::{Batch, Hub, Opening, Resume, Update};
use crate::symbols::SymbolSet;
use bytes::{Bytes, BytesMut};
use futures::Stream;
use rand::Rng;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;

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
    updates: BroadcastStream<Update>,
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
                let replayed = match cluster {
                    Some(cluster) => cluster.ticks_after(not_held.from).await,
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
            updates: BroadcastStream::new(updates),
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
        self.updates = BroadcastStream::new(opening.updates);
        self.last_sent = opening.last_sent;
        opening.first
    }

    fn is_over(&self) -> bool {
        self.hub.is_closing()
            || self
                .ends_at
                .is_some_and(|ends_at| Instant::now() >= ends_at)
    }
}

impl Stream for EventStream {
    type Item = Result<Bytes, Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if let Some(first) = self.first.take() {
            return Poll::Ready(Some(Ok(first)));
        }
        loop {
            if self.is_over() {
                return Poll::Ready(None);
            }
            let update = ready!(Pin::new(&mut self.updates).poll_next(cx));
            let chunk = match update {
                None | Some(Ok(Update::Closing)) => return Poll::Ready(None),
                Some(Ok(Update::Ticks(batch))) => match self.select(&batch) {
                    Some((chunk, events)) => {
                        self.hub.metrics().core.messages_out.inc_by(events);
                        chunk
                    }
                    None => continue,
                },
                Some(Ok(Update::KeepAlive)) => frame::KEEPALIVE,
                Some(Ok(Update::Reset)) | Some(Err(BroadcastStreamRecvError::Lagged(_))) => {
                    self.reset()
                }
            };
            return Poll::Ready(Some(Ok(chunk)));
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

    #[tokio::test]
    async fn a_stream_that_falls_behind_gets_a_reset_then_goes_on_live() {
        let symbols = SymbolTable::from_list(&["AAA".into()]).unwrap();
        let hub = Arc::new(Hub::new(symbols, vec![quote(1.0)], 10, Metrics::default()));
        let request = StreamRequest {
            symbols: hub.symbols().all(),
            resume: Resume::Fresh,
            retry: Duration::from_secs(1),
            max_age: None,
        };
        let mut stream = EventStream::open(hub.clone(), None, request).await;
        let head = text(stream.next().await.unwrap().unwrap());
        assert!(head.starts_with("retry: ") && head.contains("event: snapshot\n"));

        // The client reads nothing while far more updates pass than the
        // channel holds.
        for seq in 1..=1000 {
            hub.publish(vec![NewTick {
                id: EventId::new(1, seq),
                quote: quote(seq as f64),
            }]);
        }
        let reset = text(stream.next().await.unwrap().unwrap());
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
        assert!(
            text(stream.next().await.unwrap().unwrap()).starts_with("id: 1-1001\nevent: tick\n")
        );

        hub.close();
        assert!(stream.next().await.is_none());
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
