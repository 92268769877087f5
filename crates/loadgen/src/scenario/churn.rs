//! `churn`: clients come and go, and the server must give back what they
//! took. Each round, `--clients` clients connect, join, talk, leave and
//! disconnect at once; a third of them vanish with a TCP reset instead of a
//! goodbye, and on rooms-chat every other one uses HTTP long-polling
//! instead of the WebSocket. After each round the server's open descriptors
//! (`/proc/PID/fd`), live tokio tasks (`tokio_alive_tasks` in `/metrics`)
//! and RSS are read once they settle; a round passes when they are back
//! within the bound of the baseline, read before the first client:
//!
//! - descriptors and tasks: at most [`COUNT_SLACK`] above the baseline;
//! - RSS: at most a tenth or [`RSS_SLACK_KIB`] above the RSS after the
//!   first round, whichever is more. The first round grows the heap once
//!   (allocator arenas, buffers, room history) and that memory is kept for
//!   reuse; a leak shows as growth from one round to the next.
//!
//! A reset client's session lives until the server's ping timeout, so the
//! servers should run with short pings (`scripts/churn.sh` sets them).

use crate::cli::{Args, Proto};
use crate::clients::{self, http};
use crate::codec::socketio::{self, Inbound};
use crate::net::{self, SourceAddrs};
use anyhow::{Context, bail};
use futures::{SinkExt, StreamExt};
use serde::Serialize;
use serde_json::json;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

/// Descriptors or tasks a settled server may hold above its baseline (a
/// scrape in flight, a timer between two runs).
pub const COUNT_SLACK: u64 = 3;
/// RSS a settled server may hold above its baseline, at least.
pub const RSS_SLACK_KIB: u64 = 8 * 1024;
/// A run fails when more than one client in this many failed.
const MAX_FAILED_PER_CLIENTS: u64 = 100;
/// Longest wait for the figures to settle after a round.
const SETTLE_MAX: Duration = Duration::from_secs(20);
/// Longest one client may take for its whole life.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);

/// The server's figures at one moment.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Figures {
    pub fds: u64,
    pub tasks: u64,
    pub rss_kib: u64,
}

/// One round's outcome.
#[derive(Debug, Serialize)]
pub struct Round {
    pub round: usize,
    pub clients: u32,
    pub failed: u32,
    pub resets: u32,
    pub polling: u32,
    pub settle_secs: f64,
    pub figures: Figures,
    pub within_bound: bool,
}

/// Runs the rounds against `--target` (one), measuring `--server-pid` (one).
pub async fn run(args: &Args) -> anyhow::Result<()> {
    let target = *args.targets.first().context("churn wants one --target")?;
    let pid = *args
        .server_pids
        .first()
        .context("churn wants the server's --server-pid")?;
    let sources = SourceAddrs::new(0, args.source_ips);
    let rounds = args.steps.max(1);

    // The baseline is the server before any client: whatever a round
    // leaves behind counts against it (RSS has its slack for what the
    // allocator keeps and for room history).
    let baseline = read_figures(target, pid).await?;
    eprintln!(
        "churn {:?}: {} clients a round; baseline before any client: {} fds, {} tasks, {} KiB RSS",
        args.proto, args.clients, baseline.fds, baseline.tasks, baseline.rss_kib
    );
    eprintln!("round  clients  failed  resets  polling  settle_s   fds  tasks  rss_kib  ok");
    let mut report = Vec::new();
    let mut baseline = baseline;
    for round in 1..=rounds {
        let outcome = run_round(args.proto, target, &sources, args.clients, round).await;
        let started = Instant::now();
        let reference = if round == 1 {
            // The RSS reference is what the first round leaves.
            Figures {
                rss_kib: u64::MAX / 2,
                ..baseline
            }
        } else {
            baseline
        };
        let (figures, within_bound) = settle(target, pid, reference).await?;
        if round == 1 {
            baseline.rss_kib = figures.rss_kib;
        }
        let round = Round {
            round,
            clients: args.clients,
            failed: outcome.failed,
            resets: outcome.resets,
            polling: outcome.polling,
            settle_secs: started.elapsed().as_secs_f64(),
            figures,
            within_bound,
        };
        eprintln!(
            "{:>5}  {:>7}  {:>6}  {:>6}  {:>7}  {:>8.1}  {:>4}  {:>5}  {:>7}  {}",
            round.round,
            round.clients,
            round.failed,
            round.resets,
            round.polling,
            round.settle_secs,
            figures.fds,
            figures.tasks,
            figures.rss_kib,
            if within_bound { "yes" } else { "NO" }
        );
        report.push(round);
    }
    let json = serde_json::to_string_pretty(&json!({
        "scenario": "churn",
        "proto": args.proto,
        "label": args.label,
        "baseline": baseline,
        "bound": {"count_slack": COUNT_SLACK, "rss_slack_kib": RSS_SLACK_KIB, "rss_slack_fraction": 0.1},
        "rounds": report,
    }))?;
    match &args.json {
        Some(path) => std::fs::write(path, json).with_context(|| format!("writing {path:?}"))?,
        None => println!("{json}"),
    }
    let failed_rounds = report.iter().filter(|round| !round.within_bound).count();
    let failed_clients: u32 = report.iter().map(|round| round.failed).sum();
    if failed_rounds > 0 {
        bail!("{failed_rounds} of {rounds} rounds did not return to the baseline");
    }
    // A client may fail on a machine busy with other work (a ping missed,
    // a timeout): counted and shown, and a run fails when more than one in
    // a hundred did, which is a server that stopped serving.
    let clients = u64::from(args.clients) * rounds as u64;
    if u64::from(failed_clients) * MAX_FAILED_PER_CLIENTS > clients {
        bail!("{failed_clients} of {clients} clients failed their round");
    }
    Ok(())
}

