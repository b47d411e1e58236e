//! The public configuration of a `Sim`: tenants, app registrations, users, managed identities and legacy MDCA
//! API tokens, with defaults that let `SimOptions::default()` run every flow.

use std::time::Duration;

use crate::throttle::SimQuotas;

/// How a `Sim` behaves: its tenants, registered clients and users, and what the token endpoint issues.
#[derive(Debug, Clone)]
pub struct SimOptions {
    /// Home tenant GUID; the token endpoint also accepts `tenant_domain` in its path.
    pub tenant_id: String,
    /// Home tenant domain, e.g. "contoso.onmicrosoft.com" (matched case-insensitively).
    pub tenant_domain: String,
    /// Further tenants the simulated Entra issues tokens in (a partner app's customers:
    /// <https://learn.microsoft.com/en-us/defender-endpoint/api/exposed-apis-create-app-partners>). Every client and
    /// user is known in every tenant, as if consent had been granted; `SimControl::refuse_tenant` takes it away.
    pub customer_tenants: Vec<SimTenant>,
    /// The app registrations allowed to request tokens.
    pub clients: Vec<SimClient>,
    /// The users that can sign in with the delegated grants (device code, authorization code, password).
    pub users: Vec<SimUser>,
    /// Lifetime of issued tokens; `expires_in` is this in whole seconds, rounded down, at least 1.
    pub token_lifetime: Duration,
    /// When set, token responses carry `refresh_in` (whole seconds).
    pub refresh_in: Option<Duration>,
    /// When true, `expires_in`, `ext_expires_in` and `refresh_in` are JSON strings ("3599"), as v1 endpoints send.
    pub numbers_as_strings: bool,
    /// The `roles` claim of issued app tokens (client credentials and managed identities).
    pub roles: Vec<String>,
    /// Page size of OData lists when the request has no `$top`.
    pub page_size: usize,
    /// The `interval` the devicecode endpoint announces, in whole seconds (rounded down; 0 means "poll at once").
    pub device_code_interval: Duration,
    /// How long a device code stays redeemable; its `expires_in`, in whole seconds.
    pub device_code_lifetime: Duration,
    /// Client ids of user-assigned managed identities. The system-assigned identity, whose client id is
    /// `SimOptions::SYSTEM_IDENTITY_CLIENT_ID`, always exists.
    pub managed_identities: Vec<String>,
    /// The value App Service's `X-IDENTITY-HEADER` must carry (its `IDENTITY_HEADER`:
    /// <https://learn.microsoft.com/en-us/azure/app-service/overview-managed-identity>).
    pub identity_header: String,
    /// Legacy MDCA API tokens the MDCA server accepts as `Authorization: Token <key>`
    /// (<https://learn.microsoft.com/en-us/defender-cloud-apps/api-tokens-legacy>).
    pub mdca_api_tokens: Vec<String>,
    /// The APIs' quotas, counted per app and tenant as Microsoft counts them: Microsoft's own
    /// numbers by default (the simulator is never kinder than Microsoft); tests lower them to
    /// meet them quickly, and load tests of the proxy itself lift them.
    pub quotas: SimQuotas,
}

impl SimOptions {
    /// Client id of the system-assigned managed identity: the identity the managed-identity server answers for
    /// when a request names no `client_id`.
    pub const SYSTEM_IDENTITY_CLIENT_ID: &'static str = "8d3e6f2a-1c4b-4a7e-9f05-3b2d1e0c9a77";
}

impl Default for SimOptions {
    fn default() -> Self {
        Self {
            tenant_id: "6f1d0a52-8e2b-4c7a-9d3e-2a5b7c9e1f04".to_owned(),
            tenant_domain: "contoso.onmicrosoft.com".to_owned(),
            customer_tenants: Vec::new(),
            clients: vec![SimClient::secret(
                "11111111-2222-3333-4444-555555555555",
                "demo-secret",
            )],
            users: vec![SimUser {
                username: "analyst@contoso.onmicrosoft.com".to_owned(),
                password: "correct horse".to_owned(),
                scopes: ["Alert.Read", "Machine.Read", "SecurityAlert.Read.All"]
                    .map(str::to_owned)
                    .to_vec(),
            }],
            token_lifetime: Duration::from_secs(3599),
            refresh_in: None,
            numbers_as_strings: false,
            roles: [
                "Alert.Read.All",
                "Machine.Read.All",
                "Incident.Read.All",
                "SecurityAlert.Read.All",
            ]
            .map(str::to_owned)
            .to_vec(),
            page_size: 5,
            device_code_interval: Duration::from_secs(5),
            device_code_lifetime: Duration::from_secs(900),
            managed_identities: Vec::new(),
            identity_header: "sim-identity-header".to_owned(),
            mdca_api_tokens: Vec::new(),
            quotas: SimQuotas::MICROSOFT,
        }
    }
}

