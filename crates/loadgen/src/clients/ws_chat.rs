//! A ws-chat client session: `hello`, wait for `welcome`, then read
//! `message` frames and send `message` frames on schedule.

use super::context::{ChatContext, ClientState, SessionEnd};
use super::open_websocket;
use crate::codec::probe::{WsChatFrame, is_ws_presence_notice};
use crate::run::{Phase, sleep_until_some};
use anyhow::Context;
use protocol::ws::ClientFrame;
use std::net::SocketAddr;
use tokio::sync::watch;
use wire_clients::websocket::next_text;
use wire_clients::ws_chat;

pub async fn session(
    state: &mut ClientState,
    context: &ChatContext,
    phase: &mut watch::Receiver<Phase>,
    target: SocketAddr,
) -> anyhow::Result<SessionEnd> {
    let settings = &context.settings;
    let mut websocket = {
        let _slot = context.connect_slots.acquire().await?;
        let mut websocket = open_websocket(&context.sources, target, ws_chat::PATH).await?;
        let hello = ClientFrame::Hello {
            name: state.name(settings),
            client_id: Some(state.client_id(settings)),
        };
        tokio::time::timeout(
            settings.join_timeout,
            ws_chat::hello(&mut websocket, hello.to_json()),
        )
        .await
        .context("no welcome in time")??;
        websocket
    };
    state.joined(context);
    loop {
        let current = *phase.borrow_and_update();
        if current == Phase::Stopped {
            return Ok(SessionEnd::Stopped);
        }
        let send_at = state.next_send_at(settings, current);
        tokio::select! {
            frame = next_text(&mut websocket) => {
                on_frame(state, context, &frame.context("reading from ws-chat")?);
            }
            _ = sleep_until_some(send_at) => {
                if let Some((seq, text)) = state.take_next_message(settings) {
                    let frame = ClientFrame::Message { text }.to_json();
                    ws_chat::send(&mut websocket, frame).await.context("sending a message")?;
                    // ws-chat has no acks: a message written is a message accepted,
                    // unless an error frame comes back (counted as rejected).
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

fn on_frame(state: &mut ClientState, context: &ChatContext, text: &str) {
    if is_ws_presence_notice(text) {
        return;
    }
    let Ok(frame) = serde_json::from_str::<WsChatFrame>(text) else {
        state.errors += 1;
        return;
    };
    match frame.kind.as_ref() {
        "message" => state.deliver(context, frame.text.as_deref().unwrap_or(""), frame.id),
        "error" => {
            state.errors += 1;
            if let Some(sender) = state.sender.as_mut() {
                sender.log.rejected += 1;
            }
        }
        _ => {}
    }
}
