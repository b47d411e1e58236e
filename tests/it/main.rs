//! The integration tests: the real proxy (`run` on port 0) in front of the simulated Entra ID and
//! Defender APIs, driven over HTTP.

mod demo;
mod errors;
mod forwarding;
mod health;
mod logs;
mod streaming;
mod support;
mod tokens;
