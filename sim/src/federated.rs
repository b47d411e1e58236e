//! Federated credentials (workload identity federation:
//! <https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-client-creds-grant-flow>,
//! <https://azure.github.io/azure-workload-identity/docs/>): checking the `client_assertion` an external issuer (e.g. a
//! Kubernetes cluster) signed against the issuer and subject registered on the app.
//!
//! The signature is NOT verified: Entra fetches the issuer's OIDC keys, and the simulator has no cluster to fetch
//! them from. Only the claims are checked: `iss`, `sub`, `aud` must match the registration (mismatch: AADSTS70021)
//! and `exp` must be in the future, without clock skew so that tests can present a just-expired token
//! (AADSTS700024, the failure of a workload that keeps presenting a stale token file).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde_json::Value;

/// The audience of Kubernetes projected service account tokens for Entra.
pub(super) const TOKEN_EXCHANGE_AUDIENCE: &str = "api://AzureADTokenExchange";

/// Why a federated assertion was refused; the message is the Entra description.
#[derive(Debug, thiserror::Error)]
pub(super) enum FederatedRejection {
    #[error("Invalid JWT token. The token is malformed.")]
    Malformed,
    #[error(
        "No matching federated identity record found for presented assertion. Assertion Issuer: '{issuer}'. \
         Assertion Subject: '{subject}'. Assertion Audience: '{audience}'."
    )]
    NoMatch {
        issuer: String,
        subject: String,
        audience: String,
    },
    #[error("Client assertion is not within its valid time range.")]
    Expired,
}

impl FederatedRejection {
    /// The AADSTS code Entra answers with.
    pub(super) fn code(&self) -> u32 {
        match self {
            Self::Malformed => 50027,
            Self::NoMatch { .. } => 70021,
            Self::Expired => 700024,
        }
    }
}

#[derive(Deserialize)]
struct FederatedClaims {
    iss: Option<String>,
    sub: Option<String>,
    /// A string or an array of strings.
    aud: Option<Value>,
    exp: Option<i64>,
    jti: Option<String>,
}

