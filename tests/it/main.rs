//! The integration tests: the real proxy (`run` on port 0) in front of the simulated Entra ID and
//! Defender APIs, driven over HTTP.

mod audit;
mod budgets;
mod clients;
mod commands;
mod compression;
mod console;
mod contexts;
mod demo;
mod deploy;
mod errors;
mod first_run;
mod forwarding;
mod health;
mod identity;
mod lifecycle;
mod limits;
mod links;
mod login;
mod logs;
mod operations;
mod outbound;
mod outbound_tls;
mod ratelimit;
mod reload;
mod security;
mod shared_budgets;
mod sign_in_files;
mod slow_clients;
mod streaming;
mod support;
mod tls;
mod tokens;
mod warmup;
