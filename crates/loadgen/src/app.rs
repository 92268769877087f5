//! From parsed arguments to a report: pick the scenario's settings, run it
//! here, in worker processes, or as a worker, and write the results; or
//! render BENCHMARKS.md from the results of many runs.

use crate::cli::{Args, Proto, Scenario};
use crate::clients::context::{ChatProto, ChatSettings};
use crate::clients::sse::{StreamSettings, fetch_symbols};
use crate::gate::{Gate, ServerMeter};
use crate::net::SourceAddrs;
use crate::report::Report;
use crate::run::Jitter;
use crate::scenario::outcome::Outcome;
use crate::scenario::storm::{self, StormSettings};
use crate::scenario::{Drain, Plan, chat, streams, workers};
use anyhow::{Context, bail};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

/// Sockets one process may hold, under the 20,000 open-files limit.
const SOCKETS_PER_PROCESS: u32 = 9_500;

/// Runs what `args` ask for: a scenario (here or over worker processes,
/// then its report), or the raw TCP reference server.
pub async fn run(mut args: Args) -> anyhow::Result<()> {
    if args.scenario == Scenario::Report {
        return crate::benchmarks::report(&args);
    }
    if args.scenario == Scenario::MedianRound {
        return crate::benchmarks::median_round(&args);
    }
    if args.scenario == Scenario::IsClean {
        return crate::benchmarks::is_clean(&args);
    }
    if args.scenario == Scenario::FramesPerWrite {
        return crate::benchmarks::frames_per_write(&args);
    }
    if args.scenario == Scenario::RawServer {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port)).await?;
        println!("LISTENING {}", listener.local_addr()?.port());
        return crate::raw_server::serve(listener, args.frames_per_write).await;
    }
    if args.scenario == Scenario::Streams {
        args.proto = Proto::Sse;
    }
    if args.scenario == Scenario::Churn {
        if args.targets.is_empty() {
            args.targets = vec![SocketAddr::from((
                [127, 0, 0, 1],
                args.proto.default_port(),
            ))];
        }
        return crate::scenario::churn::run(&args).await;
    }
    if args.scenario == Scenario::Idle {
        args.senders = 0;
    }
    let mut raw_server = None;
    if args.scenario == Scenario::Rawtcp {
        args.proto = Proto::Raw;
        let (child, address) = start_raw_server(args.frames_per_write).await?;
        args.targets = vec![address];
        args.server_pids = child.id().into_iter().collect();
        raw_server = Some(child);
    }
    if args.targets.is_empty() {
        args.targets = vec![SocketAddr::from((
            [127, 0, 0, 1],
            args.proto.default_port(),
        ))];
    }
    if let Some((index, count)) = args.worker_slot()? {
        let outcome = run_here(&args, index, count, &mut Gate::worker()).await?;
        println!("RESULT {}", serde_json::to_string(&outcome)?);
        return Ok(());
    }
    let processes = match args.processes {
        0 => args.clients.div_ceil(SOCKETS_PER_PROCESS).max(1) as usize,
        chosen => chosen,
    };
    // Names and rooms carry a tag of this run, so runs never meet.
    let run_tag = args
        .run_tag
        .get_or_insert_with(|| format!("r{}", crate::codec::stamp::unix_micros() % 1_000_000))
        .clone();
    let ports = args.targets.iter().map(SocketAddr::port).collect();
    let mut meter = ServerMeter::new(
        args.server_pids.clone(),
        ports,
        Duration::from_secs_f64(args.settle),
    )?;
    let outcome = if processes > 1 {
        if args.senders > 0 {
            bail!("sending scenarios run in one process (up to {SOCKETS_PER_PROCESS} clients)");
        }
        workers::run_parent(processes, args.steps, &run_tag, &mut meter).await?
    } else {
        let mut gate = Gate::Local(meter);
        let outcome = run_here(&args, 0, 1, &mut gate).await?;
        let Gate::Local(local) = gate else {
            unreachable!("a local gate stays local")
        };
        meter = local;
        outcome
    };
    let figures = meter.figures(outcome.deliveries);
    let report = Report::new(&args, processes, outcome, figures);
    eprintln!("{}", report.table());
    let json = serde_json::to_string_pretty(&report)?;
    match &args.json {
        Some(path) => std::fs::write(path, json + "\n")
            .with_context(|| format!("writing {}", path.display()))?,
        None => println!("{json}"),
    }
    if let Some(mut child) = raw_server {
        child.kill().await?;
    }
    Ok(())
}

