//! Credentials: the identities the proxy authenticates to Entra ID as, and what each contributes to a
//! token request (the client id and a secret or a signed certificate assertion).

mod certificate;

use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::{Arc, LazyLock};

pub use certificate::{AssertionAlgorithm, Certificate, CertificateError};

use crate::secret::Secret;

/// A named credential from the config (`[credentials.NAME]`).
#[derive(Debug)]
pub struct Credential {
    /// The name routes refer to it by.
    pub name: Arc<str>,
    /// The Entra authority it signs in at, such as `https://login.microsoftonline.com` (no
    /// trailing slash).
    pub authority: Arc<str>,
    /// The tenant the app signs in to (GUID or verified domain).
    pub tenant: Arc<str>,
    /// The application (client) id.
    pub client_id: String,
    /// How the app proves its identity.
    pub auth: ClientAuth,
    /// Identifies this exact credential (authority, tenant, client id, secret or certificate) within
    /// this process, so that tokens minted from a credential that has since changed are never used.
    pub fingerprint: u64,
}

/// Keys the fingerprint hash per process: a fingerprint is meaningless outside it, so it reveals
/// nothing about the secret it covers.
static FINGERPRINT_KEYS: LazyLock<std::collections::hash_map::RandomState> =
    LazyLock::new(std::collections::hash_map::RandomState::new);

impl Credential {
    /// A credential; its fingerprint is computed here.
    pub fn new(
        name: &str,
        authority: &str,
        tenant: &str,
        client_id: String,
        auth: ClientAuth,
    ) -> Self {
        let mut hasher = FINGERPRINT_KEYS.build_hasher();
        (authority, tenant, &client_id).hash(&mut hasher);
        match &auth {
            ClientAuth::Secret(secret) => ("secret", secret.expose()).hash(&mut hasher),
            ClientAuth::Certificate(cert) => {
                ("certificate", cert.fingerprint_material()).hash(&mut hasher)
            }
        }
        Self {
            name: name.into(),
            authority: authority.trim_end_matches('/').into(),
            tenant: tenant.into(),
            client_id,
            auth,
            fingerprint: hasher.finish(),
        }
    }
}

/// How an application authenticates in the client credentials grant (protocol.md 2.2 and 2.3).
#[derive(Debug)]
pub enum ClientAuth {
    /// A client secret, sent as `client_secret`.
    Secret(Secret),
    /// A certificate, proven by a signed `client_assertion`.
    Certificate(Certificate),
}

impl ClientAuth {
    /// The credential type as written in the config, for messages and status output.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Secret(_) => "client_secret",
            Self::Certificate(_) => "client_certificate",
        }
    }
}
