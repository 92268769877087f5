//! A client of the raw TCP reference server: `JOIN <room>\n`, then lines
//! `<room> <text>\n` both ways. No framing beyond newlines, no JSON: what
//! fan-out costs when nothing but bytes are moved.

use super::context::{ChatContext, ClientState, SessionEnd};
use crate::run::{Phase, sleep_until_some};
use anyhow::{Context, bail};
use bytes::{Buf, BytesMut};
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

pub async fn session(
    state: &mut ClientState,
    context: &ChatContext,
    phase: &mut watch::Receiver<Phase>,
    target: SocketAddr,
) -> anyhow::Result<SessionEnd> {
    let settings = &context.settings;
    let room = settings.room_name(state.room);
    let mut buffer = BytesMut::with_capacity(4096);
    let mut stream = {
        let _slot = context.connect_slots.acquire().await?;
        let mut stream = context.sources.connect(target).await?;
        stream
            .write_all(format!("JOIN {room}\n").as_bytes())
            .await?;
        loop {
            if stream.read_buf(&mut buffer).await? == 0 {
                bail!("raw server closed before JOINED");
            }
            if let Some(end) = memchr::memchr(b'\n', &buffer) {
                if &buffer[..end] != b"JOINED" {
                    bail!("unexpected answer to JOIN");
                }
                buffer.advance(end + 1);
                break;
            }
        }
        stream
    };
    state.joined(context);
    loop {
        let current = *phase.borrow_and_update();
        if current == Phase::Stopped {
            return Ok(SessionEnd::Stopped);
        }
        let send_at = state.next_send_at(settings, current);
        tokio::select! {
            read = stream.read_buf(&mut buffer) => {
                if read.context("reading from the raw server")? == 0 {
                    bail!("raw server closed the connection");
                }
                while let Some(end) = memchr::memchr(b'\n', &buffer) {
                    let line = buffer.split_to(end + 1);
                    let line = std::str::from_utf8(&line[..end]).unwrap_or("");
                    let text = line.split_once(' ').map_or("", |(_, text)| text);
                    state.deliver(context, text, None);
                }
            }
            _ = sleep_until_some(send_at) => {
                if let Some((seq, text)) = state.take_next_message(settings) {
                    stream.write_all(format!("{room} {text}\n").as_bytes()).await?;
                    if let Some(sender) = state.sender.as_mut() {
                        sender.log.accepted.insert(seq);
                    }
                }
            }
            changed = phase.changed() => if changed.is_err() {
                return Ok(SessionEnd::Stopped);
            },
        }
    }
}
