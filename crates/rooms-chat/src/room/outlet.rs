//! One socket's way out: frames leave by need, not by clock, and a socket
//! that cannot keep up is cut off, never skipped.
//!
//! A frame for a socket that wrote nothing during the last `WRITE_DELAY_MS`
//! leaves at once, and so does one for a socket whose frames come far
//! apart on average (quiet, in [`ops::pace`]'s terms): light load costs no
//! latency. A frame arriving sooner at a busy socket waits in its outlet,
//! and everything waiting leaves together when the delay since the last
//! write is over: the socket's writer then wakes once and sends them in
//! one system call (Nagle's idea), so heavy load batches by itself.
//!
//! socketioxide's queue of a socket holds `MAX_BUFFER` packets. When it is
//! full, the frames wait in the outlet instead, in order, and are handed
//! over again a little later: a burst of small frames (a join storm's
//! notices) passes through a healthy socket whatever its count. Only when
//! the waiting frames add up to more than `MAX_QUEUED_BYTES` is the socket
//! cut off: its outlet refuses every later frame and the connection is
//! ended (see [`Recipient::cut_off`]), so its client sees every event up to
//! some point, then the close, and re-joins with `since`. The bound is in
//! bytes, as Centrifugo's `client_queue_max_size`, because bytes are what a
//! reader that stopped costs. A volatile frame (`typing`) is dropped
//! instead for a socket that is behind, and never delays anything.

use crate::metrics::Metrics;
use crate::recipient::{Delivery, Recipient};
use crate::room::event::RoomEvent;
use ops::Shutdown;
use ops::pace::Pace;
use parking_lot::Mutex;
use serde_json::value::RawValue;
use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// How soon frames are handed over again to a socket whose queue was full:
/// long enough for its connection to drain a queue's worth, short enough
/// to add no more latency than a write delay.
const FULL_QUEUE_RETRY: Duration = Duration::from_millis(10);

/// What one frame carries: a room event, its JSON shared by every member.
#[derive(Debug, Clone)]
pub enum Frame {
    Room(Arc<RoomEvent>),
}

impl Frame {
    fn event(&self) -> &'static str {
        match self {
            Frame::Room(event) => event.kind.event_name(),
        }
    }

    fn json(&self) -> &RawValue {
        match self {
            Frame::Room(event) => &event.json,
        }
    }

    /// What the frame costs on the wire, about.
    fn bytes(&self) -> usize {
        self.json().get().len()
    }
}

/// The frames waiting for one socket, kept in its session.
#[derive(Default)]
pub struct Outlet {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    waiting: Vec<Frame>,
    /// The sum of `waiting`'s [`Frame::bytes`].
    waiting_bytes: usize,
    last_write: Option<Instant>,
    /// How often frames reach this socket.
    pace: Pace,
    /// Whether the writer's queue holds this outlet.
    scheduled: bool,
    /// socketioxide's queue was full at the last write: nothing is handed
    /// over before the retry.
    full: bool,
    /// Cut off (or closed): nothing may follow.
    closed: bool,
}

/// Hands frames to sockets; one per process.
pub struct Writer<R: Recipient> {
    delay: Duration,
    /// Waiting frames that leave at once, before the delay is over: a
    /// burst must not wait for the delay in an outlet that grows.
    max_waiting: usize,
    /// `MAX_QUEUED_BYTES`: waiting bytes past which a socket is cut off.
    max_waiting_bytes: usize,
    queue: Mutex<BinaryHeap<Due<R>>>,
    wake: Notify,
    metrics: Metrics,
}

impl<R: Recipient> Writer<R> {
    pub fn new(
        delay: Duration,
        max_waiting: usize,
        max_waiting_bytes: usize,
        metrics: Metrics,
    ) -> Writer<R> {
        Writer {
            delay,
            max_waiting: max_waiting.max(1),
            max_waiting_bytes,
            queue: Mutex::new(BinaryHeap::new()),
            wake: Notify::new(),
            metrics,
        }
    }

