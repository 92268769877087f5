//! A Lua script run by its SHA (`EVALSHA`), so the source crosses the
//! network once, not with every call. Redis forgets scripts when it
//! restarts or fails over; the script is then loaded again, on every node
//! of a cluster, and the call retried once.

use fred::prelude::{Client, Error, FromValue};
use fred::types::{MultipleKeys, MultipleValues};

/// One Lua script, run by its SHA and loaded again when Redis forgot it.
pub struct Script {
    /// fred's script: the source and its SHA-1, computed here.
    inner: fred::types::scripts::Script,
}

impl Script {
    /// A script from its Lua source (usually `include_str!` of a file).
    pub fn new(source: &'static str) -> Script {
        Script {
            inner: fred::types::scripts::Script::from_lua(source),
        }
    }

    /// The SHA-1 Redis knows the script by.
    pub fn sha1(&self) -> &str {
        self.inner.sha1()
    }

    /// Runs the script; every key it touches is in `keys`, so that a Redis
    /// Cluster sends it to the node that owns them.
    pub async fn run<R: FromValue>(
        &self,
        client: &Client,
        keys: Vec<String>,
        args: Vec<String>,
    ) -> Result<R, Error> {
        let keys = MultipleKeys::from(keys);
        let args = MultipleValues::try_from(args)?;
        self.inner.evalsha_with_reload(client, keys, args).await
    }
}
