//! The commands that use the configuration once and exit: check, token, login, logout and
//! consent-url.

use std::path::PathBuf;

use super::Failure;
use crate::check::{self, CommandError, Target};
use crate::config::{Config, ConfigSource, Overrides};
use crate::credential::ClientAuth;
use crate::login;
use crate::token::EntraClient;

/// The commands that use the configuration once and exit: check, token, login, logout and
/// consent-url. Results go to stdout, failures to stderr.
pub(super) async fn one_off(path: Option<PathBuf>, command: OneOff) -> Result<(), Failure> {
    let config = ConfigSource::process(path, Overrides::default())
        .load()
        .map_err(Failure::Config)?;
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }
    let failed = |e: CommandError| Failure::Command(crate::report::error_chain(&e));
    if !matches!(command, OneOff::Check { offline: true, .. }) {
        check::preflight(&config).await.map_err(failed)?;
    }
    let mut stdout = std::io::stdout();
    match command {
        OneOff::Check { offline, format } => {
            let all_ok = check::check(&config, offline, format, &mut stdout);
            if all_ok.await.map_err(failed)? {
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
pub(super) enum OneOff {
    Check {
        offline: bool,
        format: check::Format,
    },
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
