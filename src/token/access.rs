//! A cached access token: the ready-made `Authorization` header value, its schedule, and the
//! permissions it carries (decoded for display only, never validated or relied on).

use std::time::{Duration, Instant, SystemTime};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::HeaderValue;

use super::{TokenError, TokenResponse, schedule};

/// The scheme of an Entra access token's `Authorization` header (RFC 6750 section 2.1).
const BEARER: &str = "Bearer ";
/// How long a static API token counts as valid: longer than any process runs.
const STATIC_LIFETIME: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);

/// A cached access token, held only as the ready-made sensitive `Authorization` header value.
pub struct AccessToken {
    authorization: HeaderValue,
    pub(super) refresh_at: Instant,
    usable_until: Instant,
    expires_at: Instant,
    /// When the token was requested (wall clock), for status output.
    pub acquired_at_wall: SystemTime,
    /// Wall-clock expiry, for status output.
    pub expires_at_wall: SystemTime,
    /// The permissions the token carries (`roles`, or `scp` split at spaces), for display.
    pub permissions: Vec<String>,
    /// Whether they are delegated scopes (`scp`, a user's token) rather than app roles.
    pub delegated: bool,
    /// The token's audience (`aud`), for display.
    pub audience: Option<String>,
    /// The signed-in user of a user token (`upn`, `preferred_username` or `unique_name`), for
    /// display.
    pub account: Option<String>,
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessToken")
            .field("authorization", &"[redacted]")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

impl AccessToken {
    /// The token of a token response whose request was sent at `sent_at`.
    pub(crate) fn new(
        response: TokenResponse,
        sent_at: Instant,
        sent_at_wall: SystemTime,
    ) -> Result<Self, TokenError> {
        let claims = claims(response.access_token.expose());
        let permissions = permissions(&claims);
        let delegated = claims["roles"].as_array().is_none() && claims["scp"].is_string();
        let audience = claims["aud"].as_str().map(str::to_owned);
        let account = ["upn", "preferred_username", "unique_name"]
            .iter()
            .find_map(|name| claims[*name].as_str().map(str::to_owned));
        // Built at its exact size: the header keeps its buffer for the token's life, and one
        // grown by `format!` may be nearly twice the token (a partner caches hundreds).
        let token = response.access_token.expose();
        let mut value = String::with_capacity(BEARER.len() + token.len());
        value.push_str(BEARER);
        value.push_str(token);
        let mut authorization = HeaderValue::try_from(value).map_err(|_| {
            TokenError::Malformed("the access token has characters a header cannot carry".into())
        })?;
        authorization.set_sensitive(true);
        // Checked: the lifetime is a remote number, and overflowing the clock panics.
        let too_long = || {
            TokenError::Malformed(format!(
                "the token's lifetime of {}s is beyond what the clock can hold",
                response.expires_in.as_secs()
            ))
        };
        let s = schedule::schedule(
            sent_at,
            response.expires_in,
            response.refresh_in,
            schedule::spread(),
        )
        .ok_or_else(too_long)?;
        let expires_at_wall = sent_at_wall
            .checked_add(response.expires_in)
            .ok_or_else(too_long)?;
        // A token past its usable lifetime when the answer arrives is never injected: the answer
        // took longer than the token lives.
        if Instant::now() >= s.usable_until {
            return Err(TokenError::Malformed(format!(
                "the token's lifetime of {}s ended before the answer arrived",
                response.expires_in.as_secs()
            )));
        }
        Ok(Self {
            authorization,
            refresh_at: s.refresh_at,
            usable_until: s.usable_until,
            expires_at: s.expires_at,
            acquired_at_wall: sent_at_wall,
            expires_at_wall,
            permissions,
            delegated,
            audience,
            account,
        })
    }

