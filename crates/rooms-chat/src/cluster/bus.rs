//! This instance's subscribers, one per shard, merged into one stream of
//! [`StoreEvent`]s; each room's events come from its shard in the order
//! Redis published them.
//!
//! A lag (fred's broadcast skipped records) or a reconnect (records
//! published meanwhile are gone) becomes a `Resync`, so every room is
//! checked against its log; after a reconnect, only once the shard's
//! channels are subscribed again, so the check covers the time between.
//! A shard moved to a new master (a failover) is read from its new
//! subscriber, and its channels are subscribed there the same way.

use super::schema::changed_channel;
use super::shards::{Shard, Shards};
use super::watch::Watch;
use crate::metrics::Metrics;
use crate::room::event::RoomEvent;
use crate::store::StoreEvent;
use anyhow::{Context, Result, bail};
use fred::interfaces::{EventInterface, PubsubInterface};
use fred::types::Value;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc};

/// The pause before subscribing again when the first try after a
/// reconnect failed.
const RESUBSCRIBE_PAUSE: Duration = Duration::from_millis(250);

/// Subscribes the control shard to the room list's channel and reads
/// every shard until its client closes.
pub async fn start(
    shards: &Shards,
    watch: Arc<Watch>,
    metrics: Metrics,
) -> Result<mpsc::UnboundedReceiver<StoreEvent>> {
    let (events, receiver) = mpsc::unbounded_channel();
    for shard in shards.all() {
        tokio::spawn(read(
            shard.clone(),
            watch.clone(),
            events.clone(),
            metrics.clone(),
        ));
    }
    shards
        .control()
        .subscriber()
        .ssubscribe(changed_channel())
        .await
        .context("subscribe to the room list's channel")?;
    Ok(receiver)
}

async fn read(
    shard: Arc<Shard>,
    watch: Arc<Watch>,
    events: mpsc::UnboundedSender<StoreEvent>,
    metrics: Metrics,
) {
    let mut moved = shard.moved();
    loop {
        // The current master's subscriber, until the shard moves.
        let subscriber = shard.subscriber();
        moved.mark_unchanged();
        let mut messages = subscriber.message_rx();
        let mut reconnects = subscriber.reconnect_rx();
        let mut closed = false;
        loop {
            let event = tokio::select! {
                received = messages.recv(), if !closed => match received {
                    Ok(message) => match parse(&message.value) {
                        Ok(event) => event,
                        Err(error) => {
                            tracing::warn!(%error, "ignoring a bad event from Redis");
                            continue;
                        }
                    },
                    Err(broadcast::error::RecvError::Lagged(skipped)) => {
                        tracing::warn!(skipped, "Redis event stream lagged; re-checking every room");
                        StoreEvent::Resync
                    }
                    // A subscriber the shard left: wait for the move.
                    Err(broadcast::error::RecvError::Closed) => {
                        closed = true;
                        continue;
                    }
                },
                reconnected = reconnects.recv(), if !closed => match reconnected {
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {
                        if !subscribe_again(&shard, &watch, &events).await {
                            return;
                        }
                        StoreEvent::Resync
                    }
                    Err(broadcast::error::RecvError::Closed) => {
                        closed = true;
                        continue;
                    }
                },
                changed = moved.changed() => match changed {
                    Ok(()) => break,
                    Err(_) => return,
                },
            };
            if let StoreEvent::Room(_) = event {
                metrics.cluster_messages_in.inc();
            }
            if events.send(event).is_err() {
                return;
            }
        }
        // A new master, or new slots: the channels are subscribed there,
        // and what was published meanwhile is fetched from the logs.
        if !subscribe_again(&shard, &watch, &events).await
            || events.send(StoreEvent::Resync).is_err()
        {
            return;
        }
    }
}

/// Subscribes `shard`'s channels again until it works; false once nobody
/// reads the events any more.
async fn subscribe_again(
    shard: &Shard,
    watch: &Watch,
    events: &mpsc::UnboundedSender<StoreEvent>,
) -> bool {
    while let Err(error) = watch.resubscribe(shard).await {
        tracing::warn!(%error, shard = shard.name(), "cannot subscribe again yet");
        if events.is_closed() {
            return false;
        }
        tokio::time::sleep(RESUBSCRIBE_PAUSE).await;
    }
    true
}

fn parse(value: &Value) -> Result<StoreEvent> {
    let Some(payload) = value.as_str() else {
        bail!("not text");
    };
    if payload.starts_with('{') {
        return Ok(StoreEvent::Room(RoomEvent::from_record(&payload)?));
    }
    let (kind, body) = payload.split_at(payload.len().min(1));
    match kind {
        "r" => Ok(StoreEvent::RoomsChanged),
        "x" => {
            #[derive(serde::Deserialize)]
            struct Evicted {
                room: String,
                sid: String,
            }
            let evicted: Evicted = serde_json::from_str(body)?;
            Ok(StoreEvent::Evicted {
                room: evicted.room,
                sid: evicted.sid,
            })
        }
        _ => bail!("unknown event kind {kind:?}"),
    }
}
