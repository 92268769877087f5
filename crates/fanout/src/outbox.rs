//! One socket's way out, shared by whoever publishes to it, by the
//! socket's own task and by the clock that flushes a busy chat (see the
//! crate's documentation for the design).
//!
//! The rule for every frame, under the outbox's lock: a quiet chat's frame
//! is written by its publisher at once, with whatever waits before it, as
//! long as the peer takes it; a busy chat's frame is only queued, and the
//! next [`Outbox::flush`] writes everything queued in one vectored write.
//! Whatever a write does not take waits for the socket's task, which is
//! woken to write it when the peer reads again, and until then nobody else
//! writes. A frame is never skipped: a queue past its bound ends the socket
//! instead.

use bytes::{Buf, Bytes};
use futures::task::AtomicWaker;
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::task::{Context, Poll};
use tokio::net::TcpStream;

/// Frames gathered into one vectored write.
const FRAMES_PER_WRITE: usize = 64;

/// Vectored writes one wake-up of the task makes before it lets the
/// runtime serve other tasks.
const WRITES_PER_WAKE: usize = 16;

/// Why a socket must end, as its task learns it from [`Outbox::poll_next`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// The queue outgrew its bound: the peer does not read fast enough.
    /// What was not yet started is dropped, so the peer gets a gap-free
    /// prefix and then the close.
    TooSlow,
    /// A write failed: the peer is gone.
    Broken,
    /// The peer left too many pings unanswered: it is gone, or as good as.
    Unresponsive,
    /// The app ends the socket with this close code and reason, after
    /// whatever was queued before.
    Close(u16, &'static str),
}

/// What the socket's task is woken for.
#[derive(Debug, PartialEq, Eq)]
pub enum Wake {
    /// Everything queued went out.
    Flushed,
    /// The socket must end.
    Ended(Ending),
}

/// One socket's send side.
pub struct Outbox {
    stream: TcpStream,
    state: Mutex<State>,
    /// The socket's task, woken when it has frames to write or must end.
    task: AtomicWaker,
    /// How many frames may wait before the socket is too slow.
    max_queued: usize,
    /// How many bytes may wait before the socket is too slow.
    max_queued_bytes: usize,
}

#[derive(Default)]
struct State {
    /// Frames (or the rest of one) waiting to be written, in order.
    queue: VecDeque<Bytes>,
    /// The bytes in `queue`.
    queued_bytes: usize,
    /// The front frame is partly written: it must be finished before
    /// anything else, a close frame included.
    front_started: bool,
    /// The peer did not take the last write: the socket's task writes the
    /// queue when it can, and nobody else tries meanwhile.
    blocked: bool,
    /// Pings sent since the peer last answered one.
    unanswered_pings: u8,
    /// Why the socket must end, until its task learns it.
    ending: Option<Ending>,
    /// No frame from publishers is taken any more.
    closed: bool,
}

/// What one attempt to write the queue came to.
enum Written {
    /// The queue is empty.
    All,
    /// The peer takes no more for now: the task takes over.
    Blocked,
    /// The connection is broken.
    Failed,
}

impl Outbox {
    /// The send side of `stream`, cut off past `max_queued` waiting frames.
    pub fn new(stream: TcpStream, max_queued: usize) -> Outbox {
        Outbox {
            stream,
            state: Mutex::new(State::default()),
            task: AtomicWaker::new(),
            max_queued,
            max_queued_bytes: usize::MAX,
        }
    }

    /// The same outbox, also cut off once more than `max_queued_bytes`
    /// wait: what a reader that stopped may cost, whatever its frames' size.
    pub fn with_max_queued_bytes(mut self, max_queued_bytes: usize) -> Outbox {
        self.max_queued_bytes = max_queued_bytes;
        self
    }

    /// The connection, for the socket's task to read from.
    pub(crate) fn stream(&self) -> &TcpStream {
        &self.stream
    }

    /// The connection, once nobody else holds the outbox.
    pub fn into_stream(self) -> TcpStream {
        self.stream
    }

