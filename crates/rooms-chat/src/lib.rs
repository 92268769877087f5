//! rooms-chat: multi-room chat over Socket.IO (contract section 3), alone in
//! memory or as one of several instances sharing their state through Redis.
//!
//! How one event travels: a Socket.IO event → `handlers` (parse, admit) →
//! `room` (the rules) → the `store` fixes the event's place in the room's
//! order and publishes it (`cluster`: inside one Lua script; embedded: in
//! process) → this instance's one subscriber → the room's `room::line`
//! (in order, gaps repaired by `room::repair`) → `room::delivery` → each
//! `room::outgoing` (the frame built once, written at once in a quiet
//! room, by the `clock` in a busy one) → each member's outbox in our
//! Socket.IO runtime (crates/socketio), which cuts off a socket that falls
//! too far behind. Messages, joins, leaves and typing all take this road.
//!
//! [`app`] builds the shared state from `config`, starts the background
//! tasks and is what `ops` starts; `routes` is the HTTP surface
//! (Socket.IO, the page, `/healthz`, `/metrics`) behind the `origin`
//! guard; [`health`] is what `/healthz` says; [`metrics`] holds the series;
//! `access` checks tokens when token authentication is on. The [`store`]
//! backends, [`cluster`]'s included, are public for the store tests.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub(crate) mod access;
pub mod app;
pub(crate) mod clock;
pub mod cluster;
pub(crate) mod config;
pub(crate) mod handlers;
pub mod health;
pub mod metrics;
pub(crate) mod origin;
pub(crate) mod recipient;
pub(crate) mod recovery;
pub mod room;
pub(crate) mod rooms_push;
pub(crate) mod routes;
pub(crate) mod session;
pub mod store;
