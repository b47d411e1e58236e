//! The `check`, `token` and `consent-url` commands: one-off uses of the configured credentials
//! outside the proxy. `check` gets a token for every route's credential (each partner customer
//! tenant too) and reports credential, tenant, expiry and permissions; the token itself is printed
//! only by `token`, which exists for that.

use std::collections::HashSet;
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crate::cloud::Api;
use crate::config::Config;
use crate::credential::{ClientAuth, Credential};
use crate::route::Tenancy;
use crate::token::{AccessToken, EntraClient, TokenError};
use crate::trust::Roots;

mod output;

/// Why a one-off command could not do what was asked (the message goes to the user as it is).
#[derive(Debug, thiserror::Error)]
pub(crate) enum CommandError {
    /// The command's arguments do not fit the configuration.
    #[error("{0}")]
    Usage(String),
    /// No token could be had.
    #[error("{}", describe(.credential, .error))]
    Token {
        /// The credential's name.
        credential: String,
        /// Why.
        error: TokenError,
    },
    /// The HTTP client could not be built.
    #[error("cannot create the HTTP client")]
    Client(#[source] reqwest::Error),
    /// Configured from the environment with no credential variables, and no managed identity
    /// answers.
    #[error(
        "no credential to use: no --config, none of AZURE_TENANT_ID, AZURE_CLIENT_SECRET, \
         AZURE_CLIENT_CERTIFICATE_PATH or AZURE_FEDERATED_TOKEN_FILE is set, and {0}\n  hint: {hint}",
        hint = crate::token::NO_MANAGED_IDENTITY
    )]
    NoCredential(TokenError),
}

/// A token failure of `credential` on one line, with what to do about it when that is known.
pub(crate) fn describe(credential: &str, error: &TokenError) -> String {
    let mut line = crate::report::error_chain(error);
    if let Some(hint) = error.hint(credential) {
        line.push_str("\n  hint: ");
        line.push_str(&hint);
    }
    line
}

/// How `check` prints what it found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    /// Lines for people.
    #[default]
    Text,
    /// One JSON document, for scripts: per credential and tenant the state, audience, roles or
    /// scopes and expiry (never a token).
    Json,
}

/// What `check` found for one (credential, tenant, scope) the routes use.
pub(crate) struct Finding {
    pub(crate) credential: Arc<str>,
    pub(crate) kind: &'static str,
    /// `None` for a credential that has no tenant of its own (managed identity, API token).
    pub(crate) tenant: Option<Arc<str>>,
    pub(crate) scope: Arc<str>,
    pub(crate) state: State,
}

/// The state of one finding.
pub(crate) enum State {
    /// A token was obtained.
    Valid(AccessToken),
    /// A legacy API token, sent as it is.
    Static,
    /// `--offline`: the configuration and its files are valid; nothing was requested.
    NotRequested,
    /// No token could be had.
    Failing(TokenError),
}

/// How long the metadata service may take to answer [`preflight`]'s probe (azure-identity's
/// DefaultAzureCredential gives IMDS about a second before it moves on).
const IMDS_PROBE: Duration = Duration::from_secs(1);

/// With no config file and no credential variables the proxy falls back to the managed identity,
/// which exists only in Azure. Before serving or checking, this probes the metadata service
/// briefly, so that a machine outside Azure is told at once what to set instead of waiting a whole
/// token timeout on every request.
pub(crate) async fn preflight(config: &Config) -> Result<(), CommandError> {
    let from_environment = config.source.as_ref().is_some_and(|s| s.path().is_none());
    if !from_environment {
        return Ok(());
    }
    let mut identities = config
        .credentials
        .values()
        .filter_map(|credential| match &credential.auth {
            ClientAuth::ManagedIdentity(identity) => Some(identity),
            _ => None,
        })
        .peekable();
    if identities.peek().is_none() {
        return Ok(());
    }
    // One client for every probe; the metadata endpoint is plain HTTP, so its roots are read only
    // should a probe go over https.
    let entra = EntraClient::with_roots(config.token_timeout, &Roots::new())
        .map_err(CommandError::Client)?;
    for identity in identities {
        entra
            .probe_imds(identity, IMDS_PROBE)
            .await
            .map_err(CommandError::NoCredential)?;
    }
    Ok(())
}

/// Runs `check`: one token per (credential, tenant, scope) the routes use, or with `offline` none
/// (the configuration and the files it names were validated when it was loaded). Returns whether
/// every one was obtained.
pub(crate) async fn check(
    config: &Config,
    offline: bool,
    format: Format,
    out: &mut impl Write,
) -> Result<bool, CommandError> {
    let entra = EntraClient::new(config.token_timeout).map_err(CommandError::Client)?;
    let mut seen = HashSet::new();
    let mut findings = Vec::new();
    for route in &config.routes {
        let credential = &route.credential;
        let finding = |tenant: Option<Arc<str>>, state| Finding {
            credential: credential.name.clone(),
            kind: credential.auth.kind(),
            tenant,
            scope: route.scope.clone(),
            state,
        };
        let tenancy = match Tenancy::new(credential, &route.scope, route.tenant_header) {
            Ok(tenancy) => tenancy,
            Err(error) => {
                findings.push(finding(None, State::Failing(error)));
                continue;
            }
        };
        if let Tenancy::Static(_) = tenancy {
            if seen.insert((credential.name.clone(), "".into(), route.scope.clone())) {
                findings.push(finding(None, State::Static));
            }
            continue;
        }
        for key in tenancy.token_keys(credential, &route.scope) {
            if !seen.insert((
                key.credential.clone(),
                key.tenant.clone(),
                key.scope.clone(),
            )) {
                continue;
            }
            let tenant = (!key.tenant.is_empty()).then(|| key.tenant.clone());
            if offline {
                findings.push(finding(tenant, State::NotRequested));
                continue;
            }
            let (sent_at, sent_at_wall) = (Instant::now(), SystemTime::now());
            let outcome = entra
                .acquire(credential, &key.tenant, &key.scope)
                .await
                .and_then(|response| AccessToken::new(response, sent_at, sent_at_wall));
            let state = match outcome {
                Ok(token) => State::Valid(token),
                Err(error) => State::Failing(error),
            };
            findings.push(finding(tenant, state));
        }
    }
    let all_ok = findings
        .iter()
        .all(|f| !matches!(f.state, State::Failing(_)));
    match format {
        Format::Text => output::text(config, offline, &findings, out),
        Format::Json => output::json(config, offline, all_ok, &findings, out),
    }
    Ok(all_ok)
}

