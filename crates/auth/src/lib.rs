//! Optional signed-token authentication, shared by the three apps and
//! independent of how each carries its connections: the settings from the
//! environment ([`config`]), checking a token into an [`Identity`]
//! ([`verify`]), what a token may claim ([`claims`]), where a token rides
//! on an HTTP request ([`carry`]), and minting one for development
//! ([`mint`], the binaries' `token` subcommand in [`command`]).
//!
//! Off unless `AUTH_JWT_SECRET` or `AUTH_JWT_PUBLIC_KEY` is set: then an
//! app behaves exactly as without this crate.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod carry;
pub mod claims;
pub mod command;
pub mod config;
pub mod mint;
pub mod verify;

pub use claims::Identity;
pub use config::AuthConfig;
pub use verify::{Refusal, Verifier};