/// Whether `now` is within the bound of `baseline`.
pub fn within_bound(baseline: Figures, now: Figures) -> bool {
    let rss_slack = (baseline.rss_kib / 10).max(RSS_SLACK_KIB);
    now.fds <= baseline.fds + COUNT_SLACK
        && now.tasks <= baseline.tasks + COUNT_SLACK
        && now.rss_kib <= baseline.rss_kib + rss_slack
}

/// Reads the figures until they are within the bound of `baseline`, at
/// most [`SETTLE_MAX`]; the last reading, and whether it was within.
async fn settle(
    target: SocketAddr,
    pid: u32,
    baseline: Figures,
) -> anyhow::Result<(Figures, bool)> {
    let deadline = Instant::now() + SETTLE_MAX;
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let figures = read_figures(target, pid).await?;
        let settled = within_bound(baseline, figures);
        if settled || Instant::now() >= deadline {
            return Ok((figures, settled));
        }
    }
}

async fn read_figures(target: SocketAddr, pid: u32) -> anyhow::Result<Figures> {
    let tasks = scrape_alive_tasks(target).await?;
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .with_context(|| format!("reading /proc/{pid}/fd"))?
        .count() as u64;
    Ok(Figures {
        fds,
        tasks,
        rss_kib: crate::procfs::rss_kib(pid)?,
    })
}

async fn scrape_alive_tasks(target: SocketAddr) -> anyhow::Result<u64> {
    let mut stream = TcpStream::connect(target).await?;
    let (status, body) = http::get_body(&mut stream, &target.to_string(), "/metrics").await?;
    if status != 200 {
        bail!("/metrics answered {status}");
    }
    String::from_utf8_lossy(&body)
        .lines()
        .find_map(|line| line.strip_prefix("tokio_alive_tasks "))
        .and_then(|value| value.trim().parse().ok())
        .context("no tokio_alive_tasks in /metrics")
}

#[derive(Debug, Default)]
struct RoundOutcome {
    failed: u32,
    resets: u32,
    polling: u32,
}

/// How one client of a round behaves.
#[derive(Debug, Clone, Copy)]
struct Lifecycle {
    /// Vanish with a TCP reset instead of saying goodbye.
    reset: bool,
    /// rooms-chat over HTTP long-polling instead of the WebSocket.
    polling: bool,
}

async fn run_round(
    proto: Proto,
    target: SocketAddr,
    sources: &SourceAddrs,
    clients: u32,
    round: usize,
) -> RoundOutcome {
    let mut tasks = Vec::new();
    let mut outcome = RoundOutcome::default();
    for index in 0..clients {
        let lifecycle = Lifecycle {
            reset: index % 3 == 0,
            polling: proto == Proto::RoomsChat && index % 2 == 1,
        };
        outcome.resets += u32::from(lifecycle.reset);
        outcome.polling += u32::from(lifecycle.polling);
        let name = format!("churn{round}x{index}");
        let tcp = sources.connect(target).await;
        tasks.push(tokio::spawn(async move {
            let client = async {
                let tcp = tcp?;
                match proto {
                    Proto::WsChat => ws_chat(tcp, target, &name, lifecycle).await,
                    Proto::RoomsChat if lifecycle.polling => {
                        rooms_chat_polling(tcp, target, &name, lifecycle).await
                    }
                    Proto::RoomsChat => rooms_chat_websocket(tcp, target, &name, lifecycle).await,
                    Proto::Sse => sse_stream(tcp, target, lifecycle).await,
                    Proto::Raw => bail!("churn runs against ws-chat, rooms-chat or sse"),
                }
            };
            match tokio::time::timeout(CLIENT_TIMEOUT, client).await {
                Ok(Ok(())) => true,
                Ok(Err(error)) => {
                    tracing::warn!(%error, "churn client failed");
                    false
                }
                Err(_) => {
                    tracing::warn!("churn client timed out");
                    false
                }
            }
        }));
    }
    for task in tasks {
        if !matches!(task.await, Ok(true)) {
            outcome.failed += 1;
        }
    }
    outcome
}