    /// Sends one complete frame. With `now` (a quiet chat) it is written at
    /// once, after whatever waited before it, unless the peer is not taking
    /// writes; without it (a busy chat) it waits for the next
    /// [`Outbox::flush`].
    pub fn send(&self, frame: Bytes, now: bool) {
        let wake = {
            let mut state = self.state.lock();
            if state.closed {
                return;
            }
            if state.queue.is_empty() && now && !state.blocked {
                // The everyday case, with no queue to touch.
                match self.stream.try_write(&frame) {
                    Ok(written) if written == frame.len() => return,
                    Ok(written) => {
                        state.push(frame.slice(written..));
                        state.front_started = true;
                        state.blocked = true;
                    }
                    Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                        state.push(frame);
                        state.blocked = true;
                    }
                    Err(_) => state.end(Ending::Broken),
                }
                true
            } else if self.is_full(&state, &frame) {
                state.end(Ending::TooSlow);
                true
            } else {
                state.push(frame);
                now && !state.blocked && self.write_queue(&mut state)
            }
        };
        if wake {
            self.task.wake();
        }
    }

    /// Sends several complete frames, in order, as [`Outbox::send`] does
    /// one: with `now`, in as few writes as the peer allows.
    pub fn send_all(&self, frames: &[Bytes], now: bool) {
        if let [frame] = frames {
            return self.send(frame.clone(), now);
        }
        let wake = {
            let mut state = self.state.lock();
            if state.closed {
                return;
            }
            let mut rest = frames;
            let mut written_of_first = 0;
            let direct = state.queue.is_empty() && now && !state.blocked;
            if direct {
                // The everyday case: straight from the frames, with no
                // queue to fill and free again.
                match self.write_frames(frames) {
                    Ok((whole, part)) => {
                        rest = &frames[whole..];
                        written_of_first = part;
                    }
                    Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
                    Err(_) => {
                        state.end(Ending::Broken);
                        rest = &[];
                    }
                }
                if rest.is_empty() && state.ending.is_none() {
                    return;
                }
            }
            let mut too_slow = false;
            for (index, frame) in rest.iter().enumerate() {
                if self.is_full(&state, frame) {
                    too_slow = true;
                    break;
                }
                if index == 0 && written_of_first > 0 {
                    state.push(frame.slice(written_of_first..));
                    state.front_started = true;
                } else {
                    state.push(frame.clone());
                }
            }
            if too_slow {
                state.end(Ending::TooSlow);
                true
            } else if direct {
                // What the peer did not take waits for the socket's task.
                state.blocked = state.blocked || state.ending.is_none();
                true
            } else {
                now && !state.blocked && self.write_queue(&mut state)
            }
        };
        if wake {
            self.task.wake();
        }
    }

    /// Writes `frames` in order, in vectored writes of up to
    /// `FRAMES_PER_WRITE`, until they are all written or the peer takes no
    /// more: how many went out whole, and how many bytes of the next one.
    fn write_frames(&self, frames: &[Bytes]) -> io::Result<(usize, usize)> {
        let mut whole = 0;
        while whole < frames.len() {
            let chunk = &frames[whole..frames.len().min(whole + FRAMES_PER_WRITE)];
            let mut slices = [IoSlice::new(&[]); FRAMES_PER_WRITE];
            for (slice, frame) in slices.iter_mut().zip(chunk) {
                *slice = IoSlice::new(frame);
            }
            let mut written = match self.stream.try_write_vectored(&slices[..chunk.len()]) {
                Ok(written) => written,
                // Some went out already: the rest waits, as if it blocked now.
                Err(error) if whole > 0 && error.kind() == io::ErrorKind::WouldBlock => 0,
                Err(error) => return Err(error),
            };
            for frame in chunk {
                if written < frame.len() {
                    return Ok((whole, written));
                }
                written -= frame.len();
                whole += 1;
            }
        }
        Ok((whole, 0))
    }

    /// Whether `frame` would take the queue past its bounds.
    fn is_full(&self, state: &State, frame: &Bytes) -> bool {
        state.queue.len() >= self.max_queued
            // One frame of any size may wait: the bound is on what piles up.
            || (!state.queue.is_empty()
                && state.queued_bytes + frame.len() > self.max_queued_bytes)
    }

    /// Sends a frame that is only worth sending now (a typing notice, a
    /// snapshot that the next one replaces): written at once, with what
    /// waits before it, unless the peer is behind (it did not take the
    /// last write), when it is dropped instead. False when dropped.
    pub fn send_volatile(&self, frame: Bytes) -> bool {
        {
            let state = self.state.lock();
            if state.closed || state.blocked {
                return false;
            }
        }
        self.send(frame, true);
        true
    }

    /// Writes everything queued, in as few writes as the peer allows: the
    /// clock of a busy chat calls it once per delay for every socket.
    pub fn flush(&self) {
        let wake = {
            let mut state = self.state.lock();
            !state.queue.is_empty() && !state.blocked && self.write_queue(&mut state)
        };
        if wake {
            self.task.wake();
        }
    }

    /// Sends a ping frame after whatever was sent before, and ends the
    /// socket instead once `limit` pings went unanswered: a keepalive for
    /// any number of sockets from one clock, with no timer per socket.
    pub fn ping(&self, frame: Bytes, limit: u8) {
        let unresponsive = {
            let mut state = self.state.lock();
            state.unanswered_pings = state.unanswered_pings.saturating_add(1);
            state.unanswered_pings > limit
        };
        if unresponsive {
            self.state.lock().end(Ending::Unresponsive);
            self.task.wake();
        } else {
            self.send(frame, true);
        }
    }

    /// The peer answered a ping.
    pub fn pong(&self) {
        self.state.lock().unanswered_pings = 0;
    }

    /// Ends the socket with `code` and `reason` once what is queued went
    /// out; frames published after this are dropped.
    pub fn end(&self, code: u16, reason: &'static str) {
        self.state.lock().end(Ending::Close(code, reason));
        self.task.wake();
    }

    /// Queues the last frame (a close frame) after everything else, even
    /// once the outbox is closed; the task then drains it with
    /// [`Outbox::poll_next`].
    pub fn send_last(&self, frame: Bytes) {
        let mut state = self.state.lock();
        state.closed = true;
        state.push(frame);
    }

    /// For the socket's task: the ending if there is one (the app's close
    /// once what was queued before it went out), else writes what is
    /// queued. `Flushed` once the queue is empty after a write; `Pending`
    /// while there is nothing to write or the peer does not take more (the
    /// task is woken when that changes).
    pub fn poll_next(&self, cx: &mut Context<'_>) -> Poll<Wake> {
        self.task.register(cx.waker());
        let mut state = self.state.lock();
        // The app's close comes after what was queued before it.
        let close_waits =
            matches!(state.ending, Some(Ending::Close(..))) && !state.queue.is_empty();
        if !close_waits && let Some(ending) = state.ending.take() {
            return Poll::Ready(Wake::Ended(ending));
        }
        if state.queue.is_empty() {
            return Poll::Pending;
        }
        for _ in 0..WRITES_PER_WAKE {
            match self.write_some(&mut state) {
                Ok(()) if state.queue.is_empty() => {
                    state.blocked = false;
                    // An idle socket keeps no memory from a burst.
                    state.queue = VecDeque::new();
                    state.queued_bytes = 0;
                    let ending = state.ending.take();
                    return Poll::Ready(ending.map_or(Wake::Flushed, Wake::Ended));
                }
                Ok(()) => {}
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    state.blocked = true;
                    // Registers for the peer reading again; ready at once
                    // means it did meanwhile, so write again.
                    match self.stream.poll_write_ready(cx) {
                        Poll::Ready(Ok(())) => {}
                        Poll::Ready(Err(_)) => return Poll::Ready(self.broken(&mut state)),
                        Poll::Pending => return Poll::Pending,
                    }
                }
                Err(_) => return Poll::Ready(self.broken(&mut state)),
            }
        }
        // A long queue: the rest after the other tasks had their turn.
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    /// Writes the queue for a publisher or the clock until it is empty or
    /// the peer takes no more: true when the task must be woken (to take
    /// over the writing, or to learn that the socket ends).
    fn write_queue(&self, state: &mut State) -> bool {
        let written = loop {
            match self.write_some(state) {
                Ok(()) if state.queue.is_empty() => break Written::All,
                Ok(()) => {}
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => break Written::Blocked,
                Err(_) => break Written::Failed,
            }
        };
        match written {
            Written::All => {
                // An idle socket keeps no memory from a burst: a busy one
                // allocates its queue again once per delay.
                state.queue = VecDeque::new();
                state.queued_bytes = 0;
                state.ending.is_some()
            }
            Written::Blocked => {
                state.blocked = true;
                true
            }
            Written::Failed => {
                state.end(Ending::Broken);
                true
            }
        }
    }

    /// One vectored write of the front of the queue; drops what went out.
    fn write_some(&self, state: &mut State) -> io::Result<()> {
        let mut slices = [IoSlice::new(&[]); FRAMES_PER_WRITE];
        let mut count = 0;
        for (slice, frame) in slices.iter_mut().zip(&state.queue) {
            *slice = IoSlice::new(frame);
            count += 1;
        }
        let mut written = self.stream.try_write_vectored(&slices[..count])?;
        while written > 0 {
            let Some(front) = state.queue.front_mut() else {
                break;
            };
            if written >= front.len() {
                let whole = front.len();
                written -= whole;
                state.queued_bytes -= whole;
                state.queue.pop_front();
                state.front_started = false;
            } else {
                front.advance(written);
                state.queued_bytes -= written;
                state.front_started = true;
                written = 0;
            }
        }
        Ok(())
    }

    fn broken(&self, state: &mut State) -> Wake {
        state.closed = true;
        state.queue.clear();
        state.queued_bytes = 0;
        Wake::Ended(Ending::Broken)
    }
}

