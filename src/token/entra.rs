//! The Entra ID token endpoint client: the HTTP clients, the client credentials request
//! (`POST {authority}/{tenant}/oauth2/v2.0/token`,
//! <https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-client-creds-grant-flow>),
//! and the parsing of Entra's success and error answers (the same page, and
//! <https://learn.microsoft.com/en-us/entra/identity-platform/reference-error-codes>).
//! The other grants are in `grant`.

use std::time::Duration;

use reqwest::StatusCode;
use serde::Deserialize;

use super::TokenError;
use super::direct::goes_direct;
use crate::credential::{Certificate, Credential};
use crate::secret::Secret;
use crate::trust::Roots;

/// RFC 7523's client assertion type, which Entra expects with certificate credentials.
pub(super) const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// A token response is a few KiB; anything much larger is not Entra.
const MAX_RESPONSE: usize = 1 << 20;
/// The protocols offered by ALPN, in reqwest's order for a client with HTTP/2 (reqwest sets none
/// on a TLS configuration handed to it).
const ALPN: &[&[u8]] = &[b"h2", b"http/1.1"];
/// The connect timeout for the token endpoint.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest token lifetime accepted: access tokens live at most a day
/// (<https://learn.microsoft.com/en-us/entra/identity-platform/configurable-token-lifetimes>), so a
/// longer one is not a real answer, and an absurd one (2^63 s) would overflow the clock arithmetic.
pub(crate) const MAX_LIFETIME: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// A successful token response, reduced to what the cache needs.
#[derive(Debug)]
pub(crate) struct TokenResponse {
    /// The access token.
    pub access_token: Secret,
    /// Its lifetime from when the request was sent.
    pub expires_in: Duration,
    /// When Entra wants it refreshed, if it says.
    pub refresh_in: Option<Duration>,
    /// A refresh token, when the grant returns one (user context with `offline_access`).
    pub refresh_token: Option<Secret>,
}

/// Entra's refusal of a token request, as its error body describes it (never holds a secret: Entra
/// does not echo credentials).
#[derive(Debug, Clone)]
pub struct EntraRejection {
    /// The HTTP status.
    pub status: u16,
    /// The OAuth `error`, such as `invalid_client`.
    pub error: String,
    /// The AADSTS codes (`error_codes`).
    pub codes: Vec<u32>,
    /// The first line of `error_description`, such as `AADSTS7000215: Invalid client secret provided.`
    pub description: String,
    /// Entra's correlation id, for Microsoft support.
    pub correlation_id: Option<String>,
    /// Entra's trace id, for Microsoft support.
    pub trace_id: Option<String>,
}

impl std::fmt::Display for EntraRejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.description.is_empty() {
            write!(f, "{} (HTTP {})", self.error, self.status)
        } else {
            write!(f, "{}: {}", self.error, self.description)
        }
    }
}

#[derive(Deserialize)]
struct RawSuccess {
    access_token: Secret,
    #[serde(default)]
    token_type: Option<String>,
    #[serde(default)]
    expires_in: Option<Seconds>,
    /// Managed identity endpoints send the expiry as a time instead
    /// (<https://learn.microsoft.com/en-us/entra/identity/managed-identities-azure-resources/how-to-use-vm-token>,
    /// <https://learn.microsoft.com/en-us/azure/app-service/overview-managed-identity>).
    #[serde(default)]
    expires_on: Option<Seconds>,
    #[serde(default)]
    refresh_in: Option<SignedSeconds>,
    #[serde(default)]
    refresh_token: Option<Secret>,
}

#[derive(Deserialize, Default)]
struct RawError {
    #[serde(default)]
    error: String,
    #[serde(default)]
    error_description: String,
    #[serde(default)]
    error_codes: Vec<u32>,
    correlation_id: Option<String>,
    trace_id: Option<String>,
}

/// Seconds as v2 sends them (a number) or as v1 endpoints and IMDS send them (a string).
struct Seconds(u64);

impl<'de> Deserialize<'de> for Seconds {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Number(n) => Ok(Self(n)),
            Raw::Text(s) => {
                s.trim().parse().map(Self).map_err(|_| {
                    serde::de::Error::custom(format!("{s:?} is not a number of seconds"))
                })
            }
        }
    }
}

/// Seconds that may be zero or negative (`refresh_in`, which only advises): such a value is no advice.
struct SignedSeconds(i128);

impl<'de> Deserialize<'de> for SignedSeconds {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Unsigned(u64),
            Signed(i64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Unsigned(n) => Ok(Self(n.into())),
            Raw::Signed(n) => Ok(Self(n.into())),
            Raw::Text(s) => {
                s.trim().parse().map(Self).map_err(|_| {
                    serde::de::Error::custom(format!("{s:?} is not a number of seconds"))
                })
            }
        }
    }
}

