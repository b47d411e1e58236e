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
//! - [`sim`]: simulated Entra ID and Defender APIs for the demo and the tests; [`demo`]: the demo.

mod access;
pub mod admin;
pub mod app;
pub mod check;
pub mod cli;
mod client;
mod cloud;
pub mod config;
pub mod credential;
pub mod demo;
mod digest;
pub mod error;
pub mod headers;
pub mod inbound;
mod live;
pub mod login;
pub mod metrics;
mod middleware;
pub mod proxy;
pub mod ratelimit;
pub mod reload;
mod report;
pub mod rewrite;
pub mod route;
pub mod screen;
pub mod secret;
pub mod server;
pub mod signal;
pub mod sim;
pub mod state;
pub mod telemetry;
pub mod token;
mod upstream;

pub use app::{run, run_with_admin};
pub use config::Config;
