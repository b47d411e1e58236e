//! Credentials: the identities the proxy authenticates to Entra ID as, and what each contributes to a
//! token request (the client id and a secret or a signed certificate assertion).

mod certificate;

use std::sync::Arc;

pub use certificate::{AssertionAlgorithm, Certificate, CertificateError};

use crate::secret::Secret;

/// A named credential from the config (`[credentials.NAME]`).
#[derive(Debug)]
pub struct Credential {
    /// The name routes refer to it by.
    pub name: Arc<str>,
    /// The tenant the app signs in to (GUID or verified domain).
    pub tenant: Arc<str>,
    /// The application (client) id.
    pub client_id: String,
    /// How the app proves its identity.
    pub auth: ClientAuth,
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
