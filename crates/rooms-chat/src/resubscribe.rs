//! Subscriptions that come back after Redis does.
//!
//! fred's own `SubscriberClient::manage_subscriptions` re-subscribes with
//! `SUBSCRIBE`, then `PSUBSCRIBE`, then `SSUBSCRIBE`, and stops at the first
//! error; with no plain channel, `SUBSCRIBE` with no argument is an error,
//! so the socketioxide adapter (sharded channels only) would never hear
//! from the other instances again after a Redis restart. This does the
//! same job, skipping empty kinds and carrying on after an error.

use fred::clients::SubscriberClient;
use fred::interfaces::{EventInterface, PubsubInterface};
use tokio::sync::broadcast::error::RecvError;
use tokio::task::JoinHandle;

/// Re-subscribes `client` to everything it tracks after every reconnect.
pub fn keep_subscriptions(client: &SubscriberClient) -> JoinHandle<()> {
    let client = client.clone();
    let mut reconnects = client.reconnect_rx();
    tokio::spawn(async move {
        loop {
            match reconnects.recv().await {
                Ok(_) | Err(RecvError::Lagged(_)) => resubscribe(&client).await,
                Err(RecvError::Closed) => return,
            }
        }
    })
}

async fn resubscribe(client: &SubscriberClient) {
    for channel in client.tracked_channels() {
        if let Err(error) = client.subscribe(channel.to_string()).await {
            tracing::warn!(%error, %channel, "cannot subscribe again");
        }
    }
    for pattern in client.tracked_patterns() {
        if let Err(error) = client.psubscribe(pattern.to_string()).await {
            tracing::warn!(%error, %pattern, "cannot subscribe again");
        }
    }
    for channel in client.tracked_shard_channels() {
        if let Err(error) = client.ssubscribe(channel.to_string()).await {
            tracing::warn!(%error, %channel, "cannot subscribe again");
        }
    }
}