/// Runs this process's share (`index` of `count`) of the clients.
async fn run_here(
    args: &Args,
    index: usize,
    count: usize,
    gate: &mut Gate,
) -> anyhow::Result<Outcome> {
    let first = (args.clients as u64 * index as u64 / count as u64) as u32;
    let end = (args.clients as u64 * (index as u64 + 1) / count as u64) as u32;
    let sources = SourceAddrs::new(index as u8 + if count > 1 { 1 } else { 0 }, args.source_ips);
    let jitter = (args.scenario == Scenario::Jitter).then(|| Jitter {
        every: Duration::from_secs_f64(args.jitter_every),
        down: Duration::from_secs_f64(args.jitter_down),
    });
    let join_timeout = Duration::from_secs_f64(args.join_timeout);
    let mut plan = Plan {
        first,
        count: end - first,
        steps: args.steps,
        window: Duration::from_secs_f64(args.duration),
        drain: Drain::UntilQuiet {
            // Long enough that a stall of the server (or of a busy shared
            // machine) is not taken for the end of the deliveries.
            quiet: Duration::from_secs(if jitter.is_some() { 5 } else { 3 }),
            max: Duration::from_secs_f64(args.drain_max),
        },
        connect_timeout: Duration::from_secs_f64(args.connect_timeout),
    };
    let run_tag = args.run_tag.as_deref().unwrap_or("r");
    if args.scenario == Scenario::Storm {
        let settings = StormSettings {
            target: args.targets[0],
            clients: plan.count,
            name_prefix: format!("{run_tag}s{index}-"),
            connect_concurrency: args.connect_concurrency,
            join_timeout,
            connect_timeout: plan.connect_timeout,
            quiet: Duration::from_secs_f64(args.duration),
        };
        return storm::run(settings, sources, gate).await;
    }
    match args.proto.chat() {
        Some(proto) => {
            let senders = args.senders.min(args.clients as usize);
            let settings = ChatSettings {
                proto,
                targets: args.targets.clone(),
                rooms: if proto == ChatProto::WsChat {
                    1
                } else {
                    args.rooms.max(1)
                },
                senders,
                send_period: Duration::from_secs_f64(senders.max(1) as f64 / args.rate.max(0.001)),
                text_bytes: args.text_bytes,
                jitter,
                name_prefix: format!("{run_tag}w{index}-"),
                join_timeout,
            };
            chat::run(settings, sources, args.connect_concurrency, &plan, gate).await
        }
        None => {
            let symbols = fetch_symbols(args.targets[0]).await?;
            if jitter.is_some() {
                plan.drain = Drain::Grace(Duration::from_secs_f64(args.jitter_down * 2.0 + 2.0));
            } else {
                plan.drain = Drain::Grace(Duration::from_secs_f64(args.stream_grace));
            }
            let settings = StreamSettings {
                targets: args.targets.clone(),
                symbols,
                symbols_per_stream: args.symbols_per_stream,
                jitter,
                join_timeout,
            };
            streams::run(settings, sources, args.connect_concurrency, &plan, gate).await
        }
    }
}

/// Starts `loadgen raw-server` as a separate process, so that its CPU and
/// memory are measured apart from the clients'.
async fn start_raw_server(
    frames_per_write: usize,
) -> anyhow::Result<(tokio::process::Child, SocketAddr)> {
    let mut child = Command::new(std::env::current_exe()?)
        .args(["raw-server", "--port", "0", "--frames-per-write"])
        .arg(frames_per_write.to_string())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("starting the raw server")?;
    let stdout = child.stdout.take().context("raw server stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    while let Some(line) = lines.next_line().await? {
        if let Some(port) = line.strip_prefix("LISTENING ") {
            let port: u16 = port.trim().parse()?;
            return Ok((child, SocketAddr::from(([127, 0, 0, 1], port))));
        }
    }
    bail!("the raw server did not start")
}
