//! The command line: the subcommands, where each gets its configuration, and exit codes.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use tokio::net::TcpListener;

use crate::config::{self, ConfigError, ConfigSource, Overrides};
use crate::telemetry::{self, LogFormat};
use crate::{app, demo, signal};

/// The exit code for a configuration the proxy refuses.
const EXIT_CONFIG: u8 = 2;

/// defender-token-proxy: call Microsoft Defender APIs with plain HTTP; the proxy gets the Entra ID
/// token, caches and refreshes it, and injects it.
#[derive(Debug, Parser)]
#[command(name = "defender-token-proxy", version)]
pub struct Cli {
    /// The TOML config file. Without one, the standard Azure variables (AZURE_TENANT_ID,
    /// AZURE_CLIENT_ID, AZURE_CLIENT_SECRET or AZURE_CLIENT_CERTIFICATE_PATH, AZURE_AUTHORITY_HOST,
    /// MDCA_URL) configure one credential and the routes /mde, /xdr, /graph (and /mdca).
    #[arg(
        long,
        global = true,
        env = "DEFENDER_TOKEN_PROXY_CONFIG",
        value_name = "FILE"
    )]
    pub config: Option<PathBuf>,
    /// Log line format (filter with RUST_LOG).
    #[arg(long, global = true, value_enum, default_value_t)]
    pub log_format: LogFormat,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the proxy.
    Serve {
        /// Listen here instead of `server.listen`.
        #[arg(long, value_name = "ADDR")]
        listen: Option<SocketAddr>,
    },
    /// Check a running proxy, for container and Kubernetes probes: exits 0 when the URL answers
    /// 200, 1 otherwise.
    Healthcheck {
        /// What to ask (use /-/ready to include token readiness).
        #[arg(
            long,
            value_name = "URL",
            default_value = "http://127.0.0.1:8080/-/healthy"
        )]
        url: String,
        /// How long to wait for the answer.
        #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = humantime::parse_duration)]
        timeout: Duration,
    },
    /// Try the proxy with no Azure account: simulated Entra ID and Defender APIs behind the real
    /// proxy, with curl commands to paste.
    Demo {
        /// Where the proxy listens.
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
    },
}

/// Runs the command line; returns the process exit code.
pub async fn run(cli: Cli) -> ExitCode {
    telemetry::init(cli.log_format);
    let outcome = match cli.command {
        Command::Serve { listen } => serve(cli.config, Overrides { listen }).await,
        Command::Healthcheck { url, timeout } => return healthcheck(&url, timeout).await,
        Command::Demo { listen } => {
            if cli.config.is_some() {
                tracing::warn!("demo builds its own configuration; --config is ignored");
            }
            demo::run(listen).await.map_err(Failure::Run)
        }
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Config(error)) => {
            eprintln!("defender-token-proxy: {error}");
            ExitCode::from(EXIT_CONFIG)
        }
        Err(Failure::Run(error)) => {
            eprintln!("defender-token-proxy: {}", config::error_chain(&error));
            ExitCode::FAILURE
        }
    }
}

enum Failure {
    Config(ConfigError),
    Run(std::io::Error),
}

async fn serve(path: Option<PathBuf>, overrides: Overrides) -> Result<(), Failure> {
    let config = ConfigSource::process(path, overrides)
        .load()
        .map_err(Failure::Config)?;
    let listen = config.server.listen;
    let listener = TcpListener::bind(listen).await.map_err(|e| {
        Failure::Run(std::io::Error::new(
            e.kind(),
            format!("cannot listen on {listen}: {e}"),
        ))
    })?;
    app::run(listener, config, signal::shutdown())
        .await
        .map_err(Failure::Run)
}

async fn healthcheck(url: &str, timeout: Duration) -> ExitCode {
    // no_proxy: an HTTP(S)_PROXY set for the tool must not take the probe elsewhere.
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(timeout)
        .build();
    let outcome = match client {
        Ok(client) => client.get(url).send().await.map(|r| r.status()),
        Err(error) => Err(error),
    };
    match outcome {
        Ok(status) if status == reqwest::StatusCode::OK => ExitCode::SUCCESS,
        Ok(status) => {
            eprintln!("defender-token-proxy healthcheck: {url} answered {status}");
            ExitCode::FAILURE
        }
        Err(error) => {
            eprintln!(
                "defender-token-proxy healthcheck: {url}: {}",
                config::error_chain(&error)
            );
            ExitCode::FAILURE
        }
    }
}
