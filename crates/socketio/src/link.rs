//! One client's way out, whatever its transport: the packets of a
//! long-polling client wait here for its next GET; a WebSocket client's
//! go through its [`Outbox`] (crates/fanout), written straight from the
//! publisher when nothing is queued.
//!
//! Every packet is built as a complete WebSocket text frame ([`Frame`]),
//! once for all the sockets it goes to; a long-polling client gets the
//! frame's payload, a view into the same bytes. The upgrade moves what a
//! long-polling client had not fetched yet into the outbox, ahead of
//! anything sent afterwards, so the order holds across the switch.

use crate::eio_packet::outgoing;
use bytes::Bytes;
use fanout::{Outbox, Wake};
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

/// One Engine.IO packet as a complete WebSocket text frame, shared by every
/// socket it goes to.
#[derive(Clone, Debug)]
pub struct Frame(Bytes);

impl Frame {
    /// The frame of one Engine.IO packet (`text` starts with its type digit).
    pub fn new(text: &[u8]) -> Frame {
        Frame(fanout::frame::text(text))
    }

    /// A Socket.IO event with one argument, `42["name",data]`.
    pub fn event<T: serde::Serialize + ?Sized>(name: &str, data: &T) -> serde_json::Result<Frame> {
        let mut text = Vec::with_capacity(64);
        crate::sio_packet::encode::event(&mut text, name, data)?;
        Ok(Frame::new(&text))
    }

    /// A Socket.IO event with one argument and the offset a recovering
    /// client hands back (see [`crate::Resume`]) as the last one,
    /// `42["name",data,"offset"]`.
    pub fn event_with_offset<T: serde::Serialize + ?Sized>(
        name: &str,
        data: &T,
        offset: &str,
    ) -> serde_json::Result<Frame> {
        let mut text = Vec::with_capacity(64);
        crate::sio_packet::encode::event_with_offset(&mut text, name, data, offset)?;
        Ok(Frame::new(&text))
    }

    /// The packet itself: what a long-polling client gets.
    pub fn packet(&self) -> Bytes {
        // The header of a server frame: two bytes, then two or eight
        // more for a 16- or 64-bit length.
        let header = match self.0.get(1).map(|len| len & 0x7F) {
            Some(126) => 4,
            Some(127) => 10,
            _ => 2,
        };
        self.0.slice(header.min(self.0.len())..)
    }

    /// The complete WebSocket frame.
    pub fn bytes(&self) -> &Bytes {
        &self.0
    }
}

/// Why the runtime ends a session on the way out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cutoff {
    /// More packets wait than the bound allows: the client does not fetch
    /// or read them fast enough. It got a gap-free prefix.
    TooSlow,
    /// The connection broke.
    Broken,
}

/// A client's way out.
pub(crate) struct Link {
    way: Mutex<Way>,
    /// How many packets may wait for a long-polling client before it is
    /// too slow (a WebSocket's outbox has its own bounds).
    max_queued: usize,
    /// How many bytes of packets may wait for it.
    max_queued_bytes: usize,
}

enum Way {
    Polling(Polling),
    WebSocket(Arc<Outbox>),
}

/// What a long-polling client has not fetched yet.
#[derive(Default)]
struct Polling {
    queue: VecDeque<Bytes>,
    /// The bytes in `queue`.
    queued_bytes: usize,
    /// The pending GET, woken when there is something to answer.
    get: Option<Waker>,
    /// A GET is in flight.
    getting: bool,
    /// An upgrade is under way: an empty GET is answered with a noop.
    upgrading: bool,
    /// The session is over: a GET is answered with the close packet.
    closed: bool,
    cutoff: Option<Cutoff>,
    /// The session's task, woken for a cutoff.
    task: Option<Waker>,
}

/// What a GET takes from a long-polling client's link.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Fetch {
    /// The packets of one payload.
    Packets(Vec<Bytes>),
    /// Another GET is in flight: the protocol closes the session.
    Overlap,
    /// The session now speaks WebSocket: no GET any more.
    Upgraded,
}

impl Link {
    /// The way out of a long-polling client, cut off past `max_queued`
    /// packets or `max_queued_bytes` bytes waiting.
    pub(crate) fn polling(max_queued: usize, max_queued_bytes: usize) -> Link {
        Link {
            way: Mutex::new(Way::Polling(Polling::default())),
            max_queued,
            max_queued_bytes,
        }
    }

    /// The way out of a WebSocket client (the outbox has its bounds).
    pub(crate) fn websocket(outbox: Arc<Outbox>) -> Link {
        Link {
            way: Mutex::new(Way::WebSocket(outbox)),
            max_queued: 0,
            max_queued_bytes: 0,
        }
    }

