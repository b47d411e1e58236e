//! Certificate credentials: the PEM file with an app's certificate and private key, and the signed
//! client assertion JWT that proves possession of the key in a token request.
//!
//! The assertion follows Microsoft's "Microsoft identity platform application authentication
//! certificate credentials" page
//! (<https://learn.microsoft.com/en-us/entra/identity-platform/certificate-credentials>):
//! `aud` is the token endpoint, `iss` = `sub` = the client id, a unique `jti`, `nbf`/`iat` now, a
//! short `exp`, and the certificate's SHA-256 thumbprint in the `x5t#S256` header. PS256 is what
//! that page asks for; RS256 with `x5t` (SHA-1) is what MSAL sends when it only has a SHA-1
//! thumbprint, kept for identity providers that need it.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};
use sha1::Sha1;
use sha2::{Digest, Sha256};

use crate::secret::Secret;

/// How long a client assertion is valid. Microsoft: "keep it short - 5-10 minutes after nbf at most".
const ASSERTION_LIFETIME: Duration = Duration::from_secs(5 * 60);

/// The signature algorithm of client assertions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize)]
pub enum AssertionAlgorithm {
    /// RSASSA-PSS with SHA-256, which Microsoft's current documentation asks for.
    #[default]
    PS256,
    /// RSASSA-PKCS1-v1_5 with SHA-256, as older MSAL versions send.
    RS256,
}

/// Why a certificate file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CertificateError {
    /// The file is not PEM.
    #[error("not a PEM file")]
    NotPem(#[source] pem::PemError),
    /// No `CERTIFICATE` block.
    #[error("no CERTIFICATE block: the file must hold the certificate and its private key")]
    NoCertificate,
    /// No private key block.
    #[error(
        "no PRIVATE KEY or RSA PRIVATE KEY block: the file must hold the certificate and its private key"
    )]
    NoPrivateKey,
    /// The key is encrypted.
    #[error("the private key is encrypted; give an unencrypted key (protect the file instead)")]
    EncryptedKey,
    /// The key is not an RSA key Entra accepts.
    #[error("the private key is not a usable RSA key")]
    BadKey(#[source] jsonwebtoken::errors::Error),
}

/// A loaded certificate credential: the signing key and the certificate's thumbprints.
#[derive(Clone)]
pub struct Certificate {
    key: EncodingKey,
    algorithm: AssertionAlgorithm,
    x5t_s256: String,
    x5t: String,
}

impl fmt::Debug for Certificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Certificate")
            .field("algorithm", &self.algorithm)
            .field("x5t#S256", &self.x5t_s256)
            .field("key", &"[redacted]")
            .finish()
    }
}

#[derive(Serialize)]
struct AssertionClaims<'a> {
    aud: &'a str,
    iss: &'a str,
    sub: &'a str,
    jti: String,
    nbf: u64,
    iat: u64,
    exp: u64,
}

impl Certificate {
    /// Loads the certificate (its first `CERTIFICATE` block) and the RSA private key (PKCS#8 or
    /// PKCS#1) from one PEM document.
    pub fn from_pem(
        pem_text: &[u8],
        algorithm: AssertionAlgorithm,
    ) -> Result<Self, CertificateError> {
        let blocks = pem::parse_many(pem_text).map_err(CertificateError::NotPem)?;
        let cert = blocks
            .iter()
            .find(|b| b.tag() == "CERTIFICATE")
            .ok_or(CertificateError::NoCertificate)?;
        if blocks.iter().any(|b| b.tag() == "ENCRYPTED PRIVATE KEY") {
            return Err(CertificateError::EncryptedKey);
        }
        let key_block = blocks
            .iter()
            .find(|b| matches!(b.tag(), "PRIVATE KEY" | "RSA PRIVATE KEY"))
            .ok_or(CertificateError::NoPrivateKey)?;
        let key = EncodingKey::from_rsa_pem(pem::encode(key_block).as_bytes())
            .map_err(CertificateError::BadKey)?;
        let certificate = Self {
            key,
            algorithm,
            x5t_s256: URL_SAFE_NO_PAD.encode(Sha256::digest(cert.contents())),
            x5t: URL_SAFE_NO_PAD.encode(Sha1::digest(cert.contents())),
        };
        // Sign once now so that a key that does not match RSA's requirements fails at start-up,
        // not on the first request.
        certificate
            .assertion("start-up-check", "https://localhost/")
            .map_err(CertificateError::BadKey)?;
        Ok(certificate)
    }

    /// What identifies this certificate credential: the certificate and the algorithm (the key
    /// must match the certificate, so it adds nothing).
    pub(crate) fn fingerprint_material(&self) -> (&str, AssertionAlgorithm) {
        (&self.x5t_s256, self.algorithm)
    }

