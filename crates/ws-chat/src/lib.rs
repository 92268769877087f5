//! ws-chat: one chat room over plain WebSocket (contract section 1).
//!
//! How one message travels: the socket → `session` (parse, validate via
//! `protocol`, rate limit) → `hub` (id, history, one WebSocket frame
//! encoded for everyone) → every member's outbox ([`fanout`]): written
//! straight into each socket from the sender's task while the chat is
//! quiet, queued while it is busy and written by the chat's `clock`
//! (one vectored write per socket and per delay), or left to the socket's
//! task while the peer is slow → the socket.
//!
//! [`app`] builds the shared state from `config` and is what `ops`
//! starts; `upgrade` turns `GET /ws` into a session, whose `socket`
//! reads with tungstenite polled by hand; `routes` serves
//! the page, `/healthz` and `/metrics`; `metrics` holds the series;
//! `access` checks tokens when token authentication is on.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub(crate) mod access;
pub mod app;
pub(crate) mod clock;
pub(crate) mod config;
pub(crate) mod hub;
pub(crate) mod metrics;
pub(crate) mod routes;
pub(crate) mod session;
pub(crate) mod socket;
pub(crate) mod upgrade;
