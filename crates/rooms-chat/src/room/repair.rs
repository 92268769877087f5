//! Fills a room's gap from the store's log of recent events: a record the
//! bus lost (a lag, a reconnect) must not hold the room back, nor be
//! skipped while the store still has it.

use crate::metrics::Metrics;
use crate::recipient::Recipient;
use crate::room::delivery::Delivery;
use crate::store::Store;
use std::time::{Duration, Instant};

/// Fills every gap that has lasted `patience`; a gap the store cannot fill
/// (the events are gone for good) is skipped.
pub async fn repair_gaps<R: Recipient>(
    delivery: &Delivery<R>,
    store: &dyn Store,
    patience: Duration,
    metrics: &Metrics,
) {
    for (room, after) in delivery.due_gaps(Instant::now(), patience) {
        if catch_up(delivery, store, &room, after, metrics).await {
            delivery.skip_if_stuck(&room, after);
        }
        delivery.repaired(&room);
    }
}

/// Re-checks every room against the store, after events may have been lost.
pub async fn resync<R: Recipient>(delivery: &Delivery<R>, store: &dyn Store, metrics: &Metrics) {
    metrics.resyncs.inc();
    for (room, after) in delivery.started() {
        catch_up(delivery, store, &room, after, metrics).await;
    }
}

/// Feeds every event the store holds after `after`; false if the store
/// could not answer.
async fn catch_up<R: Recipient>(
    delivery: &Delivery<R>,
    store: &dyn Store,
    room: &str,
    after: u64,
    metrics: &Metrics,
) -> bool {
    match store.events_after(room, after).await {
        Ok(events) => {
            for event in events {
                if delivery.arrive(event) {
                    metrics.gap_repairs.inc();
                }
            }
            true
        }
        Err(error) => {
            tracing::warn!(%error, room, "cannot fill a gap yet");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recipient::testing::Probe;
    use crate::room::local::LocalMember;
    use crate::room::outgoing::Outgoing;
    use crate::store::memory::MemoryStore;
    use crate::store::{JoinOutcome, Joiner};

    #[tokio::test]
    async fn a_lasting_gap_is_filled_from_the_log() {
        let (store, mut events) = MemoryStore::new(100);
        let member = Joiner {
            name: "a".into(),
            sid: "s".into(),
            client_id: None,
            sub: None,
        };
        let JoinOutcome::Joined(joined) = store.join("r", &member, None).await.unwrap() else {
            panic!("joined")
        };
        for _ in 0..4 {
            store.append("r", "a", "hi").await.unwrap();
        }
        let metrics = Metrics::default();
        let outgoing = Outgoing::new(Duration::ZERO, metrics.clone());
        let delivery = Delivery::new(outgoing, metrics.clone());
        let probe = Probe::new();
        delivery.prepare("r");
        let local = LocalMember {
            socket: probe.clone(),
            name: "b".into(),
            client_id: None,
            sub: None,
        };
        delivery
            .attach("r", local, joined.position, None, &mut || {})
            .unwrap();
        // Only the last message arrived; the three before it were lost.
        let mut last = None;
        while let Ok(event) = events.try_recv() {
            last = Some(event);
        }
        let Some(crate::store::StoreEvent::Room(last)) = last else {
            panic!("a room event")
        };
        delivery.arrive(last);
        assert!(probe.ids().is_empty());
        tokio::time::sleep(Duration::from_millis(5)).await;
        repair_gaps(&delivery, &store, Duration::from_millis(1), &metrics).await;
        assert_eq!(probe.ids(), vec![1, 2, 3, 4]);
        assert_eq!(metrics.gap_repairs.get(), 3, "the three lost ones");
    }
}
