//! Access tokens: the API resources the simulator knows, signing Entra-v1-shaped app and user tokens, and checking
//! them (`issue` decides what goes in them).
//!
//! Tokens are HS256 JWTs signed with a random per-`Sim` key. Expiry is carried in `sim_exp_ms` (milliseconds)
//! because tests use 1–2 s lifetimes, where the whole-second `exp` would make the check wrong.

use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// One simulated API; each has its own listener and accepts only tokens issued for its resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Api {
    /// Microsoft Defender for Endpoint.
    Mde,
    /// Microsoft Defender XDR.
    Xdr,
    /// Microsoft Graph.
    Graph,
    /// Microsoft Defender for Cloud Apps.
    Mdca,
}

/// (resource identifier, API). MDE has two identifiers for the same service principal.
const RESOURCES: [(&str, Api); 5] = [
    ("https://api.securitycenter.microsoft.com", Api::Mde),
    (
        "https://securitycenter.onmicrosoft.com/windowsatpservice",
        Api::Mde,
    ),
    ("https://api.security.microsoft.com", Api::Xdr),
    ("https://graph.microsoft.com", Api::Graph),
    ("05a65629-4c1b-48c1-a78b-804c4abdd4af", Api::Mdca),
];

impl Api {
    /// The API a resource identifier (as in a scope, or a token's `aud`) names. Like Entra, case and a trailing
    /// slash do not matter.
    pub(super) fn from_resource(resource: &str) -> Option<Self> {
        let resource = resource.trim_end_matches('/');
        RESOURCES
            .iter()
            .find(|(id, _)| id.eq_ignore_ascii_case(resource))
            .map(|(_, api)| *api)
    }
}

/// Claims of an issued access token, modelled on Entra v1 tokens: app tokens carry `roles`, user tokens `scp`, `upn`
/// and `name` (<https://learn.microsoft.com/en-us/entra/identity-platform/access-token-claims-reference>).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct AccessClaims {
    pub(super) aud: String,
    pub(super) iss: String,
    pub(super) tid: String,
    pub(super) appid: String,
    /// "0" public client, "1" client secret, "2" certificate or assertion: the client's authentication method.
    pub(super) appidacr: String,
    /// Entra leaves the claim out when there are no roles, as in user tokens.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(super) roles: Vec<String>,
    /// Delegated permissions, space-separated; user tokens only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) scp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) upn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) name: Option<String>,
    /// "app" or "user".
    pub(super) idtyp: String,
    pub(super) ver: String,
    pub(super) oid: String,
    pub(super) sub: String,
    pub(super) uti: String,
    pub(super) iat: u64,
    pub(super) nbf: u64,
    pub(super) exp: u64,
    pub(super) sim_exp_ms: u64,
    /// Revocation generation at issue time (see `SimControl::revoke_all_tokens`).
    pub(super) sim_gen: u64,
}

/// Why an API refused a request with 401. The message is what the API tells the caller.
#[derive(Debug, thiserror::Error)]
pub(super) enum TokenRejection {
    #[error("authorization header is missing or is not a bearer token")]
    Missing,
    #[error("the access token is malformed or its signature is invalid")]
    Invalid,
    #[error("the access token audience is not valid for this API")]
    WrongAudience,
    #[error("the access token has expired")]
    Expired,
    #[error("the access token has been revoked")]
    Revoked,
    #[error("the API token is not valid")]
    UnknownApiToken,
}

/// The per-`Sim` signing key.
pub(super) struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl std::fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKeys([redacted])")
    }
}