impl SignedSeconds {
    /// The duration, or none for zero or less: "refresh now" on every answer would make every
    /// request a token request.
    fn positive(self) -> Option<Duration> {
        u64::try_from(self.0)
            .ok()
            .filter(|&n| n > 0)
            .map(Duration::from_secs)
    }
}

/// How an app proves its identity in the client credentials grant.
pub(crate) enum Proof<'a> {
    /// A client secret
    /// (<https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-client-creds-grant-flow>).
    Secret(&'a Secret),
    /// A certificate, from which a signed assertion is made
    /// (<https://learn.microsoft.com/en-us/entra/identity-platform/certificate-credentials>).
    Certificate(&'a Certificate),
    /// A ready-made assertion: a workload identity's federated token
    /// (<https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-client-creds-grant-flow>).
    Assertion(Secret),
}

/// The client for Entra token endpoints (each credential names its authority) and managed identity
/// endpoints. Cheap to clone.
#[derive(Debug, Clone)]
pub struct EntraClient {
    /// For `https` authorities off this host: through the system proxy (`HTTPS_PROXY`,
    /// `ALL_PROXY`, `NO_PROXY`), if any, which only tunnels the TLS connection (CONNECT, RFC 9110
    /// section 9.3.6).
    http: reqwest::Client,
    /// Direct, never through a proxy: for managed identity endpoints ("IMDS isn't intended to be
    /// used behind a proxy",
    /// <https://learn.microsoft.com/en-us/entra/identity/managed-identities-azure-resources/how-to-use-vm-token>),
    /// and for authorities a proxy must not see (see [`goes_direct`]).
    pub(super) direct: reqwest::Client,
    timeout: Duration,
}

impl EntraClient {
    /// A client whose requests time out after `timeout`. Redirects are never followed: a redirected
    /// token request would carry the secret to another host.
    pub fn new(timeout: Duration) -> Result<Self, reqwest::Error> {
        let roots = Roots::new();
        roots.warm();
        Self::with_roots(timeout, &roots)
    }

    /// A client as [`EntraClient::new`] makes, verifying certificates against `roots`, which other
    /// clients share (the system's store, read once for all of them).
    pub(crate) fn with_roots(timeout: Duration, roots: &Roots) -> Result<Self, reqwest::Error> {
        let builder = || {
            reqwest::Client::builder()
                .tls_backend_preconfigured(roots.client_config(ALPN))
                .redirect(reqwest::redirect::Policy::none())
                .timeout(timeout)
                .connect_timeout(CONNECT_TIMEOUT.min(timeout))
                .user_agent(concat!("defender-token-proxy/", env!("CARGO_PKG_VERSION")))
        };
        Ok(Self {
            http: builder().build()?,
            direct: builder().no_proxy().build()?,
            timeout,
        })
    }

    /// A POST to a token endpoint, direct or through the system proxy as [`goes_direct`] says.
    pub(super) fn post(&self, endpoint: &str) -> reqwest::RequestBuilder {
        let client = if goes_direct(endpoint) {
            &self.direct
        } else {
            &self.http
        };
        client.post(endpoint)
    }

    /// Requests an app-only token for `scope` in `tenant` with the client credentials grant, the
    /// app proving its identity with `proof`.
    pub(crate) async fn client_credentials(
        &self,
        credential: &Credential,
        tenant: &str,
        scope: &str,
        proof: Proof<'_>,
    ) -> Result<TokenResponse, TokenError> {
        let endpoint = token_endpoint(&credential.authority, tenant);
        let secret = match &proof {
            Proof::Secret(secret) => Some(*secret),
            Proof::Certificate(_) | Proof::Assertion(_) => None,
        };
        let assertion = match proof {
            Proof::Secret(_) => None,
            Proof::Certificate(cert) => Some(
                cert.assertion(&credential.client_id, &endpoint)
                    .map_err(TokenError::Assertion)?,
            ),
            Proof::Assertion(assertion) => Some(assertion),
        };
        let mut form = vec![
            ("grant_type", "client_credentials"),
            ("client_id", credential.client_id.as_str()),
            ("scope", scope),
        ];
        if let Some(secret) = secret {
            form.push(("client_secret", secret.expose()));
        }
        if let Some(assertion) = &assertion {
            form.push(("client_assertion_type", JWT_BEARER));
            form.push(("client_assertion", assertion.expose()));
        }
        let request = self.post(&endpoint).form(&form);
        self.send(request).await
    }

    /// Sends a token request and parses the answer.
    pub(super) async fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<TokenResponse, TokenError> {
        let (status, retry_after, body) = self.exchange(request).await?;
        if status.is_success() {
            return parse_success(&body);
        }
        Err(refusal(status, retry_after, &body))
    }

    /// Sends a request to a token endpoint; returns the status, Retry-After and body.
    pub(super) async fn exchange(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<(StatusCode, Option<Duration>, Vec<u8>), TokenError> {
        let mut response = request.send().await.map_err(|e| self.transport(e))?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            // Entra's Retry-After is in whole seconds (MSAL: "AAD's retry_after uses integer format only").
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| self.transport(e))? {
            if body.len() + chunk.len() > MAX_RESPONSE {
                return Err(TokenError::Malformed(
                    "the response is larger than 1 MiB".into(),
                ));
            }
            body.extend_from_slice(&chunk);
        }
        Ok((status, retry_after, body))
    }

    fn transport(&self, error: reqwest::Error) -> TokenError {
        if error.is_timeout() {
            TokenError::Timeout(self.timeout)
        } else {
            TokenError::Unreachable(error)
        }
    }
}

/// The error a non-success answer stands for: 429 is throttling, 5xx unavailability, the rest a
/// refusal.
pub(super) fn refusal(
    status: StatusCode,
    retry_after: Option<Duration>,
    body: &[u8],
) -> TokenError {
    let rejection = Box::new(parse_error(status, body));
    match status {
        StatusCode::TOO_MANY_REQUESTS => TokenError::Throttled {
            retry_after,
            rejection,
        },
        s if s.is_server_error() => TokenError::Unavailable {
            retry_after,
            rejection,
        },
        _ => TokenError::Rejected(rejection),
    }
}

/// The v2 token endpoint of `tenant` at `authority`.
pub(crate) fn token_endpoint(authority: &str, tenant: &str) -> String {
    format!("{authority}/{tenant}/oauth2/v2.0/token")
}

pub(super) fn parse_success(body: &[u8]) -> Result<TokenResponse, TokenError> {
    let raw: RawSuccess = serde_json::from_slice(body)
        .map_err(|e| TokenError::Malformed(format!("not a token response: {e}")))?;
    if let Some(kind) = &raw.token_type
        && !kind.eq_ignore_ascii_case("bearer")
    {
        return Err(TokenError::Malformed(format!(
            "token_type is {kind:?}, not Bearer"
        )));
    }
    if raw.access_token.expose().is_empty() {
        return Err(TokenError::Malformed("the access token is empty".into()));
    }
    let expires_in = match (raw.expires_in, raw.expires_on) {
        (Some(Seconds(n)), _) => n,
        (None, Some(Seconds(at))) => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            if at <= now {
                return Err(TokenError::Malformed(
                    "the token expired before the answer arrived (expires_on is not in the future)"
                        .into(),
                ));
            }
            at - now
        }
        (None, None) => {
            return Err(TokenError::Malformed(
                "the response has neither expires_in nor expires_on".into(),
            ));
        }
    };
    if expires_in == 0 {
        // A zero lifetime would make every request fetch a token.
        return Err(TokenError::Malformed("the token expires at once".into()));
    }
    let expires_in = Duration::from_secs(expires_in);
    if expires_in > MAX_LIFETIME {
        return Err(TokenError::Malformed(format!(
            "the token's lifetime of {}s is longer than the {}s any token lives",
            expires_in.as_secs(),
            MAX_LIFETIME.as_secs()
        )));
    }
    Ok(TokenResponse {
        access_token: raw.access_token,
        expires_in,
        refresh_in: raw.refresh_in.and_then(SignedSeconds::positive),
        // Managed identity endpoints send an empty one.
        refresh_token: raw.refresh_token.filter(|t| !t.expose().is_empty()),
    })
}

pub(super) fn parse_error(status: StatusCode, body: &[u8]) -> EntraRejection {
    let raw: RawError = serde_json::from_slice(body).unwrap_or_default();
    // The description's first line is the message; the rest is trace and correlation ids and a
    // timestamp, which are reported as their own fields.
    let description = raw
        .error_description
        .lines()
        .next()
        .unwrap_or("")
        .trim()
        .to_owned();
    EntraRejection {
        status: status.as_u16(),
        error: if raw.error.is_empty() {
            status
                .canonical_reason()
                .unwrap_or("error")
                .to_lowercase()
                .replace(' ', "_")
        } else {
            raw.error
        },
        codes: raw.error_codes,
        description,
        correlation_id: raw.correlation_id,
        trace_id: raw.trace_id,
    }
}

#[cfg(test)]
mod tests;
