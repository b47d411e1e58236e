//! Certificate credentials: parsing a registered certificate and verifying client assertions (RFC 7523) the way
//! Entra does, including replay protection on `jti`.
//!
//! Codes for the cases Entra's reference leaves open: a wrong `aud` and a replayed `jti` both answer AADSTS50013
//! ("InvalidAssertion"), and an `iss`/`sub` that is not the client id answers AADSTS700021.

use std::collections::HashMap;
use std::sync::Mutex;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use sha1::Sha1;
use sha2::{Digest, Sha256};

use super::sync::lock;

/// Entra accepts five minutes of clock skew.
const CLOCK_SKEW_SECS: i64 = 300;
/// Entra's documented maximum assertion lifetime ("5-10 minutes after nbf at most").
const MAX_LIFETIME_SECS: i64 = 600;

/// Why a registered certificate could not be used.
#[derive(Debug, thiserror::Error)]
pub(super) enum CertificateError {
    #[error("the PEM has no CERTIFICATE block")]
    NoCertificateBlock,
    #[error("the PEM is not valid")]
    InvalidPem(#[source] pem::PemError),
    #[error("the certificate does not hold a usable RSA public key")]
    UnsupportedKey(#[source] jsonwebtoken::errors::Error),
}

/// A client's certificate: both thumbprints Entra matches on, and the key that verifies assertions.
pub(super) struct RegisteredCertificate {
    x5t: String,
    x5t_s256: String,
    key: DecodingKey,
}

impl std::fmt::Debug for RegisteredCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegisteredCertificate")
            .field("x5t#S256", &self.x5t_s256)
            .finish_non_exhaustive()
    }
}

impl RegisteredCertificate {
    /// Reads the first CERTIFICATE block of a PEM (other blocks, such as the private key, are ignored).
    pub(super) fn from_pem(pem: &[u8]) -> Result<Self, CertificateError> {
        let blocks = pem::parse_many(pem).map_err(CertificateError::InvalidPem)?;
        let certificate = blocks
            .iter()
            .find(|block| block.tag() == "CERTIFICATE")
            .ok_or(CertificateError::NoCertificateBlock)?;
        let der = certificate.contents();
        let key = DecodingKey::from_rsa_pem(pem::encode(certificate).as_bytes())
            .map_err(CertificateError::UnsupportedKey)?;
        Ok(Self {
            x5t: URL_SAFE_NO_PAD.encode(Sha1::digest(der)),
            x5t_s256: URL_SAFE_NO_PAD.encode(Sha256::digest(der)),
            key,
        })
    }
}

/// Why an assertion was refused; the message is the Entra description.
#[derive(Debug, thiserror::Error)]
pub(super) enum AssertionRejection {
    #[error("Invalid JWT token. The token is malformed.")]
    Malformed,
    #[error("Client assertion failed signature validation. The algorithm must be RS256 or PS256.")]
    UnsupportedAlgorithm,
    #[error(
        "Client assertion failed signature validation. No certificate matches the thumbprint in the token header."
    )]
    UnknownThumbprint,
    #[error("Client assertion failed signature validation.")]
    BadSignature,
    #[error("Client assertion application identifier doesn't match 'client_id' parameter.")]
    ClientMismatch,
    #[error(
        "Assertion audience claim does not match the required value. The expected audience is '{expected}'."
    )]
    WrongAudience { expected: String },
    #[error("Client assertion is not within its valid time range.")]
    OutsideValidRange,
    #[error("Assertion is invalid: the 'jti' claim is missing or has already been used.")]
    Replayed,
}

impl AssertionRejection {
    /// The AADSTS code Entra answers with.
    pub(super) fn code(&self) -> u32 {
        match self {
            Self::Malformed => 50027,
            Self::UnsupportedAlgorithm | Self::UnknownThumbprint | Self::BadSignature => 700027,
            Self::ClientMismatch => 700021,
            Self::WrongAudience { .. } | Self::Replayed => 50013,
            Self::OutsideValidRange => 700024,
        }
    }
}

/// Claims Entra looks at; `aud` may be a string or an array.
#[derive(Deserialize)]
struct AssertionClaims {
    aud: Option<serde_json::Value>,
    iss: Option<String>,
    sub: Option<String>,
    jti: Option<String>,
    exp: Option<i64>,
    nbf: Option<i64>,
    iat: Option<i64>,
}

/// `jti` values already accepted, with the assertion's `exp`. Entries are dropped once that assertion would be
/// refused as expired anyway, which keeps the set bounded by the request rate.
#[derive(Debug, Default)]
pub(super) struct ReplayGuard {
    seen: Mutex<HashMap<String, i64>>,
}

impl ReplayGuard {
    /// Records `jti`; false if it was already seen.
    fn first_use(&self, jti: &str, exp: i64, now: i64) -> bool {
        let mut seen = lock(&self.seen);
        seen.retain(|_, seen_exp| *seen_exp + CLOCK_SKEW_SECS >= now);
        seen.insert(jti.to_owned(), exp).is_none()
    }
}