    /// Sends `frame` to `socket` now, or with the next write of its outlet.
    pub fn send(&self, socket: &R, outlet: &Arc<Outlet>, frame: Frame, volatile: bool) {
        let mut state = outlet.state.lock();
        if state.closed {
            return;
        }
        let now = Instant::now();
        let idle = state
            .last_write
            .is_none_or(|last| now.duration_since(last) >= self.delay);
        state.pace.frame(now, self.delay);
        let busy = state.pace.is_busy(self.delay);
        if state.waiting.is_empty() && (idle || !busy) {
            state.last_write = Some(now);
            match socket.send(frame.event(), frame.json()) {
                Delivery::Sent => {
                    self.metrics.core.messages_out.inc();
                }
                Delivery::Full if volatile => {
                    self.metrics.volatile_dropped.inc();
                }
                Delivery::Full => {
                    self.wait(&mut state, frame);
                    self.retry_later(socket, outlet, &mut state, now);
                    return;
                }
                Delivery::Gone => state.closed = true,
            }
            socket.end_of_write();
            return;
        }
        if volatile && !state.waiting.is_empty() {
            // Behind already: a volatile frame is not worth waiting for.
            self.metrics.volatile_dropped.inc();
            return;
        }
        self.wait(&mut state, frame);
        if state.full {
            self.cut_off_if_over_bound(socket, &mut state);
        } else if state.waiting.len() >= self.max_waiting {
            self.write_waiting(socket, outlet, &mut state, now);
        } else if !state.scheduled {
            state.scheduled = true;
            let due = state.last_write.map_or(now, |last| last + self.delay);
            drop(state);
            self.schedule(due, socket.clone(), outlet.clone());
        }
    }

    fn wait(&self, state: &mut State, frame: Frame) {
        state.waiting_bytes += frame.bytes();
        state.waiting.push(frame);
    }

    /// Sends what waits in `outlet` now: before a frame that must follow it
    /// (a join's ack). A socket that cannot take it all now is cut off, as
    /// the frame that follows must not overtake what waits.
    pub fn flush(&self, socket: &R, outlet: &Arc<Outlet>) {
        let mut state = outlet.state.lock();
        if state.waiting.is_empty() || state.closed {
            return;
        }
        self.write_waiting(socket, outlet, &mut state, Instant::now());
        if !state.waiting.is_empty() && !state.closed {
            self.cut_off(socket, &mut state);
        }
    }

    /// Runs until shutdown: writes every outlet whose delay is over.
    pub async fn run(&self, shutdown: Shutdown) {
        loop {
            let next = self.queue.lock().peek().map(|due| due.at);
            let now = Instant::now();
            match next {
                Some(at) if at <= now => self.write_due(now),
                Some(at) => tokio::select! {
                    _ = tokio::time::sleep_until(at.into()) => {}
                    _ = self.wake.notified() => {}
                    _ = shutdown.wait() => return,
                },
                None => tokio::select! {
                    _ = self.wake.notified() => {}
                    _ = shutdown.wait() => return,
                },
            }
        }
    }

    fn schedule(&self, at: Instant, socket: R, outlet: Arc<Outlet>) {
        let mut queue = self.queue.lock();
        let first = queue.peek().is_none_or(|due| at < due.at);
        queue.push(Due { at, socket, outlet });
        drop(queue);
        if first {
            self.wake.notify_one();
        }
    }

    fn write_due(&self, now: Instant) {
        loop {
            let due = {
                let mut queue = self.queue.lock();
                match queue.peek() {
                    Some(due) if due.at <= now => queue.pop(),
                    _ => None,
                }
            };
            let Some(due) = due else { return };
            let mut state = due.outlet.state.lock();
            state.scheduled = false;
            if !state.closed && !state.waiting.is_empty() {
                self.write_waiting(&due.socket, &due.outlet, &mut state, now);
            }
        }
    }

    /// Hands the waiting frames over, in order, as far as the socket's
    /// queue takes them; the rest waits for a retry.
    fn write_waiting(&self, socket: &R, outlet: &Arc<Outlet>, state: &mut State, now: Instant) {
        state.last_write = Some(now);
        let mut sent = 0;
        let mut sent_bytes = 0;
        let mut outcome = Delivery::Sent;
        for frame in &state.waiting {
            outcome = socket.send(frame.event(), frame.json());
            if outcome != Delivery::Sent {
                break;
            }
            sent += 1;
            sent_bytes += frame.bytes();
        }
        self.metrics.core.messages_out.inc_by(sent as u64);
        if sent > 0 {
            socket.end_of_write();
        }
        match outcome {
            Delivery::Sent => {
                // Dropped, not kept for the next batch: most sockets sit idle
                // after a burst (a join storm), and each would hold its
                // largest batch's allocation for good.
                state.waiting = Vec::new();
                state.waiting_bytes = 0;
                state.full = false;
            }
            Delivery::Full => {
                state.waiting.drain(..sent);
                state.waiting_bytes -= sent_bytes;
                self.retry_later(socket, outlet, state, now);
            }
            Delivery::Gone => self.close(state),
        }
    }

