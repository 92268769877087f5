//! ws-chat: one chat room over plain WebSocket (contract section 1).
//!
//! A socket's frames go `session` (parse, validate, rate limit) → `hub`
//! (id, history, one serialization) → every session → its socket, cut into
//! fragments by `frames` when large. `upgrade` turns `GET /ws` into a
//! session with our `WebSocketConfig`; `routes` serves the page, `/healthz`
//! and `/metrics`; `config` and `metrics` hold the settings and the series.
#![deny(unsafe_code)]

pub mod config;
pub mod frames;
pub mod hub;
pub mod metrics;
pub mod routes;
pub mod session;
pub mod upgrade;

use config::Config;
use hub::Hub;
use metrics::ChatMetrics;

/// What every session shares: the settings, the chat and its metrics.
pub struct Chat {
    pub config: Config,
    pub hub: Hub,
    pub metrics: ChatMetrics,
}

impl Chat {
    pub fn new(config: Config, metrics: ChatMetrics) -> Chat {
        Chat {
            hub: Hub::new(config.queue_len, metrics.clone()),
            config,
            metrics,
        }
    }
}
