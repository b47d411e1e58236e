//! A cached access token: the ready-made `Authorization` header value, its schedule, and the
//! permissions it carries (decoded for display only, never validated or relied on).

use std::time::{Duration, Instant, SystemTime};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::HeaderValue;

use super::{TokenError, TokenResponse, schedule};

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
    pub(super) fn new(
        response: TokenResponse,
        sent_at: Instant,
        sent_at_wall: SystemTime,
    ) -> Result<Self, TokenError> {
        let permissions = permissions(response.access_token.expose());
        let mut authorization = HeaderValue::try_from(format!(
            "Bearer {}",
            response.access_token.expose()
        ))
        .map_err(|_| {
            TokenError::Malformed("the access token has characters a header cannot carry".into())
        })?;
        authorization.set_sensitive(true);
        let s = schedule::schedule(sent_at, response.expires_in, response.refresh_in);
        Ok(Self {
            authorization,
            refresh_at: s.refresh_at,
            usable_until: s.usable_until,
            expires_at: s.expires_at,
            acquired_at_wall: sent_at_wall,
            expires_at_wall: sent_at_wall + response.expires_in,
            permissions,
        })
    }

    /// The `Authorization` header value (`Bearer …`), marked sensitive.
    pub fn authorization(&self) -> HeaderValue {
        self.authorization.clone()
    }

    /// How long until the token expires (zero once it has).
    pub fn expires_in(&self) -> Duration {
        self.expires_at.saturating_duration_since(Instant::now())
    }

    pub(super) fn usable_at(&self, now: Instant) -> bool {
        now < self.usable_until
    }
}

/// The `roles` (application permissions) or `scp` (delegated scopes) claim of a JWT access token,
/// read without validation for display (protocol.md 7.7: clients should not depend on parsing
/// tokens, so nothing else uses this). Empty when the token is not a readable JWT.
fn permissions(token: &str) -> Vec<String> {
    let Some(payload) = token.split('.').nth(1) else {
        return Vec::new();
    };
    let Ok(bytes) = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')) else {
        return Vec::new();
    };
    let Ok(claims) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
        return Vec::new();
    };
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

    #[test]
    fn permissions_come_from_roles_or_scp_and_unreadable_tokens_have_none() {
        assert_eq!(
            permissions(&jwt(r#"{"roles":["Alert.Read.All","Machine.Read.All"]}"#)),
            ["Alert.Read.All", "Machine.Read.All"]
        );
        assert_eq!(
            permissions(&jwt(r#"{"scp":"Alert.Read Machine.Read"}"#)),
            ["Alert.Read", "Machine.Read"]
        );
        assert!(permissions("opaque-token").is_empty());
        assert!(permissions("a.!!!.c").is_empty());
    }
}
