//! Resuming from the Redis stream, for a client whose `Last-Event-ID` is
//! older than what this instance keeps in memory.

use super::Cluster;
use super::schema::parse_entry;
use crate::event_id::EventId;
use crate::hub::NewTick;
use fred::prelude::StreamsInterface;
use std::collections::HashMap;

impl Cluster {
    /// The ticks after `from` up to `until` (included; the newest when
    /// None) for a client resuming here, if the stream still holds `from`
    /// and not too many came since; otherwise (or if Redis does not answer)
    /// None, and the client gets a reset.
    pub async fn ticks_between(
        &self,
        from: EventId,
        until: Option<EventId>,
    ) -> Option<Vec<NewTick>> {
        let limit = self.replay_ticks as u64 + 1;
        let end = until.map_or_else(|| "+".to_owned(), |until| until.to_string());
        let entries: Vec<(String, HashMap<String, String>)> = match self
            .commands
            .xrange_values(&self.keys.stream, from.to_string(), end, Some(limit))
            .await
        {
            Ok(entries) => entries,
            Err(error) => {
                self.redis_failed("replaying ticks", &error);
                return None;
            }
        };
        let mut ticks = entries
            .into_iter()
            .filter_map(parse_entry)
            .map(|entry| entry.tick);
        let first = ticks.next()?;
        if first.id != from {
            return None;
        }
        let ticks: Vec<NewTick> = ticks.collect();
        let complete = ticks.len() as u64 + 1 < limit
            && until.is_none_or(|until| ticks.last().is_some_and(|last| last.id == until));
        complete.then_some(ticks)
    }
}
