//! The market as one instance sees it: the latest quote of every symbol, the
//! replay buffer, and the fan-out of ticks to every open stream.
//!
//! A step of the feed (one tick per symbol) is serialized here once, into
//! complete frames shared by every stream, and sent to all streams as one
//! [`Update`] through a broadcast channel. A stream's own work is choosing
//! which of those bytes to write. Publishing, opening a stream and catching
//! up from the replay buffer take the same lock, so a stream's snapshot or
//! replay ends exactly where its live updates begin.

use crate::event_id::EventId;
use crate::frame;
use crate::metrics::Metrics;
use crate::replay::{ReplayBuffer, Tick};
use crate::symbols::{SymbolSet, SymbolTable};
use bytes::{Bytes, BytesMut};
use parking_lot::{Mutex, MutexGuard};
use protocol::sse::{EVENT_RESET, EVENT_SNAPSHOT, EVENT_TICK, Quote};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::broadcast;
use tokio::time::Instant;

/// Updates a stream may fall behind before it is reset: at one update per
/// step this is tens of seconds at any sensible `TICK_MS`, while the memory
/// (shared by all streams) stays a few hundred batches.
const UPDATE_CAPACITY: usize = 256;

/// A tick to publish: its id and its quote.
#[derive(Debug, Clone)]
pub struct NewTick {
    pub id: EventId,
    pub quote: Quote,
}

/// What the hub sends to every stream.
#[derive(Debug, Clone)]
pub enum Update {
    /// New ticks.
    Ticks(Arc<Batch>),
    /// Nothing happened for `KEEPALIVE_MS`.
    KeepAlive,
    /// The ticks before were lost (Redis lost its data): every stream
    /// starts again from a fresh snapshot.
    Reset,
    /// The server is stopping: end the stream so the client reconnects.
    Closing,
}

/// The ticks of one publish, each a complete frame, plus all of them in
/// one buffer for the streams that want every symbol.
#[derive(Debug)]
pub struct Batch {
    pub ticks: Vec<Tick>,
    pub all: Bytes,
    pub symbols: SymbolSet,
}

impl Batch {
    pub fn last_id(&self) -> Option<EventId> {
        self.ticks.last().map(|tick| tick.id)
    }
}

/// Where a stream starts: the bytes it writes first, and the id of the
/// last tick they cover; then either live updates from right after it, or
/// (`updates` None) a catch-up from the replay buffer first.
pub struct Opening {
    pub first: Bytes,
    pub last_sent: Option<EventId>,
    pub updates: Option<broadcast::Receiver<Update>>,
}

/// The hub cannot replay from `from` itself. The updates are subscribed
/// already, so the caller may replay from elsewhere (Redis), or reset.
pub struct NotHeld {
    pub updates: broadcast::Receiver<Update>,
    pub from: EventId,
}

/// The next piece of a stream that catches up from the replay buffer.
pub enum CatchUp {
    /// More ticks remain after `last`.
    Behind {
        chunk: Bytes,
        events: u64,
        last: EventId,
    },
    /// The stream has caught up: live updates follow on `updates`.
    Live {
        chunk: Bytes,
        events: u64,
        updates: broadcast::Receiver<Update>,
        last_sent: Option<EventId>,
    },
    /// The tick to resume after is no longer held: reset.
    Lost,
}

/// What a client sent as `Last-Event-ID`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resume {
    /// No id: a fresh stream starting with a snapshot.
    Fresh,
    /// An id that is not one of ours: reset.
    Unreadable,
    From(EventId),
}

impl Resume {
    pub fn parse(raw: Option<&str>) -> Resume {
        match raw.map(str::trim) {
            None | Some("") => Resume::Fresh,
            Some(raw) => EventId::parse(raw).map_or(Resume::Unreadable, Resume::From),
        }
    }
}

struct State {
    latest: Vec<Quote>,
    last_id: Option<EventId>,
    replay: ReplayBuffer,
    last_activity: Instant,
}

pub struct Hub {
    symbols: SymbolTable,
    metrics: Metrics,
    state: Mutex<State>,
    updates: broadcast::Sender<Update>,
    closing: AtomicBool,
}

impl Hub {
    /// A hub whose quotes start at `initial` (one per symbol, table order).
    pub fn new(
        symbols: SymbolTable,
        initial: Vec<Quote>,
        replay_ticks: usize,
        metrics: Metrics,
    ) -> Hub {
        assert_eq!(initial.len(), symbols.len(), "one initial quote per symbol");
        let (updates, _) = broadcast::channel(UPDATE_CAPACITY);
        Hub {
            symbols,
            metrics,
            state: Mutex::new(State {
                latest: initial,
                last_id: None,
                replay: ReplayBuffer::new(replay_ticks),
                last_activity: Instant::now(),
            }),
            updates,
            closing: AtomicBool::new(false),
        }
    }

