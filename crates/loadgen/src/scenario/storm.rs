//! The join storm (rooms-chat): every client joins one room at
//! once, as fast as `--connect-concurrency` handshakes in flight allow.
//!
//! Each member keeps the members its join ack listed and every
//! `user_joined` it hears. Afterwards each must have heard of every member
//! that is not in its ack exactly once (nothing missing, nothing twice), in
//! the order the member who heard the most heard them (the notices of one
//! room have one order), and no member that joined may have lost its
//! connection. Only the wire protocol is used, so any server of the
//! contract can be stormed.

use super::outcome::Outcome;
use crate::clients::{WebSocket, open_websocket};
use crate::gate::Gate;
use crate::net::SourceAddrs;
use anyhow::{Context, bail};
use futures::StreamExt;
use protocol::rooms::{JoinRequest, client_event, server_event};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::{Semaphore, watch};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use wire_clients::codec::socketio::{self, Inbound};
use wire_clients::socketio::{handshake, send};
use wire_clients::websocket::next_text;

/// Ack id of the join.
const JOIN_ACK: u64 = 0;

/// What the storm found, over every member that joined.
#[derive(Debug, Default, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct StormTally {
    /// From the first handshake to the last join ack.
    pub join_secs: f64,
    /// Members each member should know of: the others that joined.
    pub expected: u64,
    /// Of those, known from the ack or from a notice.
    pub received: u64,
    pub missing: u64,
    /// Notices heard more than once for the same name.
    pub duplicates: u64,
    /// Notices heard right after one that comes later in the reference
    /// member's order (descents: one misplaced notice counts once or twice).
    pub out_of_order: u64,
    /// Members whose connection ended after they joined, before the end.
    pub disconnected: u64,
}

pub struct StormSettings {
    pub target: SocketAddr,
    pub clients: u32,
    pub name_prefix: String,
    pub connect_concurrency: usize,
    pub join_timeout: Duration,
    pub connect_timeout: Duration,
    /// How long the notices must stay quiet before the storm is over.
    pub quiet: Duration,
}

/// What one member saw.
#[derive(Default)]
struct Member {
    name: String,
    joined: bool,
    disconnected: bool,
    error: Option<String>,
    in_ack: Vec<String>,
    notices: Vec<String>,
}

/// Counters every member task shares with the conductor.
#[derive(Default)]
struct Progress {
    joined: AtomicU64,
    failed: AtomicU64,
    notices: AtomicU64,
}

