//! The command line: the subcommands, where each gets its configuration, and exit codes.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{CommandFactory, Parser, Subcommand};
use tokio::net::TcpListener;

use crate::check::{self, Target};
use crate::cloud::Api;
use crate::config::{ConfigError, ConfigSource, Listen, Overrides};
#[cfg(feature = "demo")]
use crate::demo;
use crate::telemetry::{self, LogFormat};
use crate::{app, signal};

mod one_off;

use one_off::{OneOff, one_off};

/// The exit code for a configuration the proxy refuses.
const EXIT_CONFIG: u8 = 2;
/// `--version`: the package version and the commit it was built from (build.rs).
const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (", env!("DTP_GIT_COMMIT"), ")");

/// defender-token-proxy: call Microsoft Defender APIs with plain HTTP; the proxy gets the Entra ID
/// token, caches and refreshes it, and injects it.
#[derive(Debug, Parser)]
#[command(name = "defender-token-proxy", version = VERSION)]
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
        /// Listen here instead of `server.listen` (IP:PORT, or localhost:PORT for both 127.0.0.1
        /// and ::1).
        #[arg(long, value_name = "ADDR")]
        listen: Option<Listen>,
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
    /// Validate the configuration and get a token for every route's credential (each partner
    /// customer tenant too); print each one's tenant, expiry and permissions, never the token.
    /// Exits 1 if any fails.
    Check {
        /// Validate the configuration and the files it names without requesting any token.
        #[arg(long)]
        offline: bool,
        /// How to print the findings.
        #[arg(long, value_enum, default_value_t)]
        format: check::Format,
    },
    /// Print one access token on stdout, for use in other tools while debugging (like `az account
    /// get-access-token`). Treat the output as the secret it is.
    Token {
        /// The credential's name.
        credential: String,
        /// The API whose scope to ask for (default: the first route using the credential).
        #[arg(long, value_enum, conflicts_with = "scope")]
        api: Option<Api>,
        /// The scope to ask for.
        #[arg(long)]
        scope: Option<String>,
        /// The tenant (required for a partner credential with several).
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Sign a user in for a device_code credential (device code flow, or --browser), and store
    /// the refresh token in the state directory.
    Login {
        /// The credential's name.
        credential: String,
        /// Use the browser and a loopback redirect (authorization code with PKCE) instead of a
        /// device code.
        #[arg(long)]
        browser: bool,
        /// With --browser: print the sign-in page's URL without opening a browser.
        #[arg(long, requires = "browser")]
        no_open: bool,
        /// The API whose scope to sign in for (default: the first route using the credential).
        #[arg(long, value_enum, conflicts_with = "scope")]
        api: Option<Api>,
        /// The scope to sign in for.
        #[arg(long)]
        scope: Option<String>,
    },
    /// Forget a device_code credential's stored sign-in.
    Logout {
        /// The credential's name.
        credential: String,
    },
    /// Print the admin consent link a customer's administrator opens to let a partner app into
    /// their tenant.
    ConsentUrl {
        /// The partner credential's name.
        credential: String,
        /// The customer's tenant ID or domain.
        #[arg(long)]
        tenant: String,
        /// Where Entra sends the administrator afterwards: a redirect URI registered on the app.
        #[arg(long, default_value = "https://portal.azure.com")]
        redirect_uri: String,
        /// The API whose permissions to consent to (default: the first route using the credential).
        #[arg(long, value_enum, conflicts_with = "scope")]
        api: Option<Api>,
        /// The scope to consent to.
        #[arg(long)]
        scope: Option<String>,
    },
    /// Print a shell completion script (for example `defender-token-proxy completions bash >
    /// ~/.local/share/bash-completion/completions/defender-token-proxy`).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Try the proxy with no Azure account: simulated Entra ID and Defender APIs behind the real
    /// proxy, with curl commands to paste.
    #[cfg(feature = "demo")]
    Demo {
        /// Where the proxy listens.
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
    },
}