    pub fn symbols(&self) -> &SymbolTable {
        &self.symbols
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock()
    }

    /// The latest quote of every symbol.
    pub fn quotes(&self) -> Vec<Quote> {
        self.lock().latest.clone()
    }

    /// The id of the last tick published.
    #[cfg(test)]
    pub fn last_id(&self) -> Option<EventId> {
        self.lock().last_id
    }

    /// Publishes ticks in id order; ticks not above the last id published
    /// (already seen) and ticks of symbols not served are dropped.
    pub fn publish(&self, ticks: Vec<NewTick>) {
        let mut prepared = Vec::with_capacity(ticks.len());
        for NewTick { id, quote } in ticks {
            let Some(symbol) = self.symbols.index_of(&quote.symbol) else {
                // Another instance serves other SYMBOLS: a misconfiguration,
                // but not worth a line per tick.
                tracing::debug!(symbol = %quote.symbol, "tick of a symbol not served, dropped");
                continue;
            };
            let json = protocol::sse::quote_json(&quote);
            let frame = frame::event(Some(id), EVENT_TICK, &json);
            prepared.push((Tick { id, symbol, frame }, quote));
        }
        let mut state = self.lock();
        let mut batch = Vec::with_capacity(prepared.len());
        let mut symbols = SymbolSet::EMPTY;
        for (tick, quote) in prepared {
            if state.last_id.is_some_and(|last| tick.id <= last) {
                continue;
            }
            state.last_id = Some(tick.id);
            state.latest[tick.symbol] = quote;
            state.replay.push(tick.clone());
            symbols.insert(tick.symbol);
            batch.push(tick);
        }
        if batch.is_empty() {
            return;
        }
        let mut all = BytesMut::with_capacity(batch.iter().map(|tick| tick.frame.len()).sum());
        for tick in &batch {
            all.extend_from_slice(&tick.frame);
        }
        state.last_activity = Instant::now();
        // Sent under the lock: a stream opening now sees either the state
        // before this batch and then the batch, or the state after it. With
        // no stream open the send fails, and there is nobody to tell.
        let _no_stream_open = self.updates.send(Update::Ticks(Arc::new(Batch {
            ticks: batch,
            all: all.freeze(),
            symbols,
        })));
    }

    /// Opens a stream for `symbols`: a snapshot; a catch-up from the replay
    /// buffer after the resume id; or a reset when that id is unreadable.
    /// `Err` when the id is readable but not in the replay buffer.
    pub fn open(&self, symbols: SymbolSet, resume: Resume) -> Result<Opening, NotHeld> {
        let state = self.lock();
        match resume {
            Resume::Fresh => Ok(self.snapshot_opening(&state, symbols, EVENT_SNAPSHOT)),
            Resume::Unreadable => Ok(self.snapshot_opening(&state, symbols, EVENT_RESET)),
            Resume::From(from) if state.replay.after(from).is_some() => {
                self.metrics.resumes.inc();
                Ok(Opening {
                    first: Bytes::new(),
                    last_sent: Some(from),
                    updates: None,
                })
            }
            Resume::From(from) => Err(NotHeld {
                updates: self.updates.subscribe(),
                from,
            }),
        }
    }

    /// Up to `max_ticks` ticks after `after` from the replay buffer, those
    /// of `symbols` as one chunk; with the last of them, the subscription to
    /// what follows, taken under the same lock so that nothing falls between.
    /// A stream pulls these only as fast as its socket takes them, so a
    /// replay of any length costs it one chunk of memory at a time.
    pub fn catch_up(&self, symbols: SymbolSet, after: EventId, max_ticks: usize) -> CatchUp {
        let state = self.lock();
        let Some(ticks) = state.replay.after(after) else {
            return CatchUp::Lost;
        };
        let mut chunk = BytesMut::new();
        let mut events = 0;
        let mut last = after;
        for (scanned, tick) in ticks.enumerate() {
            if scanned == max_ticks {
                return CatchUp::Behind {
                    chunk: chunk.freeze(),
                    events,
                    last,
                };
            }
            last = tick.id;
            if symbols.contains(tick.symbol) {
                chunk.extend_from_slice(&tick.frame);
                events += 1;
            }
        }
        CatchUp::Live {
            chunk: chunk.freeze(),
            events,
            updates: self.updates.subscribe(),
            last_sent: Some(last),
        }
    }

