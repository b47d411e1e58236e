//! defender-token-proxy lets tools call the Microsoft Defender APIs with plain HTTP: it obtains the
//! Microsoft Entra ID token for the route's credential, caches and refreshes it, injects it, and
//! forwards the call, streaming both ways.
//!
//! # Layout
//! - [`cli`]: the command line; [`app`]: the router and [`run`]; [`server`]: the main listener
//!   (TLS, connection limits); [`signal`]: shutdown signals.
//! - [`config`]: the TOML model and its validation; [`secret`]: secret values and their sources.
//! - [`credential`]: the credential types; [`token`]: the token cache and the Entra client;
//!   [`state`]: stored sign-ins; [`login`]: interactive sign-in; [`check`]: the one-off commands.
//! - [`route`]: the route table; [`proxy`]: forwarding; [`ratelimit`]: client-side rate limits;
//!   [`rewrite`]: link rewriting;
//!   [`error`]: the proxy's error responses.
//! - [`screen`]: browser, Host and request-target checks; [`inbound`]: API keys.
//! - [`admin`]: `/-/healthy`, `/-/ready`, `/-/metrics`, `/-/status`;
//!   [`reload`]: live reload; [`metrics`]: Prometheus metrics; [`telemetry`]: logging.
//! - [`demo`] (the `demo` feature): the demo, on the simulator of the `defender-sim` crate.

pub mod admin;
pub mod app;
pub mod check;
pub mod cli;
pub mod config;
pub mod credential;
#[cfg(feature = "demo")]
pub mod demo;
pub mod error;
pub mod inbound;
pub mod login;
pub mod metrics;
pub mod proxy;
pub mod ratelimit;
pub mod reload;
pub mod rewrite;
pub mod route;
pub mod screen;
pub mod secret;
pub mod server;
pub mod signal;
pub mod state;
pub mod telemetry;
pub mod token;

pub use app::{run, run_with_admin};
pub use config::Config;
