//! The load generator of the three servers (and of a raw TCP reference):
//! real clients of each protocol, scenarios that drive thousands of them,
//! and exact accounting of what arrived, when, and at what server cost.
#![deny(unsafe_code)]

pub mod app;
pub mod cli;
pub mod clients;
pub mod codec;
pub mod deliveries;
pub mod gate;
pub mod histogram;
pub mod net;
pub mod procfs;
pub mod raw_server;
pub mod report;
pub mod run;
pub mod scenario;
pub mod segments;
