//! What every client task of one run shares, whatever its protocol: the
//! run's phase, the connection counters, the latency histogram, the source
//! addresses and the cap on simultaneous handshakes.

use crate::histogram::Histogram;
use crate::net::SourceAddrs;
use parking_lot::Mutex;
use std::sync::atomic::AtomicU64;
use std::time::Duration;
use tokio::sync::{Semaphore, watch};
use tokio::time::Instant;

/// Where a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Clients connect and join; nobody sends.
    Connecting,
    /// The measured window: senders send on schedule, receivers count.
    Sending { start: Instant, end: Instant },
    /// The window is over; clients stay to receive what is in flight.
    Draining,
    /// Clients close and report.
    Stopped,
}

/// Forced disconnections: about every `every`, down for about `down`.
#[derive(Debug, Clone, Copy)]
pub struct Jitter {
    pub every: Duration,
    pub down: Duration,
}

/// Shared by all clients of one process; `S` holds the protocol's settings.
pub struct RunContext<S> {
    pub settings: S,
    pub sources: SourceAddrs,
    /// Bounds simultaneous handshakes so a big ramp does not stampede.
    pub connect_slots: Semaphore,
    pub phase: watch::Sender<Phase>,
    pub latency: Histogram,
    pub deliveries: AtomicU64,
    pub joined: AtomicU64,
    pub failed: AtomicU64,
    /// Clients between a forced close and their return.
    pub offline: AtomicU64,
    pub first_error: Mutex<Option<String>>,
}

impl<S> RunContext<S> {
    pub fn new(settings: S, sources: SourceAddrs, connect_concurrency: usize) -> Self {
        RunContext {
            settings,
            sources,
            connect_slots: Semaphore::new(connect_concurrency.max(1)),
            phase: watch::channel(Phase::Connecting).0,
            latency: Histogram::default(),
            deliveries: AtomicU64::new(0),
            joined: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            offline: AtomicU64::new(0),
            first_error: Mutex::new(None),
        }
    }

    /// Keeps the first error of the run for the report.
    pub fn note_error(&self, error: &anyhow::Error) {
        let mut first = self.first_error.lock();
        if first.is_none() {
            *first = Some(format!("{error:#}"));
        }
    }
}

/// Waits until `at`, or forever when there is nothing to wait for.
pub async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
