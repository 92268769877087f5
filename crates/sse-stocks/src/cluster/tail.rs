//! Every instance's reader of the tick stream: the stream into the hub.

use super::schema::{Entry, parse_entry};
use super::{Cluster, RETRY_PAUSE};
use crate::event_id::EventId;
use fred::prelude::{Error, StreamsInterface};
use fred::types::streams::XReadResponse;
use ops::Shutdown;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// How long one `XREAD` blocks before it is issued again.
pub const BLOCK: Duration = Duration::from_millis(1000);
/// Most stream entries read at once.
const BATCH: u64 = 1000;

impl Cluster {
    /// Reads the stream into the hub, for ever: first the recent history
    /// (for resumes), then every new entry, checking that each one follows
    /// the one read before it.
    pub async fn run_tail(self: Arc<Self>, shutdown: Shutdown) {
        // The last id read; None until the history has been loaded.
        let mut last: Option<EventId> = None;
        loop {
            let read = async {
                match last {
                    None => self.read_history().await,
                    Some(id) => self.read_after(id).await,
                }
            };
            let result = tokio::select! {
                result = read => result,
                _ = shutdown.wait() => return,
            };
            let entries = match result {
                Ok(entries) => entries,
                Err(error) => {
                    self.link.set_up(false);
                    self.redis_failed("reading the tick stream", &error);
                    tokio::select! {
                        _ = tokio::time::sleep(RETRY_PAUSE) => {}
                        _ = shutdown.wait() => return,
                    }
                    continue;
                }
            };
            self.link.set_up(true);
            if let (Some(last_read), Some(first)) = (last, entries.first())
                && first.prev != Some(last_read)
            {
                // Entries between were lost (Redis restarted without its
                // data, or a replica that lacked them took over): nothing
                // can be replayed across that hole, so every stream starts
                // over, with the entries after it. The ones before it that
                // the new server holds were read already: sent again, they
                // would repeat ids.
                tracing::warn!(%last_read, "the tick stream lost entries: resetting every stream");
                self.hub.start_over();
            }
            last = match entries.last() {
                Some(newest) => Some(newest.tick.id),
                // An empty stream: read from its very beginning.
                None => last.or(Some(EventId::new(0, 0))),
            };
            self.hub
                .metrics()
                .ticks_received
                .inc_by(entries.len() as u64);
            if let Some(newest) = last {
                let mut highest = self.highest_seen.lock();
                *highest = (*highest).max(newest);
            }
            self.hub
                .publish(entries.into_iter().map(|entry| entry.tick).collect());
        }
    }

    /// The last `REPLAY_TICKS` entries, oldest first.
    async fn read_history(&self) -> Result<Vec<Entry>, Error> {
        let entries: Vec<(String, HashMap<String, String>)> = self
            .tail
            .xrevrange_values(&self.keys.stream, "+", "-", Some(self.replay_ticks as u64))
            .await?;
        Ok(entries.into_iter().rev().filter_map(parse_entry).collect())
    }

    /// Waits up to [`BLOCK`] for entries after `id`.
    async fn read_after(&self, id: EventId) -> Result<Vec<Entry>, Error> {
        let response: fred::types::Value = self
            .tail
            .xread(
                Some(BATCH),
                Some(BLOCK.as_millis() as u64),
                &self.keys.stream,
                id.to_string(),
            )
            .await?;
        // Nil when nothing came within the block time.
        if response.is_null() {
            return Ok(Vec::new());
        }
        let mut response: XReadResponse<String, String, String, String> =
            response.into_xread_response()?;
        let entries = response.remove(&self.keys.stream).unwrap_or_default();
        Ok(entries.into_iter().filter_map(parse_entry).collect())
    }
}
