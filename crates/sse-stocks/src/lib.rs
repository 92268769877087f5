//! sse-stocks: live stock quotes over Server-Sent Events (contract section 2).
//!
//! How one tick travels: `feed` steps the random walk every `TICK_MS` →
//! `hub` serializes the step once into SSE frames and keeps it in the
//! `replay` buffer → every open `stream` gets the same bytes → `events`
//! writes them to the client's socket, one write per stream per step. A
//! client that reconnects with `Last-Event-ID` resumes from `replay` with
//! no gap and no duplicate. With `REDIS_URL` the lease holder's step goes
//! through a Redis stream instead, and every instance's tail feeds the same
//! hub (`cluster`).
//!
//! [`app`] builds the shared state from `config`, starts the background
//! tasks and is what `ops` starts; `routes` is the HTTP surface beside
//! `/events`; `health` is what `/healthz` says; `metrics` holds the
//! series; `frame` writes SSE frames, [`event_id`] and [`symbols`] parse.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod app;
pub(crate) mod cluster;
pub(crate) mod config;
pub mod event_id;
pub(crate) mod events;
pub(crate) mod feed;
pub(crate) mod frame;
pub(crate) mod health;
pub(crate) mod hub;
pub(crate) mod metrics;
pub(crate) mod replay;
pub(crate) mod routes;
pub(crate) mod stream;
pub mod symbols;
