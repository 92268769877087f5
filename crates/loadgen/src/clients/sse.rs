//! An sse-stocks client stream: `GET /events` over plain HTTP/1.1, the body
//! de-chunked and parsed as it arrives; each `tick` is timed (its quote's
//! `ts` against the clock) and its id kept, so that loss, duplicates and
//! order can be judged against a reference stream. Under jitter the stream
//! is cut, and comes back with `Last-Event-ID`.

use crate::codec::probe::raw_field;
use crate::net;
use crate::run::{Jitter, Phase, RunContext, sleep_until_some};
use anyhow::{Context, bail};
use protocol::sse::{EVENT_RESET, EVENT_SNAPSHOT, EVENT_TICK};
use rand::Rng;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;
use wire_clients::codec::sse::SseItem;
use wire_clients::http;
use wire_clients::sse::EventStream;

#[derive(Debug, Clone)]
pub struct StreamSettings {
    pub targets: Vec<SocketAddr>,
    /// Every symbol the server serves, in its order.
    pub symbols: Vec<String>,
    /// How many symbols each stream asks for (0: all, without a query).
    pub symbols_per_stream: usize,
    pub jitter: Option<Jitter>,
    pub join_timeout: Duration,
}

pub type StreamContext = RunContext<StreamSettings>;

/// One stream, kept across reconnections.
#[derive(Debug, Default)]
pub struct StreamState {
    /// The reference stream of this process: never cut, records only the window.
    pub reference: bool,
    /// Indexes (in `StreamSettings::symbols`) of the symbols asked for.
    pub symbols: Vec<usize>,
    last_event_id: Option<String>,
    /// Keys of the tick ids received (see [`id_key`]), in arrival order.
    pub ids: Vec<u64>,
    /// Reference only: the symbol index of each recorded id.
    pub id_symbols: Vec<u16>,
    /// Ticks received during the measured window.
    pub window_events: u64,
    /// Ticks received in all.
    pub ticks: u64,
    pub snapshots: u64,
    pub resets: u64,
    pub keepalives: u64,
    pub errors: u64,
    pub sessions: u32,
    joined_once: bool,
    jitter_deadline: Option<Instant>,
}

/// A tick id as a number: numeric ids as they are, others hashed.
pub fn id_key(id: &str) -> u64 {
    id.parse().unwrap_or_else(|_| {
        let mut hasher = DefaultHasher::new();
        id.hash(&mut hasher);
        hasher.finish()
    })
}

impl StreamState {
    pub fn new(index: u32, reference: bool, settings: &StreamSettings) -> Self {
        let count = settings.symbols.len().max(1);
        let symbols = if reference || settings.symbols_per_stream == 0 {
            (0..settings.symbols.len()).collect()
        } else {
            let per_stream = settings.symbols_per_stream.min(count);
            (0..per_stream)
                .map(|offset| (index as usize * per_stream + offset) % count)
                .collect()
        };
        StreamState {
            reference,
            symbols,
            ..StreamState::default()
        }
    }

    fn path(&self, settings: &StreamSettings) -> String {
        if self.reference || settings.symbols_per_stream == 0 {
            return "/events".to_owned();
        }
        let names: Vec<&str> = self
            .symbols
            .iter()
            .map(|&symbol| settings.symbols[symbol].as_str())
            .collect();
        format!("/events?symbols={}", names.join(","))
    }

    fn on_item(&mut self, context: &StreamContext, measuring: bool, item: SseItem<'_>) {
        match item {
            SseItem::Event { event, data, id } if event == EVENT_TICK => {
                if measuring {
                    self.window_events += 1;
                }
                self.ticks += 1;
                if let Some(ts) = raw_field(data, "ts").and_then(|ts| ts.parse::<u64>().ok()) {
                    let now_ms = crate::codec::stamp::unix_micros() / 1000;
                    context.latency.record(now_ms.saturating_sub(ts) * 1000);
                }
                if self.reference {
                    if measuring {
                        let symbol = raw_field(data, "symbol")
                            .and_then(|name| {
                                context.settings.symbols.iter().position(|s| s == name)
                            })
                            .unwrap_or(usize::from(u16::MAX));
                        self.ids.push(id_key(id));
                        self.id_symbols.push(symbol as u16);
                    }
                } else {
                    self.ids.push(id_key(id));
                }
            }
            SseItem::Event { event, .. } if event == EVENT_SNAPSHOT => self.snapshots += 1,
            SseItem::Event { event, .. } if event == EVENT_RESET => self.resets += 1,
            SseItem::Event { .. } | SseItem::Retry(_) => {}
            SseItem::Comment(_) => self.keepalives += 1,
        }
    }