    /// Sends one packet, after everything sent before it: written at once
    /// (`now`), or with the next [`Link::flush`] (a busy room's).
    pub(crate) fn send(&self, frame: &Frame, now: bool) {
        let mut way = self.way.lock();
        match &mut *way {
            Way::WebSocket(outbox) => outbox.send(frame.bytes().clone(), now),
            Way::Polling(polling) => {
                if polling.closed {
                    return;
                }
                let packet = frame.packet();
                if polling.queue.len() >= self.max_queued
                    // One packet of any size may wait: the bound is on what
                    // piles up.
                    || (!polling.queue.is_empty()
                        && polling.queued_bytes + packet.len() > self.max_queued_bytes)
                {
                    polling.closed = true;
                    polling.cutoff = Some(Cutoff::TooSlow);
                    polling.wake_all();
                    return;
                }
                polling.queued_bytes += packet.len();
                polling.queue.push_back(packet);
                if let Some(get) = polling.get.take() {
                    get.wake();
                }
            }
        }
    }

    /// Sends a packet only worth sending now: dropped (false) for a
    /// WebSocket client that is behind, or a session that is over.
    pub(crate) fn send_volatile(&self, frame: &Frame) -> bool {
        let way = self.way.lock();
        let outbox = match &*way {
            Way::WebSocket(outbox) => outbox.clone(),
            Way::Polling(polling) => {
                let closed = polling.closed;
                drop(way);
                if !closed {
                    self.send(frame, true);
                }
                return !closed;
            }
        };
        drop(way);
        outbox.send_volatile(frame.bytes().clone())
    }

    /// Writes what waits for a WebSocket client (a long-polling client's
    /// GET takes everything anyway).
    pub(crate) fn flush(&self) {
        if let Way::WebSocket(outbox) = &*self.way.lock() {
            outbox.flush();
        }
    }

    /// The outbox, once the client speaks WebSocket.
    pub(crate) fn outbox(&self) -> Option<Arc<Outbox>> {
        match &*self.way.lock() {
            Way::WebSocket(outbox) => Some(outbox.clone()),
            Way::Polling(_) => None,
        }
    }

    /// A GET starts: at most one at a time, and only while polling.
    pub(crate) fn begin_fetch(&self) -> Result<(), Fetch> {
        let mut way = self.way.lock();
        let Way::Polling(polling) = &mut *way else {
            return Err(Fetch::Upgraded);
        };
        if polling.getting {
            return Err(Fetch::Overlap);
        }
        polling.getting = true;
        Ok(())
    }

    /// For the GET in flight: the packets waiting (at once if there are
    /// some), a noop during an upgrade, the close packet once the session
    /// is over.
    pub(crate) fn poll_fetch(&self, cx: &mut Context<'_>) -> Poll<Fetch> {
        let mut way = self.way.lock();
        let Way::Polling(polling) = &mut *way else {
            // Upgraded meanwhile: this GET ends the long-polling.
            return Poll::Ready(Fetch::Packets(vec![Bytes::from_static(outgoing::NOOP)]));
        };
        if !polling.queue.is_empty() {
            polling.get = None;
            polling.queued_bytes = 0;
            let packets = std::mem::take(&mut polling.queue).into();
            // A closing session waits for its last packets to be fetched.
            if let Some(task) = polling.task.take() {
                task.wake();
            }
            return Poll::Ready(Fetch::Packets(packets));
        }
        if polling.closed {
            return Poll::Ready(Fetch::Packets(vec![Bytes::from_static(outgoing::CLOSE)]));
        }
        if polling.upgrading {
            return Poll::Ready(Fetch::Packets(vec![Bytes::from_static(outgoing::NOOP)]));
        }
        polling.get = Some(cx.waker().clone());
        Poll::Pending
    }

    /// The GET in flight is answered or gone.
    pub(crate) fn fetch_done(&self) {
        if let Way::Polling(polling) = &mut *self.way.lock() {
            polling.getting = false;
            polling.get = None;
        }
    }

    /// An upgrade probe succeeded: a pending GET ends with a noop.
    pub(crate) fn start_upgrade(&self) {
        if let Way::Polling(polling) = &mut *self.way.lock() {
            polling.upgrading = true;
            if let Some(get) = polling.get.take() {
                get.wake();
            }
        }
    }

    /// The upgrade is complete: what the client had not fetched goes first
    /// through `outbox`, then everything else.
    pub(crate) fn switch_to(&self, outbox: Arc<Outbox>) {
        let mut way = self.way.lock();
        if let Way::Polling(polling) = &mut *way {
            polling.queued_bytes = 0;
            for packet in polling.queue.drain(..) {
                outbox.send(fanout::frame::text(&packet), true);
            }
            if let Some(get) = polling.get.take() {
                get.wake();
            }
        }
        *way = Way::WebSocket(outbox);
    }

