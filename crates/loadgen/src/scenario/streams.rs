//! SSE scenarios (`streams`, `jitter` on sse-stocks). Tick ids are opaque,
//! so each process keeps one reference stream that is never cut and asks
//! for every symbol: what it saw during the window is what every other
//! stream should have seen of its own symbols, once each, in that order.

use super::outcome::{Outcome, StreamTally};
use super::{Plan, drive};
use crate::clients::sse::{StreamContext, StreamSettings, StreamState, run_stream};
use crate::deliveries::SeqSet;
use crate::gate::Gate;
use crate::net::SourceAddrs;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

pub async fn run(
    settings: StreamSettings,
    sources: SourceAddrs,
    connect_concurrency: usize,
    plan: &Plan,
    gate: &mut Gate,
) -> anyhow::Result<Outcome> {
    let context = Arc::new(StreamContext::new(settings, sources, connect_concurrency));
    let reference = plan.first;
    let driven = drive(&context, plan, gate, |index| {
        run_stream(index, index == reference, context.clone())
    })
    .await?;
    let streams = &driven.clients;
    Ok(Outcome {
        planned: plan.count as u64,
        connected: context.joined.load(Ordering::Relaxed),
        failed: context.failed.load(Ordering::Relaxed),
        unfinished: driven.unfinished,
        sessions: streams.iter().map(|stream| stream.sessions as u64).sum(),
        errors: streams.iter().map(|stream| stream.errors).sum(),
        foreign: 0,
        first_error: context.first_error.lock().clone(),
        window_secs: driven.window_secs,
        drain_secs: driven.drain_secs,
        deliveries: streams.iter().map(|stream| stream.window_events).sum(),
        tally: None,
        streams: Some(tally(streams, context.settings.symbols.len())),
        storm: None,
        latency_us: context.latency.snapshot(),
    })
}

/// Judges every stream against the reference.
pub fn tally(streams: &[StreamState], symbol_count: usize) -> StreamTally {
    let mut tally = StreamTally {
        snapshots: streams.iter().map(|stream| stream.snapshots).sum(),
        resets: streams.iter().map(|stream| stream.resets).sum(),
        keepalives: streams.iter().map(|stream| stream.keepalives).sum(),
        ..StreamTally::default()
    };
    let Some(reference) = streams.iter().find(|stream| stream.reference) else {
        return tally;
    };
    let mut position: HashMap<u64, u32> = HashMap::with_capacity(reference.ids.len());
    let mut per_symbol = vec![0u64; symbol_count];
    for (&id, &symbol) in reference.ids.iter().zip(&reference.id_symbols) {
        let next = position.len() as u32;
        if position.insert(id, next).is_none()
            && let Some(count) = per_symbol.get_mut(symbol as usize)
        {
            *count += 1;
        }
    }
    tally.reference_ticks = position.len() as u64;
    for stream in streams.iter().filter(|stream| !stream.reference) {
        tally.streams += 1;
        tally.expected += stream
            .symbols
            .iter()
            .map(|&symbol| per_symbol.get(symbol).copied().unwrap_or(0))
            .sum::<u64>();
        let mut seen = SeqSet::default();
        let mut last = None;
        for id in &stream.ids {
            let Some(&index) = position.get(id) else {
                continue; // outside the reference's window
            };
            if !seen.insert(index) {
                tally.duplicates += 1;
                continue;
            }
            tally.received += 1;
            if last.is_some_and(|last| index < last) {
                tally.out_of_order += 1;
            }
            last = Some(index);
        }
    }
    tally.lost = tally.expected.saturating_sub(tally.received);
    tally
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn stream(index: u32, reference: bool, ids: &[u64]) -> StreamState {
        let settings = StreamSettings {
            targets: Vec::new(),
            symbols: vec!["AAA".into(), "BBB".into()],
            symbols_per_stream: 1,
            jitter: None,
            join_timeout: Duration::from_secs(1),
        };
        let mut state = StreamState::new(index, reference, &settings);
        state.ids = ids.to_vec();
        state
    }

    #[test]
    fn judges_streams_against_the_reference() {
        let mut reference = stream(0, true, &[1, 2, 3]);
        reference.id_symbols = vec![0, 1, 0];
        // Streams 0 and 2 ask for AAA (symbol 0), stream 1 for BBB.
        let complete = stream(2, false, &[9, 1, 3]); // 9: before the window
        let disordered = stream(4, false, &[3, 1, 1]);
        let missing = stream(1, false, &[]);
        let tally = tally(&[reference, complete, disordered, missing], 2);
        assert_eq!(tally.reference_ticks, 3);
        assert_eq!(tally.streams, 3);
        assert_eq!(tally.expected, 2 + 2 + 1);
        assert_eq!(tally.received, 2 + 2);
        assert_eq!(tally.lost, 1);
        assert_eq!(tally.duplicates, 1);
        assert_eq!(tally.out_of_order, 1);
    }
}
