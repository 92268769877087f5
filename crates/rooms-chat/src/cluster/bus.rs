//! The one subscriber of this instance: turns the events channel into
//! [`StoreEvent`]s, in the order Redis published them.
//!
//! A lag (fred's broadcast skipped records) or a reconnect (records
//! published meanwhile are gone) becomes a `Resync`, so every room is
//! checked against its log.

use super::schema::EVENTS_CHANNEL;
use crate::metrics::Metrics;
use crate::room::event::RoomEvent;
use crate::store::StoreEvent;
use anyhow::{Result, bail};
use fred::clients::SubscriberClient;
use fred::interfaces::{EventInterface, PubsubInterface};
use fred::types::Value;
use tokio::sync::{broadcast, mpsc};

/// Subscribes and reads until the client closes. fred re-subscribes after
/// every reconnect (`manage_subscriptions`).
pub async fn subscribe(
    subscriber: &SubscriberClient,
    metrics: Metrics,
) -> Result<mpsc::UnboundedReceiver<StoreEvent>> {
    let (events, receiver) = mpsc::unbounded_channel();
    let _resubscriber = subscriber.manage_subscriptions();
    tokio::spawn(read(subscriber.clone(), events, metrics));
    subscriber.subscribe(EVENTS_CHANNEL).await?;
    Ok(receiver)
}

async fn read(
    subscriber: SubscriberClient,
    events: mpsc::UnboundedSender<StoreEvent>,
    metrics: Metrics,
) {
    let mut messages = subscriber.message_rx();
    let mut reconnects = subscriber.reconnect_rx();
    loop {
        let event = tokio::select! {
            received = messages.recv() => match received {
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
                Err(broadcast::error::RecvError::Closed) => return,
            },
            reconnected = reconnects.recv() => match reconnected {
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => StoreEvent::Resync,
                Err(broadcast::error::RecvError::Closed) => return,
            },
        };
        if let StoreEvent::Room(_) = event {
            metrics.cluster_messages_in.inc();
        }
        if events.send(event).is_err() {
            return;
        }
    }
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
