//! Why no token could be had: Entra's refusals and failures, and the cache's own backing off.

use std::sync::Arc;
use std::time::Duration;

use super::EntraRejection;

impl TokenError {
    /// The failure's name in the token request metric.
    pub(crate) fn outcome(&self) -> &'static str {
        match self {
            Self::Rejected(_) => "rejected",
            Self::Throttled { .. } => "throttled",
            Self::Unavailable { .. } => "failed",
            Self::Unreachable(_) => "unreachable",
            Self::Timeout(_) => "timeout",
            Self::Malformed(_) => "malformed",
            Self::Assertion(_) => "assertion_failed",
            Self::Interrupted => "interrupted",
            Self::BackingOff { .. } => "backing_off",
            Self::LoginRequired(_) => "login_required",
            Self::State(_) => "state_failed",
            Self::FederatedToken { .. } => "federated_token_unreadable",
            Self::NotExchanged => "not_exchanged",
            Self::ManagedIdentity { error, .. } => error.outcome(),
        }
    }

    /// The failure itself: for a managed identity endpoint's, the error it wraps.
    pub(crate) fn root(&self) -> &TokenError {
        match self {
            Self::ManagedIdentity { error, .. } => error.root(),
            other => other,
        }
    }
}

/// A managed identity endpoint's failure in words that name that endpoint, not Entra: on a machine
/// outside Azure it is the metadata service that does not answer, and Entra is never asked.
fn managed_identity(service: &str, error: &TokenError) -> String {
    let what = match error {
        TokenError::Unreachable(e) => {
            format!("is unreachable: {}", crate::report::error_chain(e))
        }
        TokenError::Timeout(after) => format!("did not answer within {after:?}"),
        TokenError::Rejected(r) => format!("refused the token request: {r}"),
        TokenError::Throttled { rejection, .. } => {
            format!("is throttling token requests: {rejection}")
        }
        TokenError::Unavailable { rejection, .. } => format!("failed: {rejection}"),
        TokenError::Malformed(m) => format!("answered with a malformed token response: {m}"),
        other => other.to_string(),
    };
    format!("{service} {what}")
}

/// What to do when no managed identity endpoint answers: the machine is not in Azure (or not set
/// up for one), so the proxy needs a credential of its own.
pub(crate) const NO_MANAGED_IDENTITY: &str = "outside Azure there is no managed identity: set \
     AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET (or AZURE_CLIENT_CERTIFICATE_PATH, or \
     AZURE_FEDERATED_TOKEN_FILE for a workload identity), or give --config FILE (start from \
     docs/defender-token-proxy.example.toml)";

/// Why no token could be had.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// Entra refused the request (4xx other than 429): wrong secret, unknown app, missing consent...
    #[error("entra rejected the token request: {0}")]
    Rejected(Box<EntraRejection>),
    /// Entra answered 429.
    #[error("entra is throttling token requests: {rejection}")]
    Throttled {
        /// Entra's Retry-After.
        retry_after: Option<Duration>,
        /// Entra's error body.
        rejection: Box<EntraRejection>,
    },
    /// Entra answered 5xx.
    #[error("entra failed: {rejection}")]
    Unavailable {
        /// Entra's Retry-After.
        retry_after: Option<Duration>,
        /// Entra's error body.
        rejection: Box<EntraRejection>,
    },
    /// No connection to Entra (DNS, TCP, TLS).
    #[error("entra is unreachable")]
    Unreachable(#[source] reqwest::Error),
    /// Entra did not answer in time.
    #[error("entra did not answer within {0:?}")]
    Timeout(Duration),
    /// Entra's answer is not a usable token response.
    #[error("entra's token response is malformed: {0}")]
    Malformed(String),
    /// The client assertion could not be signed.
    #[error("cannot sign the client assertion")]
    Assertion(#[source] jsonwebtoken::errors::Error),
    /// A user-context credential has no usable sign-in: nobody ran `login`, or Entra refused the
    /// stored refresh token (expired, revoked, or new conditions such as MFA).
    #[error("{}", match .0 { Some(r) => format!("the user must sign in again: {r}"), None => "no user has signed in".to_owned() })]
    LoginRequired(Option<Box<EntraRejection>>),
    /// The state directory could not be read or written.
    #[error("cannot use the stored sign-in")]
    State(#[source] std::io::Error),
    /// The workload identity's projected token could not be read.
    #[error("cannot read the federated token file {}", .path.display())]
    FederatedToken {
        /// The file (AZURE_FEDERATED_TOKEN_FILE).
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The credential is a legacy API token, which is not exchanged at Entra.
    #[error("an api_token credential is used as it is: it has no Entra token")]
    NotExchanged,
    /// The token request was cut short (the process is shutting down).
    #[error("the token request was interrupted")]
    Interrupted,
    /// A managed identity endpoint (IMDS, or App Service's) failed; `error` says how.
    #[error("{}", managed_identity(.service, .error))]
    ManagedIdentity {
        /// The endpoint in words, such as "the Azure instance metadata service (IMDS) at URL".
        service: String,
        /// The failure, as an Entra request's would be.
        error: Box<TokenError>,
    },
    /// A recent request failed, and the next one is not due yet.
    #[error("token requests are paused for {retry_after:?} after a failure: {last}")]
    BackingOff {
        /// How long until the next attempt.
        retry_after: Duration,
        /// The failure that caused the pause.
        last: Arc<TokenError>,
    },
}

impl TokenError {
    /// What to do about this error, when that is known: sign in (for `credential`), or the hint for
    /// Entra's AADSTS code.
    pub(crate) fn hint(&self, credential: &str) -> Option<String> {
        match self {
            Self::LoginRequired(_) => Some(format!(
                "run `defender-token-proxy login {credential}` to sign in"
            )),
            Self::BackingOff { last, .. } => last.hint(credential),
            Self::ManagedIdentity { error, .. } => match **error {
                Self::Unreachable(_) | Self::Timeout(_) => Some(NO_MANAGED_IDENTITY.to_owned()),
                ref other => other.hint(credential),
            },
            other => other
                .rejection()
                .and_then(|r| r.codes.iter().find_map(|c| super::hint(*c)))
                .map(str::to_owned),
        }
    }

    /// The Entra refusal behind this error, if there is one.
    pub(crate) fn rejection(&self) -> Option<&EntraRejection> {
        match self {
            Self::Rejected(r)
            | Self::Throttled { rejection: r, .. }
            | Self::Unavailable { rejection: r, .. } => Some(r),
            Self::LoginRequired(r) => r.as_deref(),
            Self::BackingOff { last, .. } => last.rejection(),
            Self::ManagedIdentity { error, .. } => error.rejection(),
            Self::Unreachable(_)
            | Self::Timeout(_)
            | Self::Malformed(_)
            | Self::Assertion(_)
            | Self::State(_)
            | Self::FederatedToken { .. }
            | Self::NotExchanged
            | Self::Interrupted => None,
        }
    }

    /// How long Entra asked us to wait, if it did.
    pub(super) fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Throttled { retry_after, .. } | Self::Unavailable { retry_after, .. } => {
                *retry_after
            }
            Self::BackingOff { retry_after, .. } => Some(*retry_after),
            Self::ManagedIdentity { error, .. } => error.retry_after(),
            Self::Rejected(_)
            | Self::Unreachable(_)
            | Self::Timeout(_)
            | Self::Malformed(_)
            | Self::Assertion(_)
            | Self::LoginRequired(_)
            | Self::State(_)
            | Self::FederatedToken { .. }
            | Self::NotExchanged
            | Self::Interrupted => None,
        }
    }
}
