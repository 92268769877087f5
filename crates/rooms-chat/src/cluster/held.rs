//! The states of dropped sockets kept for their recovery (see
//! `crate::recovery`), on the control shard: one key per socket, which
//! Redis expires at the end of the window, and which one `GETDEL` takes,
//! so that the recovering instance and the one whose window ran out never
//! both act on it.

use super::RedisStore;
use super::schema::control_key;
use anyhow::Result;
use fred::interfaces::KeysInterface;
use fred::types::Expiration;
use std::time::Duration;

impl RedisStore {
    /// Keeps `state` under `pid` for `ttl`.
    pub(super) async fn hold_state(&self, pid: &str, state: &str, ttl: Duration) -> Result<()> {
        let shard = self.shards.control();
        let expiry = Expiration::PX(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX));
        let client = shard.client();
        let set = client.set::<(), _, _>(held_key(pid), state, Some(expiry), None, false);
        self.on(shard, set).await
    }

    /// Takes the state kept under `pid`, if it is still there.
    pub(super) async fn take_held_state(&self, pid: &str) -> Result<Option<String>> {
        let shard = self.shards.control();
        let client = shard.client();
        let taken = client.getdel::<Option<String>, _>(held_key(pid));
        self.on(shard, taken).await
    }
}

/// The key of one held socket.
fn held_key(pid: &str) -> String {
    control_key(&format!("held:{pid}"))
}
