//! The lease holder's job: the feed's steps into the Redis stream.

use super::Cluster;
use super::lease;
use crate::feed::{self, RandomWalk};
use fred::prelude::{Error, HashesInterface};
use ops::Shutdown;
use protocol::sse::Quote;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

impl Cluster {
    /// Produces the feed whenever this instance holds the lease, until
    /// shutdown; then hands the lease over at once.
    pub async fn run_producer(
        self: Arc<Self>,
        mut walk: RandomWalk,
        tick: Duration,
        shutdown: Shutdown,
    ) {
        loop {
            match self.acquire_lease().await {
                Ok(true) => {
                    self.hub.metrics().lease_held.set(1);
                    tracing::info!("this instance produces the feed");
                    self.produce(&mut walk, tick, &shutdown).await;
                    self.hub.metrics().lease_held.set(0);
                }
                Ok(false) => {}
                Err(error) => self.redis_failed("taking the lease", &error),
            }
            if shutdown.is_triggered() {
                break;
            }
            tokio::select! {
                _ = tokio::time::sleep(lease::POLL) => {}
                _ = shutdown.wait() => break,
            }
        }
        if let Err(error) = self.release_lease().await {
            self.redis_failed("releasing the lease", &error);
        }
    }

    /// Steps the walk into the stream while the lease is ours: the same
    /// tick loop as embedded mode, with Redis as the place the step goes.
    async fn produce(&self, walk: &mut RandomWalk, tick: Duration, shutdown: &Shutdown) {
        walk.continue_from(&self.last_published_quotes().await);
        let steps = feed::drive(walk, tick, shutdown, |quotes| self.append(quotes));
        tokio::select! {
            () = steps => {}
            () = self.keep_lease() => {}
        }
    }

    /// Where the walk goes on from: the quotes the last producer published,
    /// or (Redis lost them) the quotes this instance saw last.
    async fn last_published_quotes(&self) -> Vec<Quote> {
        let stored: Result<HashMap<String, String>, Error> =
            self.commands.hgetall(&self.keys.quotes).await;
        let quotes: Vec<Quote> = match stored {
            Ok(stored) => stored
                .values()
                .filter_map(|json| serde_json::from_str(json).ok())
                .collect(),
            Err(error) => {
                self.redis_failed("reading the last quotes", &error);
                Vec::new()
            }
        };
        if quotes.is_empty() {
            self.hub.quotes()
        } else {
            quotes
        }
    }

    /// Appends one step; false when this instance must stop producing (the
    /// lease is no longer ours, or Redis failed).
    async fn append(&self, quotes: Vec<Quote>) -> bool {
        let mut args = vec![
            self.token.clone(),
            lease::TTL.as_millis().to_string(),
            self.replay_ticks.to_string(),
            self.highest_seen.lock().to_string(),
        ];
        for quote in &quotes {
            args.push(quote.symbol.clone());
            args.push(protocol::sse::quote_json(quote));
        }
        let appended: Result<Option<Vec<String>>, Error> = self
            .scripts
            .append
            .run(&self.commands, self.keys.for_append(), args)
            .await;
        match appended {
            Ok(Some(ids)) => {
                self.hub.metrics().ticks_produced.inc_by(ids.len() as u64);
                true
            }
            Ok(None) => {
                tracing::warn!("the producer lease was lost");
                false
            }
            Err(error) => {
                self.redis_failed("appending ticks", &error);
                false
            }
        }
    }
}
