//! The load generator of the three servers (and of a raw TCP reference):
//! real clients of each protocol (`wire_clients`, which the apps' tests
//! use too), scenarios that drive thousands of them, and exact accounting
//! of what arrived, when, and at what server cost.
//!
//! The binary parses [`cli::Args`] and hands them to [`app::run`]; the
//! formats in [`codec`] (the messages' stamps, the probes of the frames
//! measured) are public too, for the property tests that feed them any
//! input.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod app;
pub(crate) mod benchmarks;
pub mod cli;
pub(crate) mod clients;
pub mod codec;
pub(crate) mod deliveries;
pub(crate) mod gate;
pub(crate) mod histogram;
pub(crate) mod net;
pub(crate) mod procfs;
pub(crate) mod raw_server;
pub(crate) mod report;
pub(crate) mod run;
pub(crate) mod scenario;
pub(crate) mod segments;