    /// The socket's queue is full: its frames wait (within the bound) and
    /// are handed over again soon.
    fn retry_later(&self, socket: &R, outlet: &Arc<Outlet>, state: &mut State, now: Instant) {
        state.full = true;
        if self.cut_off_if_over_bound(socket, state) || state.scheduled {
            return;
        }
        state.scheduled = true;
        self.schedule(now + FULL_QUEUE_RETRY, socket.clone(), outlet.clone());
    }

    /// True if the socket was cut off: it fell too far behind.
    fn cut_off_if_over_bound(&self, socket: &R, state: &mut State) -> bool {
        if state.waiting_bytes <= self.max_waiting_bytes {
            return false;
        }
        self.cut_off(socket, state);
        true
    }

    fn cut_off(&self, socket: &R, state: &mut State) {
        tracing::info!(
            sid = %socket.sid(),
            waiting_bytes = state.waiting_bytes,
            "member too slow, cutting it off"
        );
        self.metrics.core.disconnects_forced.inc();
        self.close(state);
        socket.cut_off();
    }

    fn close(&self, state: &mut State) {
        state.closed = true;
        state.waiting = Vec::new();
        state.waiting_bytes = 0;
    }
}

/// An outlet whose delay ends at `at`.
struct Due<R> {
    at: Instant,
    socket: R,
    outlet: Arc<Outlet>,
}

impl<R> PartialEq for Due<R> {
    fn eq(&self, other: &Self) -> bool {
        self.at == other.at
    }
}

impl<R> Eq for Due<R> {}