/// Verifies a client assertion for `client_id` against `expected_aud` (the token endpoint URL) at unix time `now`.
pub(super) fn verify(
    assertion: &str,
    certificate: &RegisteredCertificate,
    client_id: &str,
    expected_aud: &str,
    replay: &ReplayGuard,
    now: i64,
) -> Result<(), AssertionRejection> {
    let header =
        jsonwebtoken::decode_header(assertion).map_err(|_| AssertionRejection::Malformed)?;
    if !matches!(header.alg, Algorithm::RS256 | Algorithm::PS256) {
        return Err(AssertionRejection::UnsupportedAlgorithm);
    }
    let thumbprint_matches = header.x5t_s256.as_deref() == Some(certificate.x5t_s256.as_str())
        || header.x5t.as_deref() == Some(certificate.x5t.as_str());
    if !thumbprint_matches {
        return Err(AssertionRejection::UnknownThumbprint);
    }
    let mut validation = Validation::new(header.alg);
    // Only the signature here; each claim failure below has its own AADSTS code.
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    let claims =
        match jsonwebtoken::decode::<AssertionClaims>(assertion, &certificate.key, &validation) {
            Ok(data) => data.claims,
            Err(err)
                if matches!(
                    err.kind(),
                    jsonwebtoken::errors::ErrorKind::InvalidSignature
                ) =>
            {
                return Err(AssertionRejection::BadSignature);
            }
            Err(_) => return Err(AssertionRejection::Malformed),
        };
    if claims.iss.as_deref() != Some(client_id) || claims.sub.as_deref() != Some(client_id) {
        return Err(AssertionRejection::ClientMismatch);
    }
    let aud_matches = match &claims.aud {
        Some(serde_json::Value::String(aud)) => aud == expected_aud,
        Some(serde_json::Value::Array(auds)) => {
            auds.iter().any(|a| a.as_str() == Some(expected_aud))
        }
        _ => false,
    };
    if !aud_matches {
        return Err(AssertionRejection::WrongAudience {
            expected: expected_aud.to_owned(),
        });
    }
    let exp = claims.exp.ok_or(AssertionRejection::OutsideValidRange)?;
    let start = claims.nbf.or(claims.iat).unwrap_or(now);
    let in_range = exp + CLOCK_SKEW_SECS > now
        && start - CLOCK_SKEW_SECS <= now
        && exp - start <= MAX_LIFETIME_SECS + CLOCK_SKEW_SECS;
    if !in_range {
        return Err(AssertionRejection::OutsideValidRange);
    }
    let jti = claims
        .jti
        .filter(|j| !j.is_empty())
        .ok_or(AssertionRejection::Replayed)?;
    if !replay.first_use(&jti, exp, now) {
        return Err(AssertionRejection::Replayed);
    }
    Ok(())
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header};
    use serde_json::json;

    /// The test certificate and its PKCS#8 key (the repository's tests/fixtures/app-cert.pem).
    pub(crate) fn fixture() -> Vec<u8> {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/fixtures/app-cert.pem"
        );
        std::fs::read(path).expect("read tests/fixtures/app-cert.pem")
    }

    /// A PS256 assertion with `x5t#S256`, as MSAL builds it.
    pub(crate) fn assertion(
        pem: &[u8],
        client_id: &str,
        aud: &str,
        jti: &str,
        exp_in: i64,
    ) -> String {
        let text = String::from_utf8_lossy(pem);
        let key_pem = &text[text
            .find("-----BEGIN PRIVATE KEY-----")
            .expect("private key block")..];
        let key = EncodingKey::from_rsa_pem(key_pem.as_bytes()).expect("rsa key");
        let cert = RegisteredCertificate::from_pem(pem).expect("certificate");
        let mut header = Header::new(Algorithm::PS256);
        header.x5t_s256 = Some(cert.x5t_s256);
        let now = crate::token::now_ms() as i64 / 1000;
        let claims = json!({"aud": aud, "iss": client_id, "sub": client_id, "jti": jti,
                            "nbf": now, "iat": now, "exp": now + exp_in});
        jsonwebtoken::encode(&header, &claims, &key).expect("sign assertion")
    }

    fn check(token: &str) -> Result<(), AssertionRejection> {
        let cert = RegisteredCertificate::from_pem(&fixture()).expect("certificate");
        let now = crate::token::now_ms() as i64 / 1000;
        verify(
            token,
            &cert,
            "app",
            "http://sts/t/oauth2/v2.0/token",
            &ReplayGuard::default(),
            now,
        )
    }

    #[test]
    fn certificate_thumbprint_is_the_base64url_sha256_of_the_der() {
        let cert = RegisteredCertificate::from_pem(&fixture()).expect("certificate");
        // openssl x509 -fingerprint -sha256 of the fixture, base64url without padding.
        assert_eq!(cert.x5t_s256, "79fYuXbna_Rmr_WeJZ1mtGBwCir30-078--_7i3lSNk");
    }

    #[test]
    fn assertion_claims_are_checked_one_by_one() {
        let pem = fixture();
        let aud = "http://sts/t/oauth2/v2.0/token";
        assert!(check(&assertion(&pem, "app", aud, "j1", 300)).is_ok());
        assert_eq!(
            check(&assertion(&pem, "other", aud, "j", 300)).map_err(|e| e.code()),
            Err(700021)
        );
        assert_eq!(
            check(&assertion(&pem, "app", "http://x", "j", 300)).map_err(|e| e.code()),
            Err(50013)
        );
        assert_eq!(
            check(&assertion(&pem, "app", aud, "j", 3_600)).map_err(|e| e.code()),
            Err(700024)
        );
        assert_eq!(
            check(&assertion(&pem, "app", aud, "j", -400)).map_err(|e| e.code()),
            Err(700024)
        );
        assert_eq!(check("not-a-jwt").map_err(|e| e.code()), Err(50027));
        let mut tampered = assertion(&pem, "app", aud, "j", 300);
        tampered.push('A');
        assert_eq!(check(&tampered).map_err(|e| e.code()), Err(700027));
    }
}