/// A WebSocket over an already connected socket.
async fn websocket(
    tcp: TcpStream,
    target: SocketAddr,
    path: &str,
) -> anyhow::Result<clients::WebSocket> {
    let url = format!("ws://{target}{path}");
    let (websocket, _) = tokio_tungstenite::client_async(url.as_str(), tcp)
        .await
        .with_context(|| format!("WebSocket handshake with {url}"))?;
    Ok(websocket)
}

/// Ends a WebSocket client: a reset, or a close handshake.
async fn goodbye(mut websocket: clients::WebSocket, lifecycle: Lifecycle) -> anyhow::Result<()> {
    if lifecycle.reset {
        net::reset(websocket.get_ref());
        return Ok(());
    }
    websocket.close(None).await.context("closing")?;
    // Read on until the server's close arrives and the socket ends.
    while let Some(message) = websocket.next().await {
        if message.is_err() {
            break;
        }
    }
    Ok(())
}

/// Reads text frames until `done` says so; answers Engine.IO pings.
async fn read_until(
    websocket: &mut clients::WebSocket,
    mut done: impl FnMut(&str) -> bool,
) -> anyhow::Result<()> {
    loop {
        let message = websocket
            .next()
            .await
            .context("the server closed the socket")??;
        if let Message::Text(text) = message {
            if text.as_str() == "2" {
                websocket.send(Message::text(socketio::PONG)).await?;
            } else if done(text.as_str()) {
                return Ok(());
            }
        }
    }
}

async fn ws_chat(
    tcp: TcpStream,
    target: SocketAddr,
    name: &str,
    lifecycle: Lifecycle,
) -> anyhow::Result<()> {
    let mut websocket = websocket(tcp, target, "/ws").await?;
    let hello = json!({"type": "hello", "name": name}).to_string();
    websocket.send(Message::text(hello)).await?;
    read_until(&mut websocket, |frame| {
        frame.contains("\"type\":\"welcome\"")
    })
    .await?;
    let text = format!("bye from {name}");
    let message = json!({"type": "message", "text": text}).to_string();
    websocket.send(Message::text(message)).await?;
    read_until(&mut websocket, |frame| {
        frame.contains("\"type\":\"message\"") && frame.contains(&text)
    })
    .await?;
    goodbye(websocket, lifecycle).await
}

/// The rooms the churn clients use: few, so history stays bounded.
fn room_of(name: &str) -> String {
    format!("churn-{}", name.len() % 4)
}

async fn rooms_chat_websocket(
    tcp: TcpStream,
    target: SocketAddr,
    name: &str,
    lifecycle: Lifecycle,
) -> anyhow::Result<()> {
    let mut websocket = websocket(tcp, target, socketio::WEBSOCKET_PATH).await?;
    read_until(&mut websocket, |frame| {
        matches!(socketio::decode(frame), Inbound::Open(_))
    })
    .await?;
    websocket.send(Message::text(socketio::CONNECT)).await?;
    read_until(&mut websocket, |frame| {
        matches!(socketio::decode(frame), Inbound::Connected(_))
    })
    .await?;
    let room = room_of(name);
    let requests = [
        ("join", json!({"room": room, "name": name})),
        (
            "message",
            json!({"room": room, "text": format!("bye from {name}")}),
        ),
        ("leave", json!({"room": room})),
    ];
    for (id, (event, data)) in (1u64..).zip(requests) {
        websocket
            .send(Message::text(socketio::encode_event(
                Some(id),
                event,
                &data,
            )))
            .await?;
        let mut answer = String::new();
        read_until(&mut websocket, |frame| match socketio::decode(frame) {
            Inbound::Ack { id: acked, payload } if acked == id => {
                answer = payload.to_owned();
                true
            }
            _ => false,
        })
        .await?;
        if !answer.contains("\"ok\":true") {
            bail!("{event} was refused: {answer}");
        }
    }
    goodbye(websocket, lifecycle).await
}

