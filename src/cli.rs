//! The command line: the subcommands, where each gets its configuration, and exit codes.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use tokio::net::TcpListener;

use crate::check::{self, CommandError, Target};
use crate::cloud::Api;
use crate::config::{Config, ConfigError, ConfigSource, Overrides};
use crate::credential::ClientAuth;
#[cfg(feature = "demo")]
use crate::demo;
use crate::telemetry::{self, LogFormat};
use crate::token::EntraClient;
use crate::{app, login, signal};

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
    /// Validate the configuration and get a token for every route's credential (each partner
    /// customer tenant too); print each one's tenant, expiry and permissions, never the token.
    /// Exits 1 if any fails.
    Check,
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
    /// Try the proxy with no Azure account: simulated Entra ID and Defender APIs behind the real
    /// proxy, with curl commands to paste.
    #[cfg(feature = "demo")]
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
        #[cfg(feature = "demo")]
        Command::Demo { listen } => {
            if cli.config.is_some() {
                tracing::warn!("demo builds its own configuration; --config is ignored");
            }
            demo::run(listen).await.map_err(Failure::Run)
        }
        Command::Check => one_off(cli.config, OneOff::Check).await,
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

/// The commands that use the configuration once and exit: check, token, login, logout and
/// consent-url. Results go to stdout, failures to stderr.
async fn one_off(path: Option<PathBuf>, command: OneOff) -> Result<(), Failure> {
    let config = ConfigSource::process(path, Overrides::default())
        .load()
        .map_err(Failure::Config)?;
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }
    let failed = |e: CommandError| Failure::Command(crate::report::error_chain(&e));
    let mut stdout = std::io::stdout();
    match command {
        OneOff::Check => {
            if check::check(&config, &mut stdout).await.map_err(failed)? {
                Ok(())
            } else {
                Err(Failure::Command("some tokens could not be obtained".into()))
            }
        }
        OneOff::Token(target) => {
            let token = check::token(&config, &target).await.map_err(failed)?;
            println!("{token}");
            Ok(())
        }
        OneOff::ConsentUrl(target, redirect_uri) => {
            let url = check::consent_url(&config, &target, &redirect_uri).map_err(failed)?;
            println!("{url}");
            Ok(())
        }
        OneOff::Login {
            target,
            browser,
            open,
        } => sign_in(&config, &target, browser, open).await,
        OneOff::Logout(credential) => {
            let file = user_file(&config, &credential)?;
            let removed = file.remove().map_err(|e| {
                Failure::Command(format!("cannot remove {}: {e}", file.path().display()))
            })?;
            if removed {
                println!("signed out: removed {}", file.path().display());
            } else {
                println!("no stored sign-in for {credential}");
            }
            Ok(())
        }
    }
}

/// A command that uses the configuration once and exits.
enum OneOff {
    Check,
    Token(Target),
    Login {
        target: Target,
        browser: bool,
        open: bool,
    },
    Logout(String),
    ConsentUrl(Target, String),
}

/// The state file of a device_code credential.
fn user_file<'c>(config: &'c Config, name: &str) -> Result<&'c crate::state::TokenFile, Failure> {
    match config.credentials.get(name).map(|c| &c.auth) {
        Some(ClientAuth::User(file)) => Ok(file),
        Some(other) => Err(Failure::Command(format!(
            "credential {name:?} is a {}: only device_code credentials sign a user in",
            other.kind()
        ))),
        None => Err(Failure::Command(format!("no credential named {name:?}"))),
    }
}

async fn sign_in(
    config: &Config,
    target: &Target,
    browser: bool,
    open: bool,
) -> Result<(), Failure> {
    let file = user_file(config, &target.credential)?;
    let credential = &config.credentials[&target.credential];
    let scope = check::scope_for(config, credential, target)
        .map_err(|e| Failure::Command(e.to_string()))?;
    let entra = EntraClient::new(config.token_timeout)
        .map_err(|e| Failure::Command(crate::report::error_chain(&e)))?;
    let mut stdout = std::io::stdout();
    let signed_in = if browser {
        login::browser(&entra, credential, file, &scope, open, &mut stdout).await
    } else {
        login::device_code(&entra, credential, file, &scope, &mut stdout).await
    }
    .map_err(|e| Failure::Command(crate::report::error_chain(&e)))?;
    println!(
        "signed in{}; the sign-in is stored in {}",
        signed_in
            .account
            .map(|a| format!(" as {a}"))
            .unwrap_or_default(),
        file.path().display()
    );
    Ok(())
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
                crate::report::error_chain(&error)
            );
            ExitCode::FAILURE
        }
    }
}
