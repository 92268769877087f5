//! The life of one chat client: connect and join, receive (and send, if it
//! is a sender) until the run stops; under jitter, be cut off, stay away,
//! come back and re-join, for as long as the run lasts.

use super::context::{ChatContext, ChatProto, ClientState, SessionEnd};
use super::{raw, rooms_chat, ws_chat};
use crate::run::Phase;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Runs one client to the end of the run and returns what it saw.
pub async fn run_client(index: u32, context: Arc<ChatContext>) -> ClientState {
    let settings = &context.settings;
    let mut state = ClientState::new(index, settings);
    let mut phase = context.phase.subscribe();
    loop {
        let target =
            settings.targets[(index as usize + state.sessions as usize) % settings.targets.len()];
        state.sessions += 1;
        let outcome = match settings.proto {
            ChatProto::WsChat => ws_chat::session(&mut state, &context, &mut phase, target).await,
            ChatProto::RoomsChat => {
                rooms_chat::session(&mut state, &context, &mut phase, target).await
            }
            ChatProto::Raw => raw::session(&mut state, &context, &mut phase, target).await,
        };
        let downtime = match outcome {
            Ok(SessionEnd::Stopped) => break,
            Ok(SessionEnd::Cut) => ClientState::downtime(settings),
            Err(error) => {
                state.errors += 1;
                context.note_error(&error);
                if !state.has_joined() {
                    context.failed.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                if settings.jitter.is_none() {
                    // In a steady run a lost connection stays lost: it shows as loss.
                    break;
                }
                Duration::from_secs(1)
            }
        };
        context.offline.fetch_add(1, Ordering::Relaxed);
        tokio::select! {
            _ = tokio::time::sleep(downtime) => {}
            _ = phase.wait_for(|phase| *phase == Phase::Stopped) => {}
        }
        context.offline.fetch_sub(1, Ordering::Relaxed);
        if *phase.borrow() == Phase::Stopped {
            break;
        }
    }
    state
}