impl State {
    fn push(&mut self, frame: Bytes) {
        self.queued_bytes += frame.len();
        self.queue.push_back(frame);
    }

    /// Records why the socket ends, unless it already ends; a socket too
    /// slow or broken drops every frame not yet started.
    fn end(&mut self, ending: Ending) {
        if self.closed {
            return;
        }
        self.closed = true;
        self.ending = Some(ending);
        if !matches!(ending, Ending::Close(..)) {
            let keep = usize::from(self.front_started);
            self.queue.truncate(keep);
            self.queued_bytes = self.queue.iter().map(Bytes::len).sum();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame;
    use std::future::poll_fn;
    use std::sync::Arc;
    use std::time::Duration;
    use tokio::io::AsyncReadExt;
    use tokio::net::{TcpListener, TcpSocket};

    /// An outbox on a connection with small buffers, so that writes block
    /// soon, and the peer's end of it.
    async fn outbox_and_peer(max_queued: usize) -> (Arc<Outbox>, TcpStream) {
        let listener = TcpSocket::new_v4().unwrap();
        listener.set_recv_buffer_size(4096).unwrap();
        listener.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let listener: TcpListener = listener.listen(8).unwrap();
        let socket = TcpSocket::new_v4().unwrap();
        socket.set_send_buffer_size(4096).unwrap();
        let ours = socket
            .connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (peer, _) = listener.accept().await.unwrap();
        (Arc::new(Outbox::new(ours, max_queued)), peer)
    }

    /// The socket's task: writes what is queued until the socket ends.
    async fn drive(outbox: Arc<Outbox>) -> Ending {
        loop {
            if let Wake::Ended(ending) = poll_fn(|cx| outbox.poll_next(cx)).await {
                return ending;
            }
        }
    }

    fn numbered(n: u32) -> Bytes {
        frame::text(format!("{n:08}").as_bytes())
    }

    /// The numbers of the whole frames in `received`, and whether bytes
    /// of a partial frame follow them.
    fn numbers(received: &[u8]) -> (Vec<u32>, bool) {
        let frames = received.chunks(10);
        let whole: Vec<u32> = frames
            .clone()
            .filter(|frame| frame.len() == 10)
            .map(|frame| std::str::from_utf8(&frame[2..]).unwrap().parse().unwrap())
            .collect();
        (whole, !received.len().is_multiple_of(10))
    }

    #[tokio::test]
    async fn frames_arrive_in_order_whoever_writes_them() {
        let (outbox, mut peer) = outbox_and_peer(100_000).await;
        let task = tokio::spawn(drive(outbox.clone()));
        let mut saw_a_queue = false;
        for n in 0..20_000 {
            // Quiet and busy alike: straight writes and queued ones mix.
            outbox.send(numbered(n), n % 7 != 0);
            saw_a_queue |= !outbox.state.lock().queue.is_empty();
            if n % 1000 == 0 {
                tokio::task::yield_now().await;
            }
        }
        outbox.send(numbered(20_000), true);
        outbox.end(1000, "done");
        let mut received = Vec::new();
        let reader = async {
            let mut chunk = [0u8; 1024];
            while received.len() < 20_001 * 10 {
                let read = peer.read(&mut chunk).await.unwrap();
                assert!(read > 0, "closed early");
                received.extend_from_slice(&chunk[..read]);
                // A slow reader: the writes block and fall back to the task.
                tokio::time::sleep(Duration::from_micros(50)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(30), reader)
            .await
            .expect("everything arrives");
        assert!(saw_a_queue, "some writes would have blocked");
        let (got, partial) = numbers(&received);
        assert_eq!(got, (0..=20_000).collect::<Vec<_>>());
        assert!(!partial);
        let ended = tokio::time::timeout(Duration::from_secs(10), task).await;
        assert_eq!(ended.unwrap().unwrap(), Ending::Close(1000, "done"));
    }

    #[tokio::test]
    async fn a_batch_goes_out_in_order_and_counts_frame_by_frame_toward_the_bound() {
        let (outbox, mut peer) = outbox_and_peer(100).await;
        outbox.send_all(&[numbered(1), numbered(2), numbered(3)], true);
        assert!(outbox.state.lock().queue.is_empty(), "written at once");
        let mut received = [0u8; 30];
        let read = tokio::time::timeout(Duration::from_secs(10), peer.read_exact(&mut received));
        read.await.expect("the batch arrives").unwrap();
        assert_eq!(numbers(&received), (vec![1, 2, 3], false));
        let (small, _peer) = outbox_and_peer(2).await;
        small.send_all(&[numbered(1), numbered(2), numbered(3)], false);
        assert_eq!(
            small.state.lock().ending,
            Some(Ending::TooSlow),
            "three frames are past a bound of two"
        );
    }

    #[tokio::test]
    async fn a_batch_the_peer_does_not_take_at_once_finishes_through_the_task_in_order() {
        let (outbox, mut peer) = outbox_and_peer(100_000).await;
        // A large frame in the middle is cut by the small buffers for sure.
        let large = frame::text(&[b'x'; 100_000]);
        let mut batch: Vec<Bytes> = (0..100).map(numbered).collect();
        batch.push(large.clone());
        batch.extend((100..200).map(numbered));
        outbox.send_all(&batch, true);
        assert!(
            !outbox.state.lock().queue.is_empty(),
            "100 KB do not fit the small buffers: the rest waits"
        );
        outbox.send_all(&[numbered(200), numbered(201)], true);
        let task = tokio::spawn(drive(outbox.clone()));
        let expected: Vec<u8> = batch
            .iter()
            .chain([&numbered(200), &numbered(201)])
            .flat_map(|frame| frame.iter().copied())
            .collect();
        let mut received = vec![0u8; expected.len()];
        let read = tokio::time::timeout(Duration::from_secs(10), peer.read_exact(&mut received));
        read.await.expect("everything arrives").unwrap();
        assert!(received == expected, "every byte once, in order");
        task.abort();
    }

    #[tokio::test]
    async fn a_socket_too_slow_is_cut_off_after_a_gap_free_prefix() {
        let (outbox, mut peer) = outbox_and_peer(16).await;
        let task = tokio::spawn(drive(outbox.clone()));
        for n in 0..10_000 {
            outbox.send(numbered(n), true);
        }
        let ended = tokio::time::timeout(Duration::from_secs(10), task).await;
        let ended = ended.expect("a socket past its bound is ended, not left open");
        assert_eq!(ended.unwrap(), Ending::TooSlow);
        // The task says goodbye after whatever was started.
        outbox.send_last(frame::close(1013, "too slow"));
        let drained = tokio::spawn(drive(outbox.clone()));
        let mut received = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), async {
            let mut chunk = [0u8; 4096];
            while !received.ends_with(&frame::close(1013, "too slow")) {
                let read = peer.read(&mut chunk).await.unwrap();
                assert!(read > 0, "closed before the close frame");
                received.extend_from_slice(&chunk[..read]);
            }
        })
        .await
        .expect("the close frame arrives");
        drained.abort();
        let close = frame::close(1013, "too slow");
        let (got, partial) = numbers(&received[..received.len() - close.len()]);
        assert!(!partial, "a frame was cut in two");
        assert_eq!(got, (0..got.len() as u32).collect::<Vec<_>>());
        assert!(got.len() < 10_000);
    }

    #[tokio::test]
    async fn too_many_queued_bytes_cut_the_socket_off_too() {
        let (outbox, _peer) = outbox_and_peer(100_000).await;
        let outbox = Arc::try_unwrap(outbox)
            .ok()
            .unwrap()
            .with_max_queued_bytes(25);
        outbox.send(numbered(1), false);
        outbox.send(numbered(2), false);
        assert!(outbox.state.lock().ending.is_none(), "20 bytes fit in 25");
        outbox.send(numbered(3), false);
        assert_eq!(outbox.state.lock().ending, Some(Ending::TooSlow));
        let (big, _peer) = outbox_and_peer(100_000).await;
        let big = Arc::try_unwrap(big).ok().unwrap().with_max_queued_bytes(5);
        big.send(numbered(1), false);
        assert!(
            big.state.lock().ending.is_none(),
            "one frame of any size may wait"
        );
    }

    #[tokio::test]
    async fn a_volatile_frame_is_dropped_for_a_peer_behind_and_sent_otherwise() {
        let (outbox, mut peer) = outbox_and_peer(100_000).await;
        outbox.send(numbered(1), false);
        assert!(outbox.send_volatile(numbered(2)), "written with the queue");
        let mut received = [0u8; 20];
        let read = tokio::time::timeout(Duration::from_secs(10), peer.read_exact(&mut received));
        read.await.expect("the frames arrive").unwrap();
        assert_eq!(numbers(&received), (vec![1, 2], false));
        // More than the small buffers take: the peer falls behind.
        for n in 0..20_000 {
            outbox.send(numbered(n), true);
        }
        assert!(outbox.state.lock().blocked);
        assert!(
            !outbox.send_volatile(numbered(3)),
            "dropped for a peer behind"
        );
    }

    #[tokio::test]
    async fn a_drained_queue_gives_its_memory_back() {
        let (outbox, mut peer) = outbox_and_peer(100_000).await;
        for n in 0..5_000 {
            outbox.send(numbered(n), false);
        }
        assert!(outbox.state.lock().queue.capacity() > 0);
        let task = tokio::spawn({
            let outbox = outbox.clone();
            async move { poll_fn(|cx| outbox.poll_next(cx)).await }
        });
        let mut received = 0;
        let mut chunk = [0u8; 8192];
        let read_all = async {
            while received < 5_000 * 10 {
                received += peer.read(&mut chunk).await.unwrap();
            }
            task.await.unwrap()
        };
        let flushed = tokio::time::timeout(Duration::from_secs(10), read_all).await;
        assert_eq!(flushed.expect("the queue drains"), Wake::Flushed);
        assert_eq!(outbox.state.lock().queue.capacity(), 0);
    }

    #[tokio::test]
    async fn a_busy_frame_waits_for_the_flush() {
        let (outbox, mut peer) = outbox_and_peer(100).await;
        outbox.send(numbered(1), false);
        outbox.send(numbered(2), false);
        assert_eq!(outbox.state.lock().queue.len(), 2, "busy: nothing written");
        outbox.flush();
        {
            let state = outbox.state.lock();
            assert!(state.queue.is_empty(), "one flush wrote both");
            let capacity = state.queue.capacity();
            assert_eq!(capacity, 0, "and gave the queue's buffer back");
        }
        let mut received = [0u8; 20];
        let read = tokio::time::timeout(Duration::from_secs(10), peer.read_exact(&mut received));
        read.await.expect("the flushed frames arrive").unwrap();
        assert_eq!(numbers(&received), (vec![1, 2], false));
    }

    #[tokio::test]
    async fn a_flush_the_peer_does_not_take_falls_back_to_the_task_in_order() {
        let (outbox, mut peer) = outbox_and_peer(100_000).await;
        // More than the small buffers take: the flush blocks part way.
        for n in 0..20_000 {
            outbox.send(numbered(n), false);
        }
        outbox.flush();
        assert!(outbox.state.lock().blocked, "the peer took only part of it");
        // While the task owns the writing, neither a flush nor a quiet
        // frame writes past it.
        outbox.send(numbered(20_000), true);
        outbox.flush();
        let task = tokio::spawn(drive(outbox.clone()));
        let mut received = vec![0u8; 20_001 * 10];
        let read = tokio::time::timeout(Duration::from_secs(10), peer.read_exact(&mut received));
        read.await.expect("everything arrives").unwrap();
        assert_eq!(numbers(&received), ((0..=20_000).collect(), false));
        outbox.end(1000, "done");
        let ended = tokio::time::timeout(Duration::from_secs(10), task).await;
        assert_eq!(ended.unwrap().unwrap(), Ending::Close(1000, "done"));
    }

    #[tokio::test]
    async fn a_quiet_frame_after_a_busy_burst_takes_the_burst_with_it() {
        let (outbox, mut peer) = outbox_and_peer(100).await;
        outbox.send(numbered(1), false);
        outbox.send(numbered(2), true);
        {
            let state = outbox.state.lock();
            assert!(state.queue.is_empty(), "both written at once, in order");
            assert_eq!(state.queue.capacity(), 0, "and the queue's buffer released");
        }
        let mut received = [0u8; 20];
        let read = tokio::time::timeout(Duration::from_secs(10), peer.read_exact(&mut received));
        read.await.expect("both arrive").unwrap();
        assert_eq!(numbers(&received), (vec![1, 2], false));
    }

    #[tokio::test]
    async fn a_peer_that_leaves_pings_unanswered_is_ended() {
        let (outbox, mut peer) = outbox_and_peer(100).await;
        let ping = frame::ping();
        outbox.ping(ping.clone(), 2);
        outbox.ping(ping.clone(), 2);
        outbox.pong();
        outbox.ping(ping.clone(), 2);
        outbox.ping(ping.clone(), 2);
        assert_eq!(
            outbox.state.lock().ending,
            None,
            "two unanswered are allowed"
        );
        outbox.ping(ping.clone(), 2);
        let woke =
            tokio::time::timeout(Duration::from_secs(10), poll_fn(|cx| outbox.poll_next(cx)));
        assert_eq!(
            woke.await.expect("the task learns it"),
            Wake::Ended(Ending::Unresponsive)
        );
        let mut received = vec![0u8; 4 * ping.len()];
        let read = tokio::time::timeout(Duration::from_secs(10), peer.read_exact(&mut received));
        read.await.expect("the four pings went out").unwrap();
        assert_eq!(received, ping.repeat(4));
    }
}