/// What `token` and `consent-url` are asked for.
#[derive(Debug, Default)]
pub(crate) struct Target {
    /// The credential's name.
    pub credential: String,
    /// An API preset whose scope to use.
    pub api: Option<Api>,
    /// A scope.
    pub scope: Option<String>,
    /// The tenant.
    pub tenant: Option<String>,
}

/// The credential `target` names.
fn credential<'c>(
    config: &'c Config,
    target: &Target,
) -> Result<&'c Arc<Credential>, CommandError> {
    config.credentials.get(&target.credential).ok_or_else(|| {
        let known: Vec<&str> = config.credentials.keys().map(String::as_str).collect();
        CommandError::Usage(format!(
            "no credential named {:?} (defined: {})",
            target.credential,
            known.join(", ")
        ))
    })
}

/// The scope from `--scope`, `--api`, or the first route using the credential.
pub(crate) fn scope_for(
    config: &Config,
    credential: &Arc<Credential>,
    target: &Target,
) -> Result<String, CommandError> {
    match (&target.scope, target.api) {
        (Some(scope), _) => Ok(scope.clone()),
        (None, Some(api)) => Ok(config.cloud.scope(api)),
        (None, None) => config
            .routes
            .iter()
            .find(|r| Arc::ptr_eq(&r.credential, credential))
            .map(|r| r.scope.to_string())
            .ok_or_else(|| {
                CommandError::Usage(format!(
                    "no route uses credential {:?}: give --api or --scope",
                    target.credential
                ))
            }),
    }
}

/// The credential, tenant and scope `target` names; the tenant from `--tenant` (a partner's must be
/// listed), or the credential's own.
fn resolve(
    config: &Config,
    target: &Target,
) -> Result<(Arc<Credential>, Arc<str>, String), CommandError> {
    let credential = credential(config, target)?;
    let scope = scope_for(config, credential, target)?;
    let tenant = match &target.tenant {
        Some(tenant) => credential.tenant(tenant).cloned().ok_or_else(|| {
            CommandError::Usage(format!(
                "credential {:?} does not serve tenant {tenant:?} (its tenants: {})",
                target.credential,
                credential
                    .tenants
                    .iter()
                    .map(|t| &**t)
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?,
        None if credential.partner && credential.tenants.len() > 1 => {
            return Err(CommandError::Usage(format!(
                "credential {:?} serves several tenants: give --tenant",
                target.credential
            )));
        }
        None => credential.home_tenant(),
    };
    Ok((credential.clone(), tenant, scope))
}

/// Runs `token`: one access token for the target, for use in other tools.
pub(crate) async fn token(config: &Config, target: &Target) -> Result<String, CommandError> {
    let (credential, tenant, scope) = resolve(config, target)?;
    if let ClientAuth::ApiToken(_) = credential.auth {
        return Err(CommandError::Usage(format!(
            "credential {:?} is a legacy API token: it is used as it is, not exchanged",
            target.credential
        )));
    }
    let entra = EntraClient::new(config.token_timeout).map_err(CommandError::Client)?;
    let response = entra
        .acquire(&credential, &tenant, &scope)
        .await
        .map_err(|error| CommandError::Token {
            credential: target.credential.clone(),
            error,
        })?;
    Ok(response.access_token.expose().to_owned())
}

/// Runs `consent-url`: the admin consent link for a customer tenant (which need not be listed
/// yet: the link is how a new customer is onboarded).
pub(crate) fn consent_url(
    config: &Config,
    target: &Target,
    redirect_uri: &str,
) -> Result<String, CommandError> {
    let tenant = target
        .tenant
        .as_deref()
        .ok_or_else(|| CommandError::Usage("give --tenant".into()))?;
    crate::config::valid_tenant(tenant).map_err(CommandError::Usage)?;
    let credential = credential(config, target)?;
    if !matches!(
        credential.auth,
        ClientAuth::Secret(_) | ClientAuth::Certificate(_)
    ) {
        return Err(CommandError::Usage(format!(
            "credential {:?} is a {}: admin consent is for application credentials \
             (client_secret or client_certificate)",
            target.credential,
            credential.auth.kind()
        )));
    }
    let scope = scope_for(config, credential, target)?;
    credential
        .consent_url(tenant, &scope, redirect_uri)
        .map(|url| url.to_string())
        .map_err(|e| CommandError::Usage(e.to_string()))
}
