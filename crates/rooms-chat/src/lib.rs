//! rooms-chat: multi-room chat over Socket.IO (contract section 3), alone in
//! memory or as one of several instances sharing their state through Redis.
#![deny(unsafe_code)]

pub mod app;
pub mod config;
pub mod handlers;
pub mod health;
pub mod liveness;
pub mod metrics;
pub mod origin;
pub mod recipient;
pub mod resubscribe;
pub mod rooms_push;
pub mod sequencer;
pub mod server;
pub mod session;
pub mod store;
pub mod turn;