/// Runs the command line; returns the process exit code.
pub async fn run(cli: Cli) -> ExitCode {
    // Held to the end: dropping it writes the buffered log lines (the shutdown's included).
    let logs = telemetry::init(cli.log_format);
    let outcome = match cli.command {
        Command::Serve { listen } => serve(cli.config, Overrides { listen }).await,
        Command::Healthcheck { url, timeout } => return healthcheck(&url, timeout).await,
        #[cfg(feature = "demo")]
        Command::Demo { listen } => {
            if cli.config.is_some() {
                tracing::warn!("demo builds its own configuration; --config is ignored");
            }
            demo::run(listen).await.map_err(Failure::Run)
        }
        Command::Check { offline, format } => {
            one_off(cli.config, OneOff::Check { offline, format }).await
        }
        Command::Completions { shell } => {
            let mut command = Cli::command();
            let name = command.get_name().to_owned();
            // Into memory first: clap_complete panics when its writer fails (a closed pipe).
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut command, name, &mut script);
            return match std::io::Write::write_all(&mut std::io::stdout(), &script) {
                Ok(()) => ExitCode::SUCCESS,
                Err(_) => ExitCode::FAILURE,
            };
        }
        Command::Token {
            credential,
            api,
            scope,
            tenant,
        } => {
            let target = Target {
                credential,
                api,
                scope,
                tenant,
            };
            one_off(cli.config, OneOff::Token(target)).await
        }
        Command::Login {
            credential,
            browser,
            no_open,
            api,
            scope,
        } => {
            let target = Target {
                credential,
                api,
                scope,
                tenant: None,
            };
            let login = OneOff::Login {
                target,
                browser,
                open: !no_open,
            };
            one_off(cli.config, login).await
        }
        Command::Logout { credential } => one_off(cli.config, OneOff::Logout(credential)).await,
        Command::ConsentUrl {
            credential,
            tenant,
            redirect_uri,
            api,
            scope,
        } => {
            let target = Target {
                credential,
                api,
                scope,
                tenant: Some(tenant),
            };
            one_off(cli.config, OneOff::ConsentUrl(target, redirect_uri)).await
        }
    };
    // Every log line out before the final message, which goes straight to standard error.
    drop(logs);
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Config(error)) => {
            eprintln!("defender-token-proxy: {error}");
            ExitCode::from(EXIT_CONFIG)
        }
        Err(Failure::Run(error)) => {
            eprintln!(
                "defender-token-proxy: {}",
                crate::report::error_chain(&error)
            );
            ExitCode::FAILURE
        }
        Err(Failure::Command(message)) => {
            eprintln!("defender-token-proxy: {message}");
            ExitCode::FAILURE
        }
    }
}

enum Failure {
    Config(ConfigError),
    Run(std::io::Error),
    /// A one-off command failed; the message says why.
    Command(String),
}

async fn serve(path: Option<PathBuf>, overrides: Overrides) -> Result<(), Failure> {
    let config = ConfigSource::process(path, overrides)
        .load()
        .map_err(Failure::Config)?;
    check::preflight(&config)
        .await
        .map_err(|e| Failure::Command(crate::report::error_chain(&e)))?;
    let listeners = bind(config.server.listen).await.map_err(Failure::Run)?;
    let admin = match config.admin_listen {
        Some(address) => Some(TcpListener::bind(address).await.map_err(|e| {
            Failure::Run(std::io::Error::new(
                e.kind(),
                format!("cannot listen on {address} (admin.listen): {e}"),
            ))
        })?),
        None => None,
    };
    app::run_listeners(listeners, admin, config, signal::shutdown())
        .await
        .map_err(Failure::Run)
}

/// Binds every address `listen` stands for, all on one port (the first one's, when the port is
/// 0). Only the first must succeed: a machine without IPv6 has no ::1 to bind.
async fn bind(listen: Listen) -> std::io::Result<Vec<TcpListener>> {
    let cannot = |address, e: std::io::Error| {
        std::io::Error::new(e.kind(), format!("cannot listen on {address}: {e}"))
    };
    let mut addresses = listen.addresses().into_iter();
    let Some(first) = addresses.next() else {
        return Ok(Vec::new());
    };
    let listener = TcpListener::bind(first)
        .await
        .map_err(|e| cannot(first, e))?;
    let port = listener.local_addr()?.port();
    let mut listeners = vec![listener];
    for mut address in addresses {
        address.set_port(port);
        match TcpListener::bind(address).await {
            Ok(listener) => listeners.push(listener),
            Err(e) if e.kind() == std::io::ErrorKind::AddrNotAvailable => {
                tracing::debug!(%address, error = %e, "not listening there: the address is absent");
            }
            Err(e) => return Err(cannot(address, e)),
        }
    }
    Ok(listeners)
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
                crate::report::error_chain(&error)
            );
            ExitCode::FAILURE
        }
    }
}