    /// The session is over: nothing more is taken, and a long-polling
    /// client's GET gets the close packet.
    pub(crate) fn close(&self) {
        if let Way::Polling(polling) = &mut *self.way.lock() {
            polling.closed = true;
            if let Some(get) = polling.get.take() {
                get.wake();
            }
        }
    }

    /// For a closing session's task: ready once a long-polling client
    /// fetched everything sent to it.
    pub(crate) fn poll_fetched(&self, cx: &mut Context<'_>) -> Poll<()> {
        match &mut *self.way.lock() {
            Way::Polling(polling) if !polling.queue.is_empty() => {
                polling.task = Some(cx.waker().clone());
                Poll::Pending
            }
            _ => Poll::Ready(()),
        }
    }

    /// For the session's last step: the outbox, which the link lets go;
    /// whatever is sent afterwards is dropped.
    pub(crate) fn detach(&self) -> Option<Arc<Outbox>> {
        let closed = Way::Polling(Polling {
            closed: true,
            ..Polling::default()
        });
        match std::mem::replace(&mut *self.way.lock(), closed) {
            Way::WebSocket(outbox) => Some(outbox),
            Way::Polling(_) => None,
        }
    }

    /// For the session's task: writes what the outbox queued, and says
    /// when the way out is cut off. `Pending` while all is well.
    pub(crate) fn poll_cutoff(&self, cx: &mut Context<'_>) -> Poll<Cutoff> {
        let outbox = {
            let mut way = self.way.lock();
            match &mut *way {
                Way::Polling(polling) => {
                    if let Some(cutoff) = polling.cutoff.take() {
                        return Poll::Ready(cutoff);
                    }
                    polling.task = Some(cx.waker().clone());
                    return Poll::Pending;
                }
                Way::WebSocket(outbox) => outbox.clone(),
            }
        };
        loop {
            match outbox.poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Wake::Flushed) => {}
                Poll::Ready(Wake::Ended(fanout::Ending::TooSlow)) => {
                    return Poll::Ready(Cutoff::TooSlow);
                }
                Poll::Ready(Wake::Ended(_)) => return Poll::Ready(Cutoff::Broken),
            }
        }
    }
}

impl Polling {
    fn wake_all(&mut self) {
        if let Some(get) = self.get.take() {
            get.wake();
        }
        if let Some(task) = self.task.take() {
            task.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::task::noop_waker_ref;

    fn fetch(link: &Link) -> Poll<Fetch> {
        link.poll_fetch(&mut Context::from_waker(noop_waker_ref()))
    }

    #[test]
    fn a_frame_gives_long_polling_its_packet() {
        let small = Frame::new(b"42[1]");
        assert_eq!(&small.packet()[..], b"42[1]");
        let long = "4".repeat(300);
        assert_eq!(&Frame::new(long.as_bytes()).packet()[..], long.as_bytes());
        let huge = "4".repeat(70_000);
        assert_eq!(&Frame::new(huge.as_bytes()).packet()[..], huge.as_bytes());
    }

    #[test]
    fn a_get_takes_everything_waiting_and_a_second_one_overlaps() {
        let link = Link::polling(10, usize::MAX);
        assert_eq!(link.begin_fetch(), Ok(()));
        assert!(fetch(&link).is_pending());
        assert_eq!(link.begin_fetch(), Err(Fetch::Overlap));
        link.send(&Frame::new(b"2"), true);
        link.send(&Frame::new(b"42[1]"), true);
        let Poll::Ready(Fetch::Packets(packets)) = fetch(&link) else {
            panic!("the packets were waiting");
        };
        assert_eq!(packets, [&b"2"[..], b"42[1]"]);
        link.fetch_done();
        link.start_upgrade();
        assert_eq!(link.begin_fetch(), Ok(()));
        assert_eq!(
            fetch(&link),
            Poll::Ready(Fetch::Packets(vec![Bytes::from_static(b"6")]))
        );
    }

    #[test]
    fn a_client_that_does_not_fetch_is_cut_off() {
        let link = Link::polling(2, usize::MAX);
        for _ in 0..3 {
            link.send(&Frame::new(b"42[1]"), true);
        }
        let cutoff = link.poll_cutoff(&mut Context::from_waker(noop_waker_ref()));
        assert_eq!(cutoff, Poll::Ready(Cutoff::TooSlow));
        let Poll::Ready(Fetch::Packets(packets)) = fetch(&link) else {
            panic!("the prefix is still there");
        };
        assert_eq!(packets.len(), 2);
    }
}