pub async fn run(
    settings: StormSettings,
    sources: SourceAddrs,
    gate: &mut Gate,
) -> anyhow::Result<Outcome> {
    let progress = Arc::new(Progress::default());
    let sources = Arc::new(sources);
    let slots = Arc::new(Semaphore::new(settings.connect_concurrency.max(1)));
    let (stop, stopped) = watch::channel(());
    let room = format!("{}storm", settings.name_prefix);
    gate.window_started()?;
    let start = Instant::now();
    let tasks: Vec<_> = (0..settings.clients)
        .map(|index| {
            let member = Member {
                name: format!("{}{index}", settings.name_prefix),
                ..Member::default()
            };
            tokio::spawn(run_member(
                member,
                room.clone(),
                settings.target,
                settings.join_timeout,
                sources.clone(),
                slots.clone(),
                progress.clone(),
                stopped.clone(),
            ))
        })
        .collect();
    let deadline = start + settings.connect_timeout;
    let mut join_secs = 0.0;
    while Instant::now() < deadline {
        let joined = progress.joined.load(Ordering::Relaxed);
        if joined + progress.failed.load(Ordering::Relaxed) >= settings.clients as u64 {
            join_secs = start.elapsed().as_secs_f64();
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    if join_secs == 0.0 {
        join_secs = start.elapsed().as_secs_f64();
        tracing::warn!("the storm's joins did not all end in time");
    }
    wait_until_quiet(&progress.notices, settings.quiet, deadline).await;
    let window_secs = start.elapsed().as_secs_f64();
    gate.window_ended()?;
    gate.step(
        progress.joined.load(Ordering::Relaxed),
        progress.failed.load(Ordering::Relaxed),
    )
    .await?;
    stop.send_replace(());
    let mut members = Vec::with_capacity(tasks.len());
    for task in tasks {
        if let Ok(Ok(member)) = tokio::time::timeout(Duration::from_secs(20), task).await {
            members.push(member);
        }
    }
    let mut tally = judge(&members);
    tally.join_secs = join_secs;
    Ok(Outcome {
        planned: settings.clients as u64,
        connected: members.iter().filter(|member| member.joined).count() as u64,
        failed: progress.failed.load(Ordering::Relaxed),
        unfinished: settings.clients as u64 - members.len() as u64,
        sessions: members.len() as u64,
        errors: members
            .iter()
            .filter(|member| member.error.is_some())
            .count() as u64,
        first_error: members.iter().find_map(|member| member.error.clone()),
        window_secs,
        deliveries: progress.notices.load(Ordering::Relaxed),
        storm: Some(tally),
        ..Outcome::default()
    })
}

async fn wait_until_quiet(notices: &AtomicU64, quiet: Duration, deadline: Instant) {
    let mut last = notices.load(Ordering::Relaxed);
    let mut last_change = Instant::now();
    while Instant::now() < deadline && last_change.elapsed() < quiet {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = notices.load(Ordering::Relaxed);
        if now != last {
            last = now;
            last_change = Instant::now();
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn run_member(
    mut member: Member,
    room: String,
    target: SocketAddr,
    join_timeout: Duration,
    sources: Arc<SourceAddrs>,
    slots: Arc<Semaphore>,
    progress: Arc<Progress>,
    mut stopped: watch::Receiver<()>,
) -> Member {
    let joined = {
        // A closed semaphore cannot happen: it lives as long as the storm.
        let _slot = slots.acquire().await;
        tokio::time::timeout(join_timeout, join(&mut member, &room, target, &sources)).await
    };
    let mut websocket = match joined {
        Ok(Ok(websocket)) => websocket,
        Ok(Err(error)) => return failed(member, &progress, format!("{error:#}")),
        Err(_) => return failed(member, &progress, "join timed out".to_owned()),
    };
    member.joined = true;
    progress.joined.fetch_add(1, Ordering::Relaxed);
    progress
        .notices
        .fetch_add(member.notices.len() as u64, Ordering::Relaxed);
    loop {
        tokio::select! {
            frame = websocket.next() => match frame {
                Some(Ok(Message::Text(text))) => {
                    if let Err(error) = on_frame(&mut member, &mut websocket, &text, &progress).await {
                        return cut(member, error);
                    }
                }
                Some(Ok(Message::Close(close))) => return cut(member, anyhow::anyhow!("closed: {close:?}")),
                Some(Ok(_)) => {}
                Some(Err(error)) => return cut(member, error.into()),
                None => return cut(member, anyhow::anyhow!("connection closed")),
            },
            // The one change is the stop; an error means the conductor is gone.
            _ = stopped.changed() => return member,
        }
    }
}

fn failed(mut member: Member, progress: &Progress, error: String) -> Member {
    progress.failed.fetch_add(1, Ordering::Relaxed);
    member.error = Some(error);
    member
}

fn cut(mut member: Member, error: anyhow::Error) -> Member {
    member.disconnected = true;
    member.error = Some(format!("{error:#}"));
    member
}

/// Engine.IO open, Socket.IO connect, `join`; notices that come before the
/// ack count too.
async fn join(
    member: &mut Member,
    room: &str,
    target: SocketAddr,
    sources: &SourceAddrs,
) -> anyhow::Result<WebSocket> {
    let mut websocket = open_websocket(sources, target, socketio::WEBSOCKET_PATH).await?;
    handshake(&mut websocket).await?;
    let request = JoinRequest {
        room: room.to_owned(),
        name: member.name.clone(),
        since: None,
        client_id: None,
    };
    let packet = socketio::encode_event(Some(JOIN_ACK), client_event::JOIN, &request);
    send(&mut websocket, packet).await?;
    loop {
        let text = next_text(&mut websocket)
            .await
            .context("reading during the join")?;
        match socketio::decode(&text) {
            Inbound::Ack {
                id: JOIN_ACK,
                payload,
            } => {
                let (ack,): (JoinAck,) =
                    serde_json::from_str(payload).context("unreadable join ack")?;
                if !ack.ok {
                    bail!("join refused: {:?}", ack.error);
                }
                member.in_ack = ack.members;
                return Ok(websocket);
            }
            Inbound::Ping => send(&mut websocket, socketio::PONG).await?,
            Inbound::Event { payload, .. } => {
                if let Some(name) = user_joined(payload) {
                    member.notices.push(name);
                }
            }
            _ => {}
        }
    }
}

async fn on_frame(
    member: &mut Member,
    websocket: &mut WebSocket,
    text: &str,
    progress: &Progress,
) -> anyhow::Result<()> {
    match socketio::decode(text) {
        Inbound::Ping => send(websocket, socketio::PONG).await?,
        Inbound::Event { payload, .. } => {
            if let Some(name) = user_joined(payload) {
                member.notices.push(name);
                progress.notices.fetch_add(1, Ordering::Relaxed);
            }
        }
        Inbound::Close | Inbound::Disconnect => bail!("server ended the Socket.IO session"),
        _ => {}
    }
    Ok(())
}

#[derive(Deserialize)]
struct JoinAck {
    ok: bool,
    #[serde(default)]
    members: Vec<String>,
    #[serde(default)]
    error: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct Named {
    name: String,
}

/// The name of a `["user_joined", {...}]` payload.
fn user_joined(payload: &str) -> Option<String> {
    if socketio::event_name(payload) != Some(server_event::USER_JOINED) {
        return None;
    }
    let notice: Named = socketio::first_argument(payload)?;
    Some(notice.name)
}

/// Checks every member's view against the others'.
fn judge(members: &[Member]) -> StormTally {
    let everyone: HashSet<&str> = members
        .iter()
        .filter(|member| member.joined)
        .map(|member| member.name.as_str())
        .collect();
    // The reference order: the notices of the (first) member who heard the
    // most, each name at its first place.
    let mut reference_member: Option<&Member> = None;
    for member in members {
        if reference_member.is_none_or(|best| member.notices.len() > best.notices.len()) {
            reference_member = Some(member);
        }
    }
    let mut reference: HashMap<&str, usize> = HashMap::new();
    for (position, name) in reference_member
        .map(|member| member.notices.as_slice())
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        reference.entry(name.as_str()).or_insert(position);
    }
    let mut tally = StormTally::default();
    for member in members.iter().filter(|member| member.joined) {
        if member.disconnected {
            tally.disconnected += 1;
        }
        let mut known: HashSet<&str> = member.in_ack.iter().map(String::as_str).collect();
        let mut heard = HashSet::new();
        let mut last_position = None;
        for name in &member.notices {
            if !heard.insert(name.as_str()) {
                tally.duplicates += 1;
            }
            known.insert(name.as_str());
            // Each notice heard before one it follows in the reference
            // counts once (a descent), so one early notice is one fault,
            // not one per notice after it.
            if let Some(&position) = reference.get(name.as_str()) {
                if last_position.is_some_and(|last| position < last) {
                    tally.out_of_order += 1;
                }
                last_position = Some(position);
            }
        }
        let others = everyone.len() as u64 - 1;
        let received = everyone
            .iter()
            .filter(|&&name| name != member.name && known.contains(name))
            .count() as u64;
        tally.expected += others;
        tally.received += received;
        tally.missing += others - received;
    }
    tally
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(name: &str, in_ack: &[&str], notices: &[&str]) -> Member {
        Member {
            name: name.into(),
            joined: true,
            in_ack: in_ack.iter().map(|&name| name.into()).collect(),
            notices: notices.iter().map(|&name| name.into()).collect(),
            ..Member::default()
        }
    }

    #[test]
    fn a_clean_storm_has_nothing_missing_or_out_of_order() {
        let members = [
            member("a", &["a"], &["b", "c"]),
            member("b", &["a", "b"], &["c"]),
            member("c", &["a", "b", "c"], &[]),
        ];
        let tally = judge(&members);
        assert_eq!(tally.expected, 6);
        assert_eq!(tally.received, 6);
        assert_eq!(
            (tally.missing, tally.duplicates, tally.out_of_order),
            (0, 0, 0)
        );
    }

    #[test]
    fn missing_repeated_and_reordered_notices_are_counted() {
        let mut cut = member("d", &["a", "b", "c", "d"], &[]);
        cut.disconnected = true;
        let members = [
            member("a", &["a"], &["b", "c", "d"]),
            member("b", &["a", "b"], &["d", "c", "d"]),
            member("c", &["a", "c"], &["d"]),
            cut,
        ];
        let tally = judge(&members);
        assert_eq!(tally.missing, 1, "c never heard of b");
        assert_eq!(tally.duplicates, 1);
        assert_eq!(tally.out_of_order, 1, "b heard d before c");
        assert_eq!(tally.disconnected, 1);
    }

    #[test]
    fn user_joined_payloads_give_the_name() {
        let payload = r#"["user_joined",{"room":"r","name":"ann","ts":1}]"#;
        assert_eq!(user_joined(payload).as_deref(), Some("ann"));
        assert_eq!(
            user_joined(r#"["message",{"room":"r","name":"ann"}]"#),
            None
        );
    }
}
