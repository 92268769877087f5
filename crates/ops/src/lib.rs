//! What every server in this workspace needs to run for real, written once:
//! configuration from the environment, logging, metrics and health endpoints,
//! graceful shutdown, the HTTP accept loop, the embedded web page, rate
//! limiting, the browser-origin check and the chats' write pace; and [`launch`], which starts and
//! stops every app the same way.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod admission;
pub mod close;
pub mod config;
mod connection;
mod continuation;
pub mod env;
pub mod forwarded;
pub mod launch;
pub mod limits;
pub mod metrics;
pub mod origin;
pub mod pace;
pub mod peek;
pub mod placed;
pub mod rate;
pub mod raw_route;
pub(crate) mod refusal;
pub mod server;
mod serving;
pub mod shutdown;
pub(crate) mod spare;
pub(crate) mod starting;
pub(crate) mod telemetry;
pub mod web;

pub use config::ServerConfig;
pub use serving::{HttpService, ResponseBody};
pub use shutdown::Shutdown;