    /// A stream that resumes from ticks found elsewhere (Redis): `replayed`
    /// are the ticks after its id, oldest first, and `updates` the
    /// subscription taken before they were fetched. When they reach the
    /// oldest tick of the replay buffer, the stream catches up from there.
    pub fn replayed_opening(
        &self,
        updates: broadcast::Receiver<Update>,
        symbols: SymbolSet,
        from: EventId,
        replayed: Vec<NewTick>,
    ) -> Opening {
        let mut first = BytesMut::new();
        let mut last_sent = from;
        for NewTick { id, quote } in replayed {
            last_sent = last_sent.max(id);
            match self.symbols.index_of(&quote.symbol) {
                Some(symbol) if symbols.contains(symbol) => {
                    let json = protocol::sse::quote_json(&quote);
                    frame::write_event(&mut first, Some(id), EVENT_TICK, &json);
                }
                _ => {}
            }
        }
        self.metrics.resumes.inc();
        let reaches_buffer = self.lock().replay.after(last_sent).is_some();
        Opening {
            first: first.freeze(),
            last_sent: Some(last_sent),
            updates: (!reaches_buffer).then_some(updates),
        }
    }

    /// A stream that cannot resume: `reset` with a fresh snapshot and new
    /// updates from now on (the old receiver, if any, is dropped).
    pub fn reset_opening(&self, symbols: SymbolSet) -> Opening {
        let state = self.lock();
        self.snapshot_opening(&state, symbols, EVENT_RESET)
    }

    /// `snapshot` or `reset` with the latest quotes of `symbols`. It carries
    /// the id of the last tick it includes, so a client that reconnects
    /// right after it resumes from there instead of getting a new snapshot.
    fn snapshot_opening(&self, state: &State, symbols: SymbolSet, event: &str) -> Opening {
        if event == EVENT_RESET {
            self.metrics.resets.inc();
        }
        let quotes: Vec<&Quote> = state
            .latest
            .iter()
            .enumerate()
            .filter(|(index, _)| symbols.contains(*index))
            .map(|(_, quote)| quote)
            .collect();
        let json = protocol::sse::quote_json(&quotes);
        Opening {
            first: frame::event(state.last_id, event, &json),
            last_sent: state.last_id,
            updates: Some(self.updates.subscribe()),
        }
    }

    /// Starts the ids over (the Redis stream they came from was lost):
    /// forgets the replay and the last id, so the new stream's ids are
    /// accepted whatever they are, and every stream resets to a snapshot.
    pub fn start_over(&self) {
        let mut state = self.lock();
        state.last_id = None;
        state.replay.clear();
        // Fails only with no stream open: nobody to reset.
        let _no_stream_open = self.updates.send(Update::Reset);
    }

    /// Sends `: keep-alive` to every stream after `interval` without
    /// activity, until shutdown.
    pub async fn run_keepalive(self: Arc<Self>, interval: Duration, shutdown: ops::Shutdown) {
        loop {
            let due = self.lock().last_activity + interval;
            tokio::select! {
                _ = tokio::time::sleep_until(due) => {}
                _ = shutdown.wait() => return,
            }
            let mut state = self.lock();
            let now = Instant::now();
            if state.last_activity + interval <= now {
                state.last_activity = now;
                // Fails only with no stream open: nobody to keep alive.
                let _no_stream_open = self.updates.send(Update::KeepAlive);
            }
        }
    }

    /// Ends every stream (shutdown): they finish their response, and their
    /// clients reconnect to whichever instance serves next.
    pub fn close(&self) {
        self.closing.store(true, Ordering::SeqCst);
        // Fails only with no stream open; streams opening later see `closing`.
        let _no_stream_open = self.updates.send(Update::Closing);
    }