    fn cut_at(&mut self, settings: &StreamSettings, phase: Phase) -> Option<Instant> {
        let jitter = settings.jitter.filter(|_| !self.reference)?;
        let Phase::Sending { start, .. } = phase else {
            return None;
        };
        let first = self.sessions <= 1;
        Some(*self.jitter_deadline.get_or_insert_with(|| {
            let mut random = rand::rng();
            if first {
                start + jitter.every.mul_f64(random.random_range(0.0..1.0))
            } else {
                Instant::now() + jitter.every.mul_f64(random.random_range(0.67..1.33))
            }
        }))
    }
}

/// Runs one stream to the end of the run.
pub async fn run_stream(index: u32, reference: bool, context: Arc<StreamContext>) -> StreamState {
    let settings = &context.settings;
    let mut state = StreamState::new(index, reference, settings);
    let mut phase = context.phase.subscribe();
    loop {
        let target =
            settings.targets[(index as usize + state.sessions as usize) % settings.targets.len()];
        state.sessions += 1;
        let downtime = match session(&mut state, &context, &mut phase, target).await {
            Ok(true) => break,
            Ok(false) => {
                let down = settings.jitter.map_or(Duration::from_secs(1), |j| j.down);
                down.mul_f64(rand::rng().random_range(0.75..1.25))
            }
            Err(error) => {
                state.errors += 1;
                context.note_error(&error);
                if !state.joined_once {
                    context.failed.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                if settings.jitter.is_none() {
                    break;
                }
                Duration::from_secs(1)
            }
        };
        context.offline.fetch_add(1, Ordering::Relaxed);
        tokio::select! {
            _ = tokio::time::sleep(downtime) => {}
            _ = phase.wait_for(|phase| *phase == Phase::Stopped) => {}
        }
        context.offline.fetch_sub(1, Ordering::Relaxed);
        if *phase.borrow() == Phase::Stopped {
            break;
        }
    }
    state
}

/// One connection; `Ok(true)` when the run is over, `Ok(false)` when cut.
async fn session(
    state: &mut StreamState,
    context: &StreamContext,
    phase: &mut watch::Receiver<Phase>,
    target: SocketAddr,
) -> anyhow::Result<bool> {
    let settings = &context.settings;
    let path = state.path(settings);
    let mut stream = {
        let _slot = context.connect_slots.acquire().await?;
        tokio::time::timeout(settings.join_timeout, async {
            let socket = context.sources.connect(target).await?;
            let mut headers = Vec::with_capacity(1);
            if let Some(id) = &state.last_event_id {
                headers.push(("Last-Event-ID", id.as_str()));
            }
            EventStream::open(socket, &target.to_string(), &path, &headers).await
        })
        .await
        .context("no stream response in time")??
    };
    if !state.joined_once {
        state.joined_once = true;
        context.joined.fetch_add(1, Ordering::Relaxed);
    }
    state.jitter_deadline = None;
    loop {
        let current = *phase.borrow_and_update();
        if current == Phase::Stopped {
            return Ok(true);
        }
        let measuring = matches!(current, Phase::Sending { .. });
        if stream.has_buffered() {
            let ticks_before = state.ticks;
            stream.parse(|item| state.on_item(context, measuring, item))?;
            // One shared add per read, not per tick.
            context
                .deliveries
                .fetch_add(state.ticks - ticks_before, Ordering::Relaxed);
            if !stream.last_event_id().is_empty() {
                state.last_event_id = Some(stream.last_event_id().to_owned());
            }
        }
        let cut_at = state.cut_at(settings, current);
        tokio::select! {
            read = stream.read() => {
                if !read? {
                    bail!("the server ended the stream");
                }
            }
            _ = sleep_until_some(cut_at) => {
                net::reset(stream.socket());
                return Ok(false);
            }
            changed = phase.changed() => if changed.is_err() {
                return Ok(true);
            },
        }
    }
}

/// Reads the server's symbol list from `GET /api/symbols`.
pub async fn fetch_symbols(target: SocketAddr) -> anyhow::Result<Vec<String>> {
    let mut stream = tokio::net::TcpStream::connect(target)
        .await
        .with_context(|| format!("connecting to {target}"))?;
    let (status, body) = http::get_body(&mut stream, &target.to_string(), "/api/symbols").await?;
    if status != 200 {
        bail!("GET /api/symbols answered {status}");
    }
    let symbols: Vec<protocol::sse::SymbolInfo> =
        serde_json::from_slice(&body).context("reading /api/symbols")?;
    Ok(symbols.into_iter().map(|info| info.symbol).collect())
}