impl TokenKeys {
    /// A fresh random 256-bit HMAC key (two v4 UUIDs come from the OS random source).
    pub(super) fn random() -> Self {
        let mut secret = [0u8; 32];
        secret[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        secret[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        Self {
            encoding: EncodingKey::from_secret(&secret),
            decoding: DecodingKey::from_secret(&secret),
        }
    }

    /// Signs the claims (an access token's, or an ID token's) into a compact JWT.
    pub(super) fn issue<T: Serialize>(
        &self,
        claims: &T,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        let mut header = Header::new(Algorithm::HS256);
        header.typ = Some("JWT".to_owned());
        jsonwebtoken::encode(&header, claims, &self.encoding)
    }

    /// Checks an `Authorization` header value for `api`. Order matters for the counters: only a token that is
    /// genuine and for this API counts as expired.
    pub(super) fn check(
        &self,
        authorization: Option<&[u8]>,
        api: Api,
        generation: u64,
    ) -> Result<AccessClaims, TokenRejection> {
        let value = authorization
            .and_then(|v| std::str::from_utf8(v).ok())
            .ok_or(TokenRejection::Missing)?;
        let (scheme, token) = value.split_once(' ').ok_or(TokenRejection::Missing)?;
        if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
            return Err(TokenRejection::Missing);
        }
        let mut validation = Validation::new(Algorithm::HS256);
        // Audience and expiry are checked below so that each failure gets its own answer and counter.
        validation.validate_exp = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        let claims =
            jsonwebtoken::decode::<AccessClaims>(token.trim(), &self.decoding, &validation)
                .map_err(|_| TokenRejection::Invalid)?
                .claims;
        if Api::from_resource(&claims.aud) != Some(api) {
            return Err(TokenRejection::WrongAudience);
        }
        if claims.sim_exp_ms <= now_ms() {
            return Err(TokenRejection::Expired);
        }
        if claims.sim_gen < generation {
            return Err(TokenRejection::Revoked);
        }
        Ok(claims)
    }
}

/// Milliseconds since the Unix epoch.
pub(super) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(aud: &str, sim_exp_ms: u64, sim_gen: u64) -> AccessClaims {
        let now = now_ms() / 1000;
        AccessClaims {
            aud: aud.to_owned(),
            iss: "https://sts.windows.net/t/".to_owned(),
            tid: "t".to_owned(),
            appid: "c".to_owned(),
            appidacr: "1".to_owned(),
            roles: vec![],
            scp: None,
            upn: None,
            name: None,
            idtyp: "app".to_owned(),
            ver: "1.0".to_owned(),
            oid: "o".to_owned(),
            sub: "o".to_owned(),
            uti: "u".to_owned(),
            iat: now,
            nbf: now,
            exp: sim_exp_ms / 1000,
            sim_exp_ms,
            sim_gen,
        }
    }

    fn bearer(keys: &TokenKeys, claims: &AccessClaims) -> Vec<u8> {
        format!("Bearer {}", keys.issue(claims).expect("sign")).into_bytes()
    }

    #[test]
    fn resources_are_matched_case_insensitively_and_without_trailing_slash() {
        assert_eq!(
            Api::from_resource("https://API.securitycenter.microsoft.com/"),
            Some(Api::Mde)
        );
        assert_eq!(
            Api::from_resource("https://securitycenter.onmicrosoft.com/windowsatpservice"),
            Some(Api::Mde)
        );
        assert_eq!(Api::from_resource("https://management.azure.com"), None);
    }

    #[test]
    fn token_check_tells_each_failure_apart() {
        let keys = TokenKeys::random();
        let later = now_ms() + 60_000;
        let good = bearer(&keys, &claims("https://graph.microsoft.com", later, 1));
        assert!(keys.check(Some(&good), Api::Graph, 1).is_ok());
        assert!(matches!(
            keys.check(None, Api::Graph, 1),
            Err(TokenRejection::Missing)
        ));
        assert!(matches!(
            keys.check(Some(b"Basic abc"), Api::Graph, 1),
            Err(TokenRejection::Missing)
        ));
        assert!(matches!(
            keys.check(Some(&good), Api::Mde, 1),
            Err(TokenRejection::WrongAudience)
        ));
        assert!(matches!(
            keys.check(Some(&good), Api::Graph, 2),
            Err(TokenRejection::Revoked)
        ));
        let foreign = bearer(
            &TokenKeys::random(),
            &claims("https://graph.microsoft.com", later, 1),
        );
        assert!(matches!(
            keys.check(Some(&foreign), Api::Graph, 1),
            Err(TokenRejection::Invalid)
        ));
        let expired = bearer(
            &keys,
            &claims("https://graph.microsoft.com", now_ms() - 1, 1),
        );
        assert!(matches!(
            keys.check(Some(&expired), Api::Graph, 1),
            Err(TokenRejection::Expired)
        ));
    }
}