impl<R> PartialOrd for Due<R> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<R> Ord for Due<R> {
    /// The earliest first out of the (max-)heap.
    fn cmp(&self, other: &Self) -> Ordering {
        other.at.cmp(&self.at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recipient::testing::Probe;
    use crate::room::event::Kind;

    fn frame(pos: u64) -> Frame {
        let json = format!("{{\"id\":{pos}}}");
        Frame::Room(RoomEvent::new("r", pos, Kind::Message { id: pos }, "a", json).unwrap())
    }

    /// The writer's loop, spawned; stopped by triggering the shutdown.
    fn run(writer: &Arc<Writer<Probe>>) -> (Shutdown, tokio::task::JoinHandle<()>) {
        let shutdown = Shutdown::new();
        let running = tokio::spawn({
            let writer = writer.clone();
            let shutdown = shutdown.clone();
            async move { writer.run(shutdown).await }
        });
        (shutdown, running)
    }

    /// Waits until `probe` holds `count` frames; a writer that never sends
    /// them fails the test instead of hanging it.
    async fn received(probe: &Probe, count: usize) {
        let waited = tokio::time::timeout(Duration::from_secs(10), async {
            while probe.ids().len() < count {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        });
        assert!(
            waited.await.is_ok(),
            "{} of {count} frames",
            probe.ids().len()
        );
    }

    fn writer(delay_ms: u64) -> Writer<Probe> {
        Writer::new(
            Duration::from_millis(delay_ms),
            64,
            1 << 20,
            Metrics::default(),
        )
    }

    #[test]
    fn a_frame_for_an_idle_socket_leaves_at_once() {
        let writer = writer(3_600_000);
        let probe = Probe::new();
        let outlet = Arc::new(Outlet::default());
        writer.send(&probe, &outlet, frame(1), false);
        assert_eq!(probe.writes(), vec![vec![1]]);
    }

    #[test]
    fn frames_at_a_busy_socket_wait_and_leave_together() {
        let writer = writer(3_600_000);
        let probe = Probe::new();
        let outlet = Arc::new(Outlet::default());
        for pos in 1..=20 {
            writer.send(&probe, &outlet, frame(pos), false);
        }
        let before_flush = probe.ids().len();
        assert!(before_flush < 20, "once busy, frames wait for the delay");
        writer.flush(&probe, &outlet);
        assert_eq!(probe.ids(), (1..=20).collect::<Vec<_>>());
        let writes = probe.writes();
        assert_eq!(
            writes.last().map(Vec::len),
            Some(20 - before_flush),
            "the waiting frames leave in one write"
        );
    }

    #[test]
    fn frames_far_apart_leave_at_once_even_within_the_delay() {
        let probe = Probe::new();
        let outlet = Arc::new(Outlet::default());
        // Far apart relative to the delay: never busy.
        let slow = Writer::<Probe>::new(Duration::from_millis(40), 64, 1 << 20, Metrics::default());
        for pos in 1..=3 {
            slow.send(&probe, &outlet, frame(pos), false);
            std::thread::sleep(Duration::from_millis(12));
        }
        assert_eq!(probe.writes(), vec![vec![1], vec![2], vec![3]]);
    }

    #[tokio::test]
    async fn the_writer_sends_waiting_frames_once_the_delay_is_over() {
        let writer = Arc::new(writer(5));
        let probe = Probe::new();
        let outlet = Arc::new(Outlet::default());
        let (shutdown, running) = run(&writer);
        for pos in 1..=20 {
            writer.send(&probe, &outlet, frame(pos), false);
        }
        received(&probe, 20).await;
        assert_eq!(probe.ids(), (1..=20).collect::<Vec<_>>());
        assert!(probe.writes().last().is_some_and(|last| last.len() > 1));
        shutdown.trigger();
        running.await.unwrap();
    }

    #[tokio::test]
    async fn frames_for_a_full_socket_wait_and_leave_in_order_once_it_drains() {
        let writer = Arc::new(Writer::new(Duration::ZERO, 64, 1 << 20, Metrics::default()));
        let probe = Probe::new();
        let outlet = Arc::new(Outlet::default());
        let (shutdown, running) = run(&writer);
        writer.send(&probe, &outlet, frame(1), false);
        probe.set_full(true);
        for pos in 2..=500 {
            writer.send(&probe, &outlet, frame(pos), false);
        }
        assert_eq!(probe.ids(), vec![1], "nothing fits a full queue");
        probe.set_full(false);
        received(&probe, 500).await;
        assert_eq!(probe.ids(), (1..=500).collect::<Vec<_>>());
        assert!(
            !probe.is_cut(),
            "a burst within the byte bound is no reason to cut"
        );
        shutdown.trigger();
        running.await.unwrap();
    }

    #[test]
    fn a_socket_too_far_behind_is_cut_off_and_gets_nothing_more() {
        let writer = Writer::<Probe>::new(Duration::ZERO, 64, 40, Metrics::default());
        let probe = Probe::new();
        let outlet = Arc::new(Outlet::default());
        writer.send(&probe, &outlet, frame(1), false);
        probe.set_full(true);
        for pos in 2..=4 {
            writer.send(&probe, &outlet, frame(pos), false);
        }
        assert!(!probe.is_cut(), "24 bytes wait, within the bound of 40");
        for pos in 5..=10 {
            writer.send(&probe, &outlet, frame(pos), false);
        }
        assert!(probe.is_cut(), "past 40 bytes the socket is cut off");
        probe.set_full(false);
        writer.send(&probe, &outlet, frame(11), false);
        assert_eq!(probe.ids(), vec![1], "a prefix, then the cut; never a gap");
    }

    #[test]
    fn a_flush_that_cannot_finish_cuts_the_socket_off() {
        let writer = writer(3_600_000);
        let probe = Probe::new();
        let outlet = Arc::new(Outlet::default());
        for pos in 1..=20 {
            writer.send(&probe, &outlet, frame(pos), false);
        }
        probe.set_full(true);
        writer.flush(&probe, &outlet);
        assert!(
            probe.is_cut(),
            "what follows a flush must not overtake the frames"
        );
    }

    #[test]
    fn volatile_frames_are_dropped_for_a_socket_that_is_behind() {
        let writer = writer(3_600_000);
        let probe = Probe::new();
        let outlet = Arc::new(Outlet::default());
        for pos in 1..=20 {
            writer.send(&probe, &outlet, frame(pos), false);
        }
        writer.send(&probe, &outlet, frame(21), true);
        writer.flush(&probe, &outlet);
        assert_eq!(probe.ids(), (1..=20).collect::<Vec<_>>());
        probe.set_full(true);
        let idle = Arc::new(Outlet::default());
        writer.send(&probe, &idle, frame(4), true);
        assert!(!probe.is_cut(), "a volatile frame never cuts a socket off");
    }
}