    /// Signs a fresh client assertion for `client_id` addressed to the token endpoint `audience`.
    pub fn assertion(
        &self,
        client_id: &str,
        audience: &str,
    ) -> Result<Secret, jsonwebtoken::errors::Error> {
        let mut header = Header::new(match self.algorithm {
            AssertionAlgorithm::PS256 => Algorithm::PS256,
            AssertionAlgorithm::RS256 => Algorithm::RS256,
        });
        header.x5t_s256 = Some(self.x5t_s256.clone());
        if self.algorithm == AssertionAlgorithm::RS256 {
            header.x5t = Some(self.x5t.clone());
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let claims = AssertionClaims {
            aud: audience,
            iss: client_id,
            sub: client_id,
            jti: uuid::Uuid::new_v4().to_string(),
            nbf: now,
            iat: now,
            exp: now + ASSERTION_LIFETIME.as_secs(),
        };
        jsonwebtoken::encode(&header, &claims, &self.key).map(Secret::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{DecodingKey, Validation};

    const PKCS8: &[u8] = include_bytes!("../../tests/fixtures/app-cert.pem");
    const PKCS1: &[u8] = include_bytes!("../../tests/fixtures/app-cert-pkcs1.pem");
    const CERT_ONLY: &[u8] = include_bytes!("../../tests/fixtures/cert.pem");

    #[derive(Deserialize)]
    struct Claims {
        aud: String,
        iss: String,
        sub: String,
        jti: String,
        nbf: u64,
        exp: u64,
    }

    fn verify(token: &str, alg: Algorithm) -> (Header, Claims) {
        let key = DecodingKey::from_rsa_pem(CERT_ONLY).unwrap();
        let mut validation = Validation::new(alg);
        validation.set_audience(&["https://login.example/t/oauth2/v2.0/token"]);
        let data = jsonwebtoken::decode::<Claims>(token, &key, &validation).unwrap();
        (data.header, data.claims)
    }

    #[test]
    fn assertion_carries_the_claims_entra_requires_and_verifies_with_the_certificate() {
        let cert = Certificate::from_pem(PKCS8, AssertionAlgorithm::PS256).unwrap();
        let aud = "https://login.example/t/oauth2/v2.0/token";
        let first = cert.assertion("client-1", aud).unwrap();
        let (header, claims) = verify(first.expose(), Algorithm::PS256);
        assert_eq!(header.alg, Algorithm::PS256);
        assert_eq!(
            header.x5t_s256.as_deref(),
            // sha256 of tests/fixtures/cert.pem's DER, base64url without padding
            Some(
                URL_SAFE_NO_PAD
                    .encode(hex(
                        "efd7d8b976e76bf466aff59e259d66b460700a2af7d3ed3bf3efbfee2de548d9"
                    ))
                    .as_str()
            )
        );
        assert_eq!(
            (claims.aud.as_str(), claims.iss.as_str()),
            (aud, "client-1")
        );
        assert_eq!(claims.sub, "client-1");
        assert!(claims.exp > claims.nbf && claims.exp - claims.nbf <= 600);
        let (_, second) = verify(
            cert.assertion("client-1", aud).unwrap().expose(),
            Algorithm::PS256,
        );
        assert_ne!(claims.jti, second.jti, "every assertion has its own jti");
    }

    #[test]
    fn rs256_assertions_also_carry_the_sha1_thumbprint() {
        let cert = Certificate::from_pem(PKCS1, AssertionAlgorithm::RS256).unwrap();
        let token = cert
            .assertion("c", "https://login.example/t/oauth2/v2.0/token")
            .unwrap();
        let (header, _) = verify(token.expose(), Algorithm::RS256);
        assert!(header.x5t.is_some() && header.x5t_s256.is_some());
    }

    #[test]
    fn a_pem_without_key_or_certificate_is_refused_with_a_reason() {
        let no_key = Certificate::from_pem(CERT_ONLY, AssertionAlgorithm::PS256).unwrap_err();
        assert!(matches!(no_key, CertificateError::NoPrivateKey));
        let key_only: Vec<u8> = PKCS8
            .split(|b| *b == b'\n')
            .skip_while(|l| !l.starts_with(b"-----BEGIN PRIVATE KEY"))
            .flat_map(|l| l.iter().copied().chain([b'\n']))
            .collect();
        let no_cert = Certificate::from_pem(&key_only, AssertionAlgorithm::PS256).unwrap_err();
        assert!(matches!(no_cert, CertificateError::NoCertificate));
    }

    #[test]
    fn certificate_debug_hides_the_key() {
        let cert = Certificate::from_pem(PKCS8, AssertionAlgorithm::PS256).unwrap();
        assert!(format!("{cert:?}").contains("[redacted]"));
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }
}