/// Checks the claims of `assertion` against the registered `issuer` and `subject` at unix time `now`; returns its
/// `jti` ("" when it has none).
pub(super) fn verify(
    assertion: &str,
    issuer: &str,
    subject: &str,
    now: i64,
) -> Result<String, FederatedRejection> {
    let mut parts = assertion.split('.');
    let payload = match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(_), Some(payload), Some(_), None) => payload,
        _ => return Err(FederatedRejection::Malformed),
    };
    let claims: FederatedClaims = URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()
        .and_then(|json| serde_json::from_slice(&json).ok())
        .ok_or(FederatedRejection::Malformed)?;
    let audiences: Vec<&str> = match &claims.aud {
        Some(Value::String(aud)) => vec![aud.as_str()],
        Some(Value::Array(auds)) => auds.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let matches = claims.iss.as_deref() == Some(issuer)
        && claims.sub.as_deref() == Some(subject)
        && audiences.contains(&TOKEN_EXCHANGE_AUDIENCE);
    if !matches {
        return Err(FederatedRejection::NoMatch {
            issuer: claims.iss.unwrap_or_default(),
            subject: claims.sub.unwrap_or_default(),
            audience: audiences.join(","),
        });
    }
    if claims.exp.is_none_or(|exp| exp <= now) {
        return Err(FederatedRejection::Expired);
    }
    Ok(claims.jti.unwrap_or_default())
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use serde_json::json;

    /// An unsigned-in-spirit assertion as a cluster would project it (the signature part is junk: it is not checked).
    pub(crate) fn federated_assertion(claims: &Value) -> String {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","kid":"cluster-key"}"#);
        let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
        format!("{header}.{payload}.c2lnbmF0dXJl")
    }

    const ISSUER: &str = "https://oidc.example/cluster";
    const SUBJECT: &str = "system:serviceaccount:security:proxy";

    #[test]
    fn matching_unexpired_assertion_is_accepted_and_yields_its_jti() {
        let token = federated_assertion(&json!({"iss": ISSUER, "sub": SUBJECT,
            "aud": [TOKEN_EXCHANGE_AUDIENCE], "exp": 2_000, "jti": "j-1"}));
        assert_eq!(
            verify(&token, ISSUER, SUBJECT, 1_000).expect("accepted"),
            "j-1"
        );
    }

    #[test]
    fn mismatched_or_expired_or_malformed_assertions_get_their_own_codes() {
        let claims = |iss: &str, aud: &str, exp: i64| {
            federated_assertion(&json!({"iss": iss, "sub": SUBJECT, "aud": aud, "exp": exp}))
        };
        let wrong_issuer = verify(
            &claims("https://other", TOKEN_EXCHANGE_AUDIENCE, 2_000),
            ISSUER,
            SUBJECT,
            1_000,
        )
        .expect_err("wrong issuer");
        assert_eq!(wrong_issuer.code(), 70021);
        assert!(wrong_issuer.to_string().contains(
            "Assertion Issuer: 'https://other'. Assertion Subject: 'system:serviceaccount:security:proxy'. \
             Assertion Audience: 'api://AzureADTokenExchange'."
        ));
        let wrong_audience = verify(
            &claims(ISSUER, "api://other", 2_000),
            ISSUER,
            SUBJECT,
            1_000,
        );
        assert_eq!(wrong_audience.map_err(|e| e.code()), Err(70021));
        let expired = verify(
            &claims(ISSUER, TOKEN_EXCHANGE_AUDIENCE, 1_000),
            ISSUER,
            SUBJECT,
            1_000,
        );
        assert_eq!(expired.map_err(|e| e.code()), Err(700024));
        assert_eq!(
            verify("not-a-jwt", ISSUER, SUBJECT, 1_000).map_err(|e| e.code()),
            Err(50027)
        );
    }

    #[tokio::test]
    async fn workload_identity_exchange_issues_an_app_token_and_records_the_jti() {
        use crate::test_support::{MDE_SCOPE, get_json, token_request};
        use crate::{Sim, SimClient, SimOptions};
        let client_id = "cccccccc-0000-4000-8000-000000000005";
        let options = SimOptions {
            clients: vec![SimClient::federated(client_id, ISSUER, SUBJECT)],
            ..SimOptions::default()
        };
        let sim = Sim::start(options).await.expect("sim");
        let now = crate::token::now_ms() as i64 / 1000;
        let sim = &sim;
        let request = |assertion: String| async move {
            let fields = [
                ("grant_type", "client_credentials"),
                ("client_id", client_id),
                (
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                ),
                ("client_assertion", assertion.as_str()),
                ("scope", MDE_SCOPE),
            ];
            token_request(sim, &fields).await
        };
        let good = federated_assertion(&json!({"iss": ISSUER, "sub": SUBJECT,
            "aud": [TOKEN_EXCHANGE_AUDIENCE], "exp": now + 3600, "jti": "sa-token-1"}));
        let (status, body) = request(good.clone()).await;
        assert_eq!(status, 200, "{body}");
        let token = body["access_token"].as_str().expect("access_token");
        let (_, me) = get_json(&format!("{}/_sim/whoami", sim.mde()), token).await;
        assert_eq!(
            (me["appid"].as_str(), me["idtyp"].as_str()),
            (Some(client_id), Some("app"))
        );
        // The same projected token is presented until the kubelet rotates it: no replay check.
        assert_eq!(request(good).await.0, 200);
        let expired = federated_assertion(&json!({"iss": ISSUER, "sub": SUBJECT,
            "aud": TOKEN_EXCHANGE_AUDIENCE, "exp": now - 5, "jti": "sa-token-0"}));
        let (status, body) = request(expired).await;
        assert_eq!(
            (status, body["error_codes"][0].as_u64()),
            (401, Some(700024))
        );
        let foreign =
            federated_assertion(&json!({"iss": ISSUER, "sub": "system:serviceaccount:x:y",
            "aud": TOKEN_EXCHANGE_AUDIENCE, "exp": now + 3600}));
        let (_, body) = request(foreign).await;
        assert_eq!(body["error_codes"][0].as_u64(), Some(70021));
        assert_eq!(
            sim.control().federated_assertions(),
            ["sa-token-1", "sa-token-1"]
        );
    }
}