/// A tenant the simulated Entra issues tokens in.
#[derive(Debug, Clone)]
pub struct SimTenant {
    /// Tenant GUID: the `tid` of tokens issued in this tenant.
    pub id: String,
    /// Tenant domain, also accepted in the token endpoint's path (case-insensitively).
    pub domain: String,
}

/// A user that can sign in with the delegated grants.
#[derive(Clone)]
pub struct SimUser {
    /// The sign-in name (`upn` claim), matched case-insensitively.
    pub username: String,
    /// The password for the password grant (ROPC).
    pub password: String,
    /// Delegated permissions the user has consented to: the `scp` claim of the user's tokens, for any resource.
    pub scopes: Vec<String>,
}

impl std::fmt::Debug for SimUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimUser")
            .field("username", &self.username)
            .field("password", &"[redacted]")
            .field("scopes", &self.scopes)
            .finish()
    }
}

/// One app registration known to the simulated Entra.
#[derive(Debug, Clone)]
pub struct SimClient {
    /// Application (client) id.
    pub client_id: String,
    /// The credential the client must present.
    pub auth: SimClientAuth,
}

/// A client's credential.
#[derive(Clone)]
pub enum SimClientAuth {
    /// A client secret (sent as `client_secret` or with HTTP Basic).
    Secret(String),
    /// A certificate in PEM; only its CERTIFICATE block is used (the private key, if present, is ignored).
    Certificate(Vec<u8>),
    /// A public client: it has no credential and must not present one (AADSTS700025,
    /// <https://learn.microsoft.com/en-us/entra/identity-platform/reference-error-codes>). It may use the device code,
    /// authorization code (with PKCE), refresh token and password grants, not client credentials.
    Public,
    /// Workload identity federation (<https://azure.github.io/azure-workload-identity/docs/>): client credentials with
    /// a `client_assertion` JWT from another issuer whose `iss` and `sub` match these and whose `aud` is
    /// `api://AzureADTokenExchange`.
    Federated {
        /// The external issuer, e.g. a cluster's OIDC issuer URL.
        issuer: String,
        /// The subject, e.g. `system:serviceaccount:<namespace>:<service account>`.
        subject: String,
    },
}

impl std::fmt::Debug for SimClientAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Secret(_) => f.write_str("Secret([redacted])"),
            Self::Certificate(pem) => write!(f, "Certificate({} bytes of PEM)", pem.len()),
            Self::Public => f.write_str("Public"),
            Self::Federated { issuer, subject } => f
                .debug_struct("Federated")
                .field("issuer", issuer)
                .field("subject", subject)
                .finish(),
        }
    }
}

impl SimClient {
    /// A client that authenticates with a secret.
    pub fn secret(id: &str, secret: &str) -> Self {
        Self {
            client_id: id.to_owned(),
            auth: SimClientAuth::Secret(secret.to_owned()),
        }
    }

    /// A client that authenticates with a certificate (PEM with at least the CERTIFICATE block).
    pub fn certificate(id: &str, pem: &[u8]) -> Self {
        Self {
            client_id: id.to_owned(),
            auth: SimClientAuth::Certificate(pem.to_vec()),
        }
    }

    /// A public client (no credential), for the delegated grants.
    pub fn public(id: &str) -> Self {
        Self {
            client_id: id.to_owned(),
            auth: SimClientAuth::Public,
        }
    }

    /// A client with a federated credential for assertions from `issuer` about `subject`.
    pub fn federated(id: &str, issuer: &str, subject: &str) -> Self {
        Self {
            client_id: id.to_owned(),
            auth: SimClientAuth::Federated {
                issuer: issuer.to_owned(),
                subject: subject.to_owned(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_shows_a_password_or_secret() {
        let options = SimOptions::default();
        let text = format!("{options:?}");
        assert!(!text.contains("correct horse"), "{text}");
        assert!(!text.contains("demo-secret"), "{text}");
        assert!(text.contains("analyst@contoso.onmicrosoft.com"));
    }
}
