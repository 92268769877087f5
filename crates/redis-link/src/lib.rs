//! The one way the apps speak Redis.
//!
//! - [`connect()`] builds the fred client from `REDIS_URL` (one Redis, a
//!   Redis Cluster with `redis-cluster://`, or the master of a Sentinel
//!   service with `redis-sentinel://`), always with RESP3, one
//!   reconnect policy and timeouts on every command, so that no caller can
//!   hang on a Redis that stopped answering.
//! - [`Script`] runs a Lua file by its SHA and loads it again when Redis
//!   forgot it (a restart, a failover to a fresh replica).
//! - [`LinkHealth`] remembers whether the last commands went through, for
//!   `/healthz` and for failing fast while the link is known to be down.
//!
//! Each app keeps its own key schema and scripts (its `cluster/` folder);
//! this crate knows nothing about them.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod connect;
pub mod health;
pub mod script;

pub use connect::{LinkOptions, connect};
pub use health::LinkHealth;
pub use script::Script;
