//! A second pair of hands for a fan-out: a thread that writes its share of
//! every frame on another core while the publisher writes the rest, so
//! that a frame reaches a thousand sockets in about half the time on a
//! machine with two cores, at the cost of one wake-up per frame (not one
//! per socket).
//!
//! Each socket must always be written by the same hands: a socket whose
//! frames went through the lane once and past it the next time could see
//! them out of order. The publisher gives every socket its side once, for
//! good ([`Lane::takes`]), and tells the lane which sockets are its own
//! ([`Lane::add`], [`Lane::remove`]) in the same ordered stream as the
//! frames, so the lane's list is exactly the publisher's at every frame.
//! The lane keeps that list itself, and gets its own copy of each frame,
//! so that the two cores never share a reference count.

use crate::outbox::Outbox;
use bytes::Bytes;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::mpsc;

/// What the publisher tells the lane, in publication order.
enum Command {
    Add(u64, Arc<Outbox>),
    Remove(u64),
    Send {
        frames: Vec<Bytes>,
        now: bool,
        except: Option<u64>,
    },
    Flush,
    Ping {
        frame: Bytes,
        limit: u8,
    },
}

/// The publisher's end of the lane.
pub struct Lane {
    commands: mpsc::UnboundedSender<Command>,
}

impl Lane {
    /// Starts the lane's thread, on a machine with more than one core
    /// (with one, the thread would only take turns with the publisher);
    /// it ends with the lane. A thread of its own rather than a task: a
    /// task woken by the publisher would wait for the publisher's worker
    /// thread to be done with the frame, and write its share after it, not
    /// meanwhile.
    pub fn spawn() -> std::io::Result<Option<Lane>> {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        if cores < 2 {
            return Ok(None);
        }
        let (commands, mut received) = mpsc::unbounded_channel::<Command>();
        std::thread::Builder::new()
            .name("fanout-lane".into())
            .spawn(move || {
                let mut sockets: HashMap<u64, Arc<Outbox>> = HashMap::new();
                let mut next = received.blocking_recv();
                while let Some(command) = next.take() {
                    match command {
                        Command::Add(socket, outbox) => {
                            sockets.insert(socket, outbox);
                        }
                        Command::Remove(socket) => {
                            sockets.remove(&socket);
                        }
                        Command::Send {
                            mut frames,
                            now,
                            except,
                        } => {
                            // Frames published while the lane was writing
                            // leave together, one write per socket.
                            next = take_alike_sends(&mut received, &mut frames, now, except);
                            for (socket, outbox) in &sockets {
                                if Some(*socket) != except {
                                    outbox.send_all(&frames, now);
                                }
                            }
                        }
                        Command::Flush => {
                            for outbox in sockets.values() {
                                outbox.flush();
                            }
                        }
                        Command::Ping { frame, limit } => {
                            for outbox in sockets.values() {
                                outbox.ping(frame.clone(), limit);
                            }
                        }
                    }
                    if next.is_none() {
                        next = received.blocking_recv();
                    }
                }
            })?;
        Ok(Some(Lane { commands }))
    }

    /// Whether the socket numbered `socket` is written by the lane: every
    /// other one, by a number that a socket keeps for its whole life.
    pub fn takes(socket: u64) -> bool {
        socket % 2 == 1
    }

    /// The lane writes to `socket` from the next frame on.
    pub fn add(&self, socket: u64, outbox: Arc<Outbox>) {
        self.command(Command::Add(socket, outbox));
    }

    /// The lane no longer writes to `socket`.
    pub fn remove(&self, socket: u64) {
        self.command(Command::Remove(socket));
    }

    /// Sends `frames` to every socket of the lane but `except`, after
    /// every frame before them.
    pub fn send(&self, frames: &[Bytes], now: bool, except: Option<u64>) {
        self.command(Command::Send {
            frames: frames
                .iter()
                .map(|frame| Bytes::copy_from_slice(frame))
                .collect(),
            now,
            except,
        });
    }

    /// Flushes every socket of the lane ([`Outbox::flush`]).
    pub fn flush(&self) {
        self.command(Command::Flush);
    }

    /// Pings every socket of the lane ([`Outbox::ping`]).
    pub fn ping(&self, frame: &[u8], limit: u8) {
        self.command(Command::Ping {
            frame: Bytes::copy_from_slice(frame),
            limit,
        });
    }

    fn command(&self, command: Command) {
        // Fails only once the lane's thread is gone: the process is ending.
        let _ = self.commands.send(command);
    }
}

/// Adds to `frames` the sends queued right behind them for the same
/// sockets; returns the first command that is not one, to be run next.
fn take_alike_sends(
    received: &mut mpsc::UnboundedReceiver<Command>,
    frames: &mut Vec<Bytes>,
    now: bool,
    except: Option<u64>,
) -> Option<Command> {
    loop {
        match received.try_recv() {
            Ok(Command::Send {
                frames: more,
                now: more_now,
                except: more_except,
            }) if more_now == now && more_except == except => frames.extend(more),
            Ok(other) => return Some(other),
            Err(_) => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame;
    use tokio::io::AsyncReadExt;
    use tokio::net::{TcpListener, TcpStream};

    async fn outbox_and_peer() -> (Arc<Outbox>, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let peer = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (ours, _) = listener.accept().await.unwrap();
        ours.writable().await.unwrap();
        (Arc::new(Outbox::new(ours, 100_000)), peer)
    }

    #[tokio::test]
    async fn the_lane_sends_in_order_to_its_sockets_and_only_while_they_are_its_own() {
        let Some(lane) = Lane::spawn().unwrap() else {
            return; // one core: no lane to test
        };
        let (outbox, mut peer) = outbox_and_peer().await;
        lane.send(&[frame::text(b"before")], true, None);
        lane.add(1, outbox.clone());
        for n in 0..1000u32 {
            lane.send(&[frame::text(format!("{n:04}").as_bytes())], true, None);
        }
        lane.send(&[frame::text(b"skip")], true, Some(1));
        lane.remove(1);
        lane.send(&[frame::text(b"after")], true, None);
        // A marker through the lane's own order: once it is seen, every
        // frame before it was written.
        lane.add(2, outbox.clone());
        lane.send(&[frame::text(b"done")], true, None);
        let mut expected = Vec::new();
        for n in 0..1000u32 {
            expected.extend_from_slice(&frame::text(format!("{n:04}").as_bytes()));
        }
        expected.extend_from_slice(&frame::text(b"done"));
        let mut received = vec![0u8; expected.len()];
        let read = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            peer.read_exact(&mut received),
        );
        read.await.expect("every frame arrives").unwrap();
        assert_eq!(received, expected);
    }
}
