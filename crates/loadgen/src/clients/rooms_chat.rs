//! A rooms-chat client session over Socket.IO: Engine.IO open, Socket.IO
//! connect, `join` with an ack (re-joins carry `since` and `clientId`), then
//! `message` events in and out, answering Engine.IO pings.

use super::context::{ChatContext, ClientState, SessionEnd};
use super::{WebSocket, open_websocket};
use crate::codec::probe;
use crate::net;
use crate::run::{Phase, sleep_until_some};
use anyhow::{Context, bail};
use protocol::rooms::{JoinRequest, MessageRequest, client_event, server_event};
use std::net::SocketAddr;
use tokio::sync::watch;
use wire_clients::codec::socketio::{self, Inbound};
use wire_clients::socketio::{await_open, connect, send};
use wire_clients::websocket::next_text;

/// Ack id of the join; message `seq` uses ack id `seq + 1`.
const JOIN_ACK: u64 = 0;

pub async fn session(
    state: &mut ClientState,
    context: &ChatContext,
    phase: &mut watch::Receiver<Phase>,
    target: SocketAddr,
) -> anyhow::Result<SessionEnd> {
    let settings = &context.settings;
    let room = settings.room_name(state.room);
    let mut websocket = {
        let _slot = context.connect_slots.acquire().await?;
        let mut stage = Stage::Connecting;
        let joined = tokio::time::timeout(settings.join_timeout, async {
            let mut websocket =
                open_websocket(&context.sources, target, socketio::WEBSOCKET_PATH).await?;
            handshake_and_join(state, context, &mut websocket, &room, &mut stage).await?;
            anyhow::Ok(websocket)
        })
        .await;
        match joined {
            Ok(websocket) => websocket?,
            Err(_) => bail!("join timed out while {stage:?}"),
        }
    };
    state.joined(context);
    loop {
        let current = *phase.borrow_and_update();
        if current == Phase::Stopped {
            return Ok(SessionEnd::Stopped);
        }
        let send_at = state.next_send_at(settings, current);
        let cut_at = state.jitter_at(settings, current);
        tokio::select! {
            frame = next_text(&mut websocket) => {
                let text = frame.context("reading from rooms-chat")?;
                on_frame(state, context, &mut websocket, &text).await?;
            }
            _ = sleep_until_some(send_at) => {
                if let Some((seq, text)) = state.take_next_message(settings) {
                    let request = MessageRequest { room: room.clone(), text };
                    let packet = socketio::encode_event(Some(seq as u64 + 1), client_event::MESSAGE, &request);
                    send(&mut websocket, packet).await.context("sending a message")?;
                }
            }
            _ = sleep_until_some(cut_at) => {
                net::reset(websocket.get_ref());
                return Ok(SessionEnd::Cut);
            }
            changed = phase.changed() => if changed.is_err() {
                return Ok(SessionEnd::Stopped);
            },
        }
    }
}

/// How far a join got, for the error when it takes too long.
#[derive(Debug, Clone, Copy)]
enum Stage {
    Connecting,
    AwaitingOpen,
    AwaitingConnect,
    AwaitingJoinAck,
}

async fn handshake_and_join(
    state: &mut ClientState,
    context: &ChatContext,
    websocket: &mut WebSocket,
    room: &str,
    stage: &mut Stage,
) -> anyhow::Result<()> {
    let settings = &context.settings;
    *stage = Stage::AwaitingOpen;
    await_open(websocket).await?;
    *stage = Stage::AwaitingConnect;
    if let Err(refusal) = connect(websocket, None).await? {
        bail!("Socket.IO connect refused: {refusal}");
    }
    // A re-join asks for what it missed; a first join ignores old history.
    let rejoining = state.has_joined();
    let join = JoinRequest {
        room: room.to_owned(),
        name: state.name(settings),
        since: if rejoining {
            state.log.highest_id().or(Some(0))
        } else {
            None
        },
        client_id: Some(state.client_id(settings)),
    };
    let packet = socketio::encode_event(Some(JOIN_ACK), client_event::JOIN, &join);
    send(websocket, packet).await?;
    *stage = Stage::AwaitingJoinAck;
    loop {
        let text = next_text(websocket).await?;
        if let Inbound::Ack {
            id: JOIN_ACK,
            payload,
        } = socketio::decode(&text)
        {
            let ack = probe::ack(payload).context("unreadable join ack")?;
            if !ack.ok {
                bail!("join refused: {:?}", ack.error);
            }
            if rejoining {
                for message in &ack.history {
                    state.deliver(context, &message.text, Some(message.id));
                }
            }
            return Ok(());
        }
        on_frame(state, context, websocket, &text).await?;
    }
}

async fn on_frame(
    state: &mut ClientState,
    context: &ChatContext,
    websocket: &mut WebSocket,
    text: &str,
) -> anyhow::Result<()> {
    match socketio::decode(text) {
        Inbound::Ping => send(websocket, socketio::PONG).await?,
        Inbound::Event { payload, .. }
            if socketio::event_name(payload) == Some(server_event::MESSAGE) =>
        {
            match probe::room_message(payload) {
                Some(message) => state.deliver(context, &message.text, Some(message.id)),
                None => state.errors += 1,
            }
        }
        Inbound::Ack { id, payload } if id > JOIN_ACK => {
            let seq = (id - 1) as u32;
            if let Some(sender) = state.sender.as_mut() {
                match probe::ack(payload) {
                    Some(ack) if ack.ok => {
                        sender.log.accepted.insert(seq);
                    }
                    _ => sender.log.rejected += 1,
                }
            }
        }
        Inbound::Close | Inbound::Disconnect => bail!("server ended the Socket.IO session"),
        _ => {}
    }
    Ok(())
}