    /// A legacy Defender for Cloud Apps API token, sent as `Authorization: Token <key>`. It does not
    /// expire as far as the proxy can tell; it is replaced when the configuration changes.
    pub(crate) fn api_token(key: &crate::secret::Secret) -> Result<Self, TokenError> {
        let mut authorization =
            HeaderValue::try_from(format!("Token {}", key.expose())).map_err(|_| {
                TokenError::Malformed("the API token has characters a header cannot carry".into())
            })?;
        authorization.set_sensitive(true);
        let now = Instant::now();
        let far = now.checked_add(STATIC_LIFETIME).unwrap_or(now);
        Ok(Self {
            authorization,
            refresh_at: far,
            usable_until: far,
            expires_at: far,
            acquired_at_wall: SystemTime::now(),
            expires_at_wall: SystemTime::now()
                .checked_add(STATIC_LIFETIME)
                .unwrap_or_else(SystemTime::now),
            permissions: Vec::new(),
            delegated: false,
            audience: None,
            account: None,
        })
    }

    /// The `Authorization` header value (`Bearer …`), marked sensitive.
    pub fn authorization(&self) -> HeaderValue {
        self.authorization.clone()
    }

    /// The bearer token itself, for the managed-identity endpoint's answer: `None` for a static API
    /// token, which is not a bearer token.
    pub(crate) fn bearer(&self) -> Option<&str> {
        self.authorization.to_str().ok()?.strip_prefix("Bearer ")
    }

    /// How long until the token expires (zero once it has).
    pub(crate) fn expires_in(&self) -> Duration {
        self.expires_at.saturating_duration_since(Instant::now())
    }

    pub(super) fn usable_at(&self, now: Instant) -> bool {
        now < self.usable_until
    }
}

/// The claims of a JWT access token, read without validation for display
/// (<https://learn.microsoft.com/en-us/entra/identity-platform/access-tokens>:
/// clients should not depend on parsing tokens, so nothing else uses them). Null when the token is
/// not a readable JWT.
fn claims(token: &str) -> serde_json::Value {
    token
        .split('.')
        .nth(1)
        .and_then(|payload| URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok())
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default()
}

/// The `roles` (application permissions) or `scp` (delegated scopes) claim.
fn permissions(claims: &serde_json::Value) -> Vec<String> {
    if let Some(roles) = claims["roles"].as_array() {
        return roles
            .iter()
            .filter_map(|r| r.as_str().map(str::to_owned))
            .collect();
    }
    claims["scp"]
        .as_str()
        .map(|scp| scp.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(claims: &str) -> String {
        format!("eyJhbGciOiJub25lIn0.{}.sig", URL_SAFE_NO_PAD.encode(claims))
    }

    fn response(expires_in: Duration) -> TokenResponse {
        TokenResponse {
            access_token: crate::secret::Secret::new("a"),
            expires_in,
            refresh_in: None,
            refresh_token: None,
        }
    }

    #[test]
    fn a_lifetime_beyond_the_clock_is_a_malformed_answer_not_a_panic() {
        for expires_in in [Duration::from_secs(1 << 63), Duration::MAX] {
            let token = AccessToken::new(response(expires_in), Instant::now(), SystemTime::now());
            assert!(matches!(token, Err(TokenError::Malformed(_))));
        }
        assert!(
            AccessToken::new(
                response(Duration::from_secs(3599)),
                Instant::now(),
                SystemTime::now()
            )
            .is_ok()
        );
    }

    #[test]
    fn a_token_whose_lifetime_ended_before_the_answer_arrived_is_refused() {
        let sent_at = Instant::now().checked_sub(Duration::from_secs(10)).unwrap();
        let token = AccessToken::new(response(Duration::from_secs(5)), sent_at, SystemTime::now());
        let Err(TokenError::Malformed(reason)) = token else {
            panic!("an expired token was accepted");
        };
        assert!(reason.contains("before the answer arrived"), "{reason}");
    }

    #[test]
    fn permissions_come_from_roles_or_scp_and_unreadable_tokens_have_none() {
        assert_eq!(
            permissions(&claims(&jwt(
                r#"{"roles":["Alert.Read.All","Machine.Read.All"]}"#
            ))),
            ["Alert.Read.All", "Machine.Read.All"]
        );
        assert_eq!(
            permissions(&claims(&jwt(r#"{"scp":"Alert.Read Machine.Read"}"#))),
            ["Alert.Read", "Machine.Read"]
        );
        assert!(permissions(&claims("opaque-token")).is_empty());
        assert!(permissions(&claims("a.!!!.c")).is_empty());
    }
}