/// One long-polling request on a connection of its own; the response body.
async fn polling_request(
    tcp: Option<TcpStream>,
    target: SocketAddr,
    query: &str,
    post: Option<&str>,
    reset: bool,
) -> anyhow::Result<String> {
    let mut stream = match tcp {
        Some(stream) => stream,
        None => TcpStream::connect(target).await?,
    };
    let path = format!("/socket.io/?EIO=4&transport=polling{query}");
    let request = match post {
        None => format!("GET {path} HTTP/1.1\r\nHost: {target}\r\nConnection: close\r\n\r\n"),
        Some(body) => format!(
            "POST {path} HTTP/1.1\r\nHost: {target}\r\nConnection: close\r\ncontent-type: text/plain;charset=UTF-8\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        ),
    };
    stream.write_all(request.as_bytes()).await?;
    if reset {
        // Gone while the request waits: the server must notice on its own.
        net::reset(&stream);
        return Ok(String::new());
    }
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await?;
    let response = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = response
        .split_once("\r\n\r\n")
        .context("no response head")?;
    if !head.starts_with("HTTP/1.1 200") {
        bail!("polling answered {head}");
    }
    Ok(body.to_owned())
}

async fn rooms_chat_polling(
    tcp: TcpStream,
    target: SocketAddr,
    name: &str,
    lifecycle: Lifecycle,
) -> anyhow::Result<()> {
    let open = polling_request(Some(tcp), target, "", None, false).await?;
    let sid = open
        .split("\"sid\":\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .context("no sid in the open packet")?
        .to_owned();
    let query = format!("&sid={sid}");
    polling_request(None, target, &query, Some(socketio::CONNECT), false).await?;
    let mut received = polling_request(None, target, &query, None, false).await?;
    let room = room_of(name);
    let requests = [
        ("join", json!({"room": room, "name": name})),
        (
            "message",
            json!({"room": room, "text": format!("bye from {name}")}),
        ),
        ("leave", json!({"room": room})),
    ];
    for (id, (event, data)) in (1u64..).zip(requests) {
        let packet = socketio::encode_event(Some(id), event, &data);
        polling_request(None, target, &query, Some(&packet), false).await?;
        // Packets of one response are separated by the record separator.
        let acked = |body: &str| {
            body.split('\u{1e}')
                .any(|packet| matches!(socketio::decode(packet), Inbound::Ack { id: acked, .. } if acked == id))
        };
        while !acked(&received) {
            received = polling_request(None, target, &query, None, false).await?;
            if received.split('\u{1e}').any(|packet| packet == "2") {
                polling_request(None, target, &query, Some(socketio::PONG), false).await?;
            }
        }
    }
    if lifecycle.reset {
        polling_request(None, target, &query, None, true).await?;
    } else {
        // Engine.IO close.
        polling_request(None, target, &query, Some("1"), false).await?;
    }
    Ok(())
}

async fn sse_stream(
    mut tcp: TcpStream,
    target: SocketAddr,
    lifecycle: Lifecycle,
) -> anyhow::Result<()> {
    http::write_get(&mut tcp, &target.to_string(), "/events?symbols=AAPL", &[]).await?;
    let head = http::read_head(&mut tcp).await?;
    if head.status != 200 {
        bail!("/events answered {}", head.status);
    }
    // Wait for the snapshot, then go.
    let mut seen = head.body_start.to_vec();
    while !seen.windows(8).any(|window| window == b"snapshot") {
        let mut buffer = [0u8; 2048];
        let read = tcp.read(&mut buffer).await?;
        if read == 0 {
            bail!("the stream ended before its snapshot");
        }
        seen.extend_from_slice(&buffer[..read]);
    }
    if lifecycle.reset {
        net::reset(&tcp);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bound_allows_slack_and_no_more() {
        let baseline = Figures {
            fds: 20,
            tasks: 10,
            rss_kib: 100_000,
        };
        assert!(within_bound(baseline, baseline));
        assert!(within_bound(
            baseline,
            Figures {
                fds: 23,
                tasks: 13,
                rss_kib: 110_000
            }
        ));
        assert!(!within_bound(
            baseline,
            Figures {
                fds: 24,
                ..baseline
            }
        ));
        assert!(!within_bound(
            baseline,
            Figures {
                tasks: 14,
                ..baseline
            }
        ));
        assert!(!within_bound(
            baseline,
            Figures {
                rss_kib: 110_001,
                ..baseline
            }
        ));
    }
}
