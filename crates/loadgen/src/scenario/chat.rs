//! Chat scenarios (`fanout`, `idle`, `jitter` on rooms-chat, `rawtcp`):
//! clients join, senders send stamped messages, every receiver is checked
//! against every sender of its room.

use super::outcome::Outcome;
use super::{Plan, drive};
use crate::clients::chat::run_client;
use crate::clients::context::{ChatContext, ChatSettings};
use crate::deliveries::tally;
use crate::gate::Gate;
use crate::net::SourceAddrs;
use std::sync::Arc;
use std::sync::atomic::Ordering;

pub async fn run(
    settings: ChatSettings,
    sources: SourceAddrs,
    connect_concurrency: usize,
    plan: &Plan,
    gate: &mut Gate,
) -> anyhow::Result<Outcome> {
    let context = Arc::new(ChatContext::new(settings, sources, connect_concurrency));
    let driven = drive(&context, plan, gate, |index| {
        run_client(index, context.clone())
    })
    .await?;
    let clients = &driven.clients;
    let receivers: Vec<_> = clients
        .iter()
        .map(|client| (client.room, &client.log))
        .collect();
    let senders: Vec<_> = clients
        .iter()
        .filter_map(|client| {
            let sender = client.sender.as_ref()?;
            Some((sender.id, client.room, &sender.log))
        })
        .collect();
    Ok(Outcome {
        planned: plan.count as u64,
        connected: context.joined.load(Ordering::Relaxed),
        failed: context.failed.load(Ordering::Relaxed),
        unfinished: driven.unfinished,
        sessions: clients.iter().map(|client| client.sessions as u64).sum(),
        errors: clients.iter().map(|client| client.errors).sum(),
        foreign: clients.iter().map(|client| client.foreign).sum(),
        first_error: context.first_error.lock().clone(),
        window_secs: driven.window_secs,
        drain_secs: driven.drain_secs,
        deliveries: context.deliveries.load(Ordering::Relaxed),
        tally: Some(tally(&receivers, &senders)),
        streams: None,
        storm: None,
        latency_us: context.latency.snapshot(),
    })
}
