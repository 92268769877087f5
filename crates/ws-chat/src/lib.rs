//! ws-chat: one chat room over plain WebSocket (contract section 1).
//!
//! How one message travels: the socket → [`session`] (parse, validate via
//! `protocol`, rate limit) → [`hub`] (id, history, one serialization into
//! [`frame`] fragments) → every session's place in the hub's ring → one
//! write per socket for what is waiting → the socket.
//!
//! [`app`] builds the shared state from [`config`] and is what `ops`
//! starts; [`upgrade`] turns `GET /ws` into a session, whose [`socket`]
//! plumbing polls tungstenite by hand; [`routes`] serves
//! the page, `/healthz` and `/metrics`; [`metrics`] holds the series.
#![deny(unsafe_code)]

pub mod app;
pub mod config;
pub mod frame;
pub mod hub;
pub mod metrics;
pub mod routes;
pub mod session;
pub mod socket;
pub mod upgrade;