    pub fn is_closing(&self) -> bool {
        self.closing.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hub(replay_ticks: usize) -> Hub {
        let symbols = SymbolTable::from_list(&["AAA".into(), "BBB".into()]).unwrap();
        let initial = symbols
            .infos()
            .iter()
            .map(|info| quote(&info.symbol, info.price))
            .collect();
        Hub::new(symbols, initial, replay_ticks, Metrics::default())
    }

    fn quote(symbol: &str, price: f64) -> Quote {
        Quote {
            symbol: symbol.into(),
            price,
            change: 0.0,
            change_pct: 0.0,
            ts: 0,
        }
    }

    fn step(hub: &Hub, seq: u64) {
        hub.publish(vec![
            NewTick {
                id: EventId::new(1, seq * 2 - 1),
                quote: quote("AAA", seq as f64),
            },
            NewTick {
                id: EventId::new(1, seq * 2),
                quote: quote("BBB", seq as f64),
            },
        ]);
    }

    fn text(bytes: &Bytes) -> String {
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[test]
    fn a_fresh_stream_gets_a_snapshot_then_whole_steps() {
        let hub = hub(10);
        let mut opening = hub.open(hub.symbols().all(), Resume::Fresh).ok().unwrap();
        assert!(text(&opening.first).starts_with("event: snapshot\ndata: [{\"symbol\":\"AAA\""));
        step(&hub, 1);
        let Ok(Update::Ticks(batch)) = opening.updates.as_mut().unwrap().try_recv() else {
            panic!("no batch");
        };
        assert_eq!(
            text(&batch.all),
            "id: 1-1\nevent: tick\ndata: {\"symbol\":\"AAA\",\"price\":1.0,\"change\":0.0,\"changePct\":0.0,\"ts\":0}\n\n\
             id: 1-2\nevent: tick\ndata: {\"symbol\":\"BBB\",\"price\":1.0,\"change\":0.0,\"changePct\":0.0,\"ts\":0}\n\n"
        );
        assert_eq!(hub.quotes()[1].price, 1.0);
    }

    #[test]
    fn a_snapshot_carries_the_last_id_it_covers() {
        let hub = hub(10);
        step(&hub, 1);
        let opening = hub.open(hub.symbols().all(), Resume::Fresh).ok().unwrap();
        assert!(text(&opening.first).starts_with("id: 1-2\nevent: snapshot\n"));
        assert_eq!(opening.last_sent, Some(EventId::new(1, 2)));
    }

    #[test]
    fn resuming_catches_up_on_the_subscribed_symbols_after_the_id() {
        let hub = hub(10);
        for seq in 1..=3 {
            step(&hub, seq);
        }
        let only_bbb = hub.symbols().parse_set("BBB").unwrap();
        let opening = hub
            .open(only_bbb, Resume::From(EventId::new(1, 2)))
            .ok()
            .unwrap();
        assert!(opening.first.is_empty() && opening.updates.is_none());
        assert_eq!(opening.last_sent, Some(EventId::new(1, 2)));

        // Three ticks at a time: 1-3 (AAA), 1-4 (BBB), 1-5 (AAA).
        let CatchUp::Behind {
            chunk,
            events,
            last,
        } = hub.catch_up(only_bbb, EventId::new(1, 2), 3)
        else {
            panic!("not behind");
        };
        assert!(text(&chunk).starts_with("id: 1-4\nevent: tick\n"));
        assert_eq!((events, last), (1, EventId::new(1, 5)));
        // Then 1-6 (BBB), the last: live updates follow.
        let CatchUp::Live {
            chunk,
            events,
            mut updates,
            last_sent,
        } = hub.catch_up(only_bbb, last, 3)
        else {
            panic!("not live");
        };
        assert!(text(&chunk).starts_with("id: 1-6\nevent: tick\n"));
        assert!(!text(&chunk).contains("AAA"));
        assert_eq!((events, last_sent), (1, Some(EventId::new(1, 6))));
        step(&hub, 4);
        assert!(matches!(updates.try_recv(), Ok(Update::Ticks(_))));
        assert!(matches!(
            hub.catch_up(only_bbb, EventId::new(9, 9), 3),
            CatchUp::Lost
        ));
    }

    #[test]
    fn unknown_or_unreadable_ids_reset() {
        let hub = hub(2);
        for seq in 1..=3 {
            step(&hub, seq);
        }
        let too_old = hub.open(hub.symbols().all(), Resume::From(EventId::new(1, 1)));
        assert!(matches!(
            too_old,
            Err(NotHeld { from, .. }) if from == EventId::new(1, 1)
        ));
        let garbage = hub.open(hub.symbols().all(), Resume::parse(Some("x\u{7f}")));
        assert!(text(&garbage.ok().unwrap().first).starts_with("id: 1-6\nevent: reset\n"));
        assert_eq!(Resume::parse(Some("  ")), Resume::Fresh);
        assert_eq!(Resume::parse(Some("1-2")), Resume::From(EventId::new(1, 2)));
    }

    #[test]
    fn ticks_already_published_are_dropped() {
        let hub = hub(10);
        step(&hub, 2);
        let opening = hub.open(hub.symbols().all(), Resume::Fresh).ok().unwrap();
        step(&hub, 1);
        step(&hub, 2);
        assert!(opening.updates.unwrap().try_recv().is_err());
        assert_eq!(hub.last_id(), Some(EventId::new(1, 4)));
    }
}
