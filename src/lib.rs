//! defender-token-proxy lets tools call the Microsoft Defender APIs with plain HTTP: it obtains the
//! Microsoft Entra ID token for the route's credential, caches and refreshes it, injects it, and
//! forwards the call, streaming both ways.
//!
//! The program is [`run`]; [`cli`] is the command line around it. The other public modules are
//! what the tests, benchmarks and fuzz targets reach into: [`config`] (the validated
//! configuration), [`credential`], [`token`] (the token cache and the Entra client), [`login`],
//! [`route`], [`screen`], [`rewrite`], [`headers`] and [`metrics`]. ARCHITECTURE.md has the module
//! graph.

// The modules in layers, lowest first: a module imports only from the layers below its own.

// The floor: reading the files the proxy is configured with (imports nothing).
mod file;

// Leaves: nothing from the crate but `file`.
mod access;
mod body;
mod client;
mod cloud;
mod digest;
mod encoding;
pub mod headers;
pub mod metrics;
// Public for the admission benchmark only (bench/ratelimit_store.rs).
#[doc(hidden)]
pub mod ratelimit;
mod report;
mod secret;
mod signal;
mod telemetry;
mod trust;
pub mod upstream;
// What a client can hold: descriptors (the connection caps fit under their limit), body idle time.
mod body_timeout;
mod descriptors;

// Sign-ins, credentials and tokens.
mod state;

pub mod credential;

pub mod token;

// The validated configuration.
pub mod config;

// What a request is checked, routed and rewritten with.
mod error;

mod inbound;
pub mod route;
pub mod screen;

pub mod rewrite;

// The running proxy's shared state, the handlers on it, and the wiring on top.
mod live;

mod admin;
mod console;
mod front;
mod identity;
mod middleware;
mod proxy;
mod reload;
mod server;

mod app;

// The commands.
mod check;
#[cfg(feature = "demo")]
mod demo;
pub mod login;

pub mod cli;

pub use app::{run, run_with_admin};
pub use config::Config;
