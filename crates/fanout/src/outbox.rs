//! One socket's way out, shared by whoever publishes to it and by the
//! socket's own task (see the crate's documentation for the design).
//!
//! The rule for every frame, under the outbox's lock: when nothing waits
//! in the queue and the socket's task is not holding it, the publisher
//! writes the frame itself, at once; whatever that write does not take,
//! and every frame that finds something queued, is queued, and the task
//! is woken to write it when the peer reads again. A frame is never
//! skipped: a queue past its bound ends the socket instead.

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
}

#[derive(Default)]
struct State {
    /// Frames (or the rest of one) waiting to be written, in order.
    queue: VecDeque<Bytes>,
    /// The front frame is partly written: it must be finished before
    /// anything else, a close frame included.
    front_started: bool,
    /// The task holds the queue to batch it: publishers only add to it.
    holding: bool,
    /// Why the socket must end, until its task learns it.
    ending: Option<Ending>,
    /// No frame from publishers is taken any more.
    closed: bool,
}

impl Outbox {
    /// The send side of `stream`, cut off past `max_queued` waiting frames.
    pub fn new(stream: TcpStream, max_queued: usize) -> Outbox {
        Outbox {
            stream,
            state: Mutex::new(State::default()),
            task: AtomicWaker::new(),
            max_queued,
        }
    }

    /// The connection, for the socket's task to read from.
    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }

    /// The connection, once nobody else holds the outbox.
    pub fn into_stream(self) -> TcpStream {
        self.stream
    }

    /// Sends one complete frame. With `now` (a quiet chat) a socket with
    /// nothing queued is written at once; without it (a busy chat) the
    /// frame is queued and the task, unless it holds the queue, is woken
    /// to write it with whatever else comes meanwhile.
    pub fn send(&self, frame: Bytes, now: bool) {
        let wake = {
            let mut state = self.state.lock();
            if state.closed {
                return;
            }
            let was_empty = state.queue.is_empty();
            if was_empty && now && !state.holding {
                match self.stream.try_write(&frame) {
                    Ok(written) if written == frame.len() => return,
                    Ok(written) => {
                        state.queue.push_back(frame.slice(written..));
                        state.front_started = true;
                    }
                    Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                        state.queue.push_back(frame);
                    }
                    Err(_) => state.end(Ending::Broken),
                }
                true
            } else if state.queue.len() >= self.max_queued {
                state.end(Ending::TooSlow);
                true
            } else {
                state.queue.push_back(frame);
                was_empty && !state.holding
            }
        };
        if wake {
            self.task.wake();
        }
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
        state.queue.push_back(frame);
    }

    /// While `holding`, publishers only queue: the task writes what
    /// gathered when it stops holding.
    pub fn hold(&self, holding: bool) {
        self.state.lock().holding = holding;
    }

    /// For the socket's task: the ending if there is one (the app's close
    /// once what was queued before it went out), else writes what is
    /// queued. `Flushed` once the queue is empty after a write;
    /// `Pending` while there is nothing to write, the task holds the
    /// queue, or the peer does not take more (the task is woken when that
    /// changes).
    pub fn poll_next(&self, cx: &mut Context<'_>) -> Poll<Wake> {
        self.task.register(cx.waker());
        let mut state = self.state.lock();
        // The app's close comes after what was queued before it.
        let close_waits =
            matches!(state.ending, Some(Ending::Close(..))) && !state.queue.is_empty();
        if !close_waits && let Some(ending) = state.ending.take() {
            return Poll::Ready(Wake::Ended(ending));
        }
        if state.queue.is_empty() || (state.holding && !state.closed) {
            return Poll::Pending;
        }
        for _ in 0..WRITES_PER_WAKE {
            match self.write_some(&mut state) {
                Ok(()) if state.queue.is_empty() => {
                    // An idle socket keeps no memory from a burst: a busy
                    // one allocates its queue again once per delay.
                    state.queue = VecDeque::new();
                    let ending = state.ending.take();
                    return Poll::Ready(ending.map_or(Wake::Flushed, Wake::Ended));
                }
                Ok(()) => {}
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
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
                written -= front.len();
                state.queue.pop_front();
                state.front_started = false;
            } else {
                front.advance(written);
                state.front_started = true;
                written = 0;
            }
        }
        Ok(())
    }

    fn broken(&self, state: &mut State) -> Wake {
        state.closed = true;
        state.queue.clear();
        Wake::Ended(Ending::Broken)
    }
}

impl State {
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
    async fn a_held_queue_waits_for_the_task() {
        let (outbox, mut peer) = outbox_and_peer(100).await;
        outbox.hold(true);
        outbox.send(numbered(1), true);
        outbox.send(numbered(2), true);
        assert_eq!(outbox.state.lock().queue.len(), 2, "held: nothing written");
        outbox.hold(false);
        let flushed = tokio::time::timeout(Duration::from_secs(10), async {
            let flushed = poll_fn(|cx| outbox.poll_next(cx)).await;
            let mut received = [0u8; 20];
            peer.read_exact(&mut received).await.unwrap();
            (flushed, received)
        });
        let (flushed, received) = flushed.await.expect("the held frames go out");
        assert_eq!(flushed, Wake::Flushed);
        assert_eq!(numbers(&received), (vec![1, 2], false));
    }
}
