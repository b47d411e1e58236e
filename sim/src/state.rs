//! What the servers of one simulator share: the directory, the registered clients and managed
//! identities, the issued codes, the signing keys, the data set and the control switches.

use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::assertion::{RegisteredCertificate, ReplayGuard};
use crate::control::SimControl;
use crate::data::{self, Dataset};
use crate::directory::Directory;
use crate::options::{SimClient, SimClientAuth, SimOptions};
use crate::throttle::Throttle;
use crate::token::TokenKeys;

/// Everything the servers of one `Sim` share.
#[derive(Debug)]
pub(crate) struct SimState {
    pub(crate) directory: Arc<Directory>,
    /// Keyed by lower-case client id: Entra compares application ids case-insensitively.
    pub(crate) clients: HashMap<String, RegisteredClient>,
    /// Keys the MDCA server accepts with the `Token` scheme.
    pub(crate) mdca_api_tokens: Vec<String>,
    pub(crate) device_code_interval: Duration,
    pub(crate) device_code_lifetime: Duration,
    pub(crate) auth_codes: AuthCodes,
    /// Keyed by lower-case client id; includes the system-assigned identity.
    pub(crate) managed_identities: HashMap<String, ManagedIdentity>,
    pub(crate) identity_header: String,
    pub(crate) refresh_in: Option<Duration>,
    pub(crate) numbers_as_strings: bool,
    pub(crate) roles: Vec<String>,
    pub(crate) page_size: usize,
    pub(crate) keys: TokenKeys,
    pub(crate) replay: ReplayGuard,
    pub(crate) control: Arc<SimControl>,
    pub(crate) authority: String,
    pub(crate) data: Dataset,
    /// The APIs' quotas and what each app and tenant has spent of them.
    pub(crate) throttle: Throttle,
}

#[derive(Debug)]
pub(crate) struct RegisteredClient {
    pub(crate) client_id: String,
    /// Stable object id of the client's service principal (the `oid` claim).
    pub(crate) oid: String,
    pub(crate) credential: Credential,
}

pub(crate) enum Credential {
    Secret(String),
    Certificate(RegisteredCertificate),
    Public,
    Federated { issuer: String, subject: String },
}

impl Credential {
    /// The `appidacr` claim: how the client authenticated (0 public, 1 secret, 2 certificate or assertion;
    /// <https://learn.microsoft.com/en-us/entra/identity-platform/access-token-claims-reference>).
    pub(crate) fn appidacr(&self) -> &'static str {
        match self {
            Self::Public => "0",
            Self::Secret(_) => "1",
            Self::Certificate(_) | Self::Federated { .. } => "2",
        }
    }
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Secret(_) => f.write_str("Secret([redacted])"),
            Self::Certificate(cert) => cert.fmt(f),
            Self::Public => f.write_str("Public"),
            Self::Federated { issuer, subject } => f
                .debug_struct("Federated")
                .field("issuer", issuer)
                .field("subject", subject)
                .finish(),
        }
    }
}

pub(crate) fn register(clients: Vec<SimClient>) -> io::Result<HashMap<String, RegisteredClient>> {
    clients
        .into_iter()
        .map(|client| {
            let credential = match client.auth {
                SimClientAuth::Secret(secret) => Credential::Secret(secret),
                SimClientAuth::Certificate(pem) => Credential::Certificate(
                    RegisteredCertificate::from_pem(&pem)
                        .map_err(|err| io::Error::new(io::ErrorKind::InvalidInput, err))?,
                ),
                SimClientAuth::Public => Credential::Public,
                SimClientAuth::Federated { issuer, subject } => {
                    Credential::Federated { issuer, subject }
                }
            };
            let oid = data::stable_uuid(&format!(
                "service-principal-{}",
                client.client_id.to_ascii_lowercase()
            ));
            let registered = RegisteredClient {
                oid,
                client_id: client.client_id,
                credential,
            };
            Ok((registered.client_id.to_ascii_lowercase(), registered))
        })
        .collect()
}

/// Authorization codes handed out, until redeemed (a redeemed code stays, to answer its reuse with 54005).
#[derive(Debug, Default)]
pub(crate) struct AuthCodes {
    pub(crate) codes: Mutex<HashMap<String, AuthCode>>,
}

#[derive(Debug)]
pub(crate) struct AuthCode {
    pub(crate) client_key: String,
    pub(crate) tenant_id: String,
    pub(crate) redirect_uri: String,
    /// The S256 `code_challenge`, when the client sent one.
    pub(crate) challenge: Option<String>,
    pub(crate) scope: String,
    pub(crate) username: String,
    pub(crate) issued_ms: u64,
    pub(crate) redeemed: bool,
}

/// One managed identity: its client id and the object id of its service principal.
#[derive(Debug)]
pub(crate) struct ManagedIdentity {
    pub(crate) client_id: String,
    pub(crate) oid: String,
}

/// The system-assigned identity and the user-assigned ones, keyed by lower-case client id.
pub(crate) fn register_identities(user_assigned: &[String]) -> HashMap<String, ManagedIdentity> {
    std::iter::once(SimOptions::SYSTEM_IDENTITY_CLIENT_ID)
        .chain(user_assigned.iter().map(String::as_str))
        .map(|client_id| {
            let key = client_id.to_ascii_lowercase();
            let identity = ManagedIdentity {
                client_id: client_id.to_owned(),
                oid: data::stable_uuid(&format!("managed-identity-{key}")),
            };
            (key, identity)
        })
        .collect()
}
