//! Why no token could be had: Entra's refusals and failures, and the cache's own backing off.

use std::sync::Arc;
use std::time::Duration;

use super::EntraRejection;

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
    /// The token request was cut short (the process is shutting down).
    #[error("the token request was interrupted")]
    Interrupted,
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
    /// How long Entra asked us to wait, if it did.
    pub(super) fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Throttled { retry_after, .. } | Self::Unavailable { retry_after, .. } => {
                *retry_after
            }
            Self::BackingOff { retry_after, .. } => Some(*retry_after),
            Self::Rejected(_)
            | Self::Unreachable(_)
            | Self::Timeout(_)
            | Self::Malformed(_)
            | Self::Assertion(_)
            | Self::Interrupted => None,
        }
    }
}
