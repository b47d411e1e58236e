//! Credentials: the identities the proxy gets tokens as, one type per way in (application, user,
//! partner, legacy API token, workload and managed identity), and what each contributes to a token
//! request.

mod certificate;

use std::hash::{BuildHasher, Hash, Hasher};
use std::path::PathBuf;
use std::sync::{Arc, LazyLock};

pub(crate) use certificate::{AssertionAlgorithm, Certificate};

use crate::secret::Secret;
use crate::state::TokenFile;

/// A named credential from the config (`[credentials.NAME]`).
#[derive(Debug)]
pub struct Credential {
    /// The name routes refer to it by.
    pub name: Arc<str>,
    /// The Entra authority it signs in at, such as `https://login.microsoftonline.com` (no
    /// trailing slash).
    pub authority: Arc<str>,
    /// The tenants it gets tokens in (GUIDs or domains, lower case): one, or a partner app's
    /// customer tenants. Empty for a managed identity or a legacy API token, which have none.
    pub tenants: Vec<Arc<str>>,
    /// Whether the tenant is chosen per request among `tenants` (partner context).
    pub partner: bool,
    /// The application (client) id; empty for a system-assigned managed identity or an API token.
    pub client_id: String,
    /// How it proves its identity.
    pub auth: ClientAuth,
    /// Identifies this exact credential (authority, tenants, client id, secret or certificate)
    /// within this process, so that tokens minted from a credential that has since changed are
    /// never used.
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
        tenants: Vec<String>,
        partner: bool,
        client_id: String,
        auth: ClientAuth,
    ) -> Self {
        let tenants: Vec<Arc<str>> = tenants
            .into_iter()
            .map(|t| t.to_ascii_lowercase().into())
            .collect();
        let authority = authority.trim_end_matches('/');
        let mut hasher = FINGERPRINT_KEYS.build_hasher();
        (authority, &tenants, &client_id).hash(&mut hasher);
        auth.hash_material(&mut hasher);
        Self {
            name: name.into(),
            authority: authority.into(),
            tenants,
            partner,
            client_id,
            auth,
            fingerprint: hasher.finish(),
        }
    }

    /// The tenant of a credential that has one (the first of a partner's); empty otherwise.
    pub fn home_tenant(&self) -> Arc<str> {
        self.tenants.first().cloned().unwrap_or_else(|| "".into())
    }

    /// The listed tenant equal to `tenant` (case-insensitively), if any.
    pub fn tenant(&self, tenant: &str) -> Option<&Arc<str>> {
        self.tenants.iter().find(|t| t.eq_ignore_ascii_case(tenant))
    }

    /// The link a customer's administrator opens to consent to this app in their tenant: the v2
    /// admin consent endpoint with the `/.default` scope of the app's permissions
    /// (<https://learn.microsoft.com/en-us/entra/identity-platform/v2-admin-consent>).
    pub fn consent_url(
        &self,
        tenant: &str,
        scope: &str,
        redirect_uri: &str,
    ) -> Result<url::Url, url::ParseError> {
        let mut url = url::Url::parse(&format!("{}/{tenant}/v2.0/adminconsent", self.authority))?;
        url.query_pairs_mut()
            .append_pair("client_id", &self.client_id)
            .append_pair("scope", scope)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("state", &uuid::Uuid::new_v4().simple().to_string());
        Ok(url)
    }
}

/// How a credential proves its identity, one variant per `type` in the config.
#[derive(Debug)]
pub enum ClientAuth {
    /// Application context: a client secret, sent as `client_secret`
    /// (<https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-client-creds-grant-flow>).
    Secret(Secret),
    /// Application context: a certificate, proven by a signed `client_assertion`
    /// (<https://learn.microsoft.com/en-us/entra/identity-platform/certificate-credentials>).
    Certificate(Certificate),
    /// User context: a public client whose user signed in with `login` (device code or browser);
    /// tokens come from the stored refresh token
    /// (<https://learn.microsoft.com/en-us/entra/identity-platform/refresh-tokens>).
    User(TokenFile),
    /// User context with the resource-owner password grant (no MFA, deprecated;
    /// <https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth-ropc>).
    Password {
        /// The user's sign-in name.
        username: String,
        /// The user's password.
        password: Secret,
    },
    /// The legacy Defender for Cloud Apps API token, sent as `Authorization: Token <key>`.
    ApiToken(Secret),
    /// Kubernetes workload identity: the projected service account token in `token_file` is the
    /// client assertion, read again for every token request
    /// (<https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-client-creds-grant-flow>).
    WorkloadIdentity {
        /// The projected token's path.
        token_file: PathBuf,
    },
    /// An Azure managed identity, through IMDS or App Service's identity endpoint
    /// (<https://learn.microsoft.com/en-us/entra/identity/managed-identities-azure-resources/how-to-use-vm-token>,
    /// <https://learn.microsoft.com/en-us/azure/app-service/overview-managed-identity>).
    ManagedIdentity(ManagedIdentity),
}

/// Where a managed identity's tokens come from.
#[derive(Debug, Clone)]
pub enum ManagedIdentity {
    /// The instance metadata service (`Metadata: true`, api-version 2018-02-01).
    Imds {
        /// Its token URL.
        endpoint: url::Url,
    },
    /// App Service, Functions and Container Apps (`X-IDENTITY-HEADER`, api-version 2019-08-01).
    AppService {
        /// IDENTITY_ENDPOINT.
        endpoint: url::Url,
        /// IDENTITY_HEADER.
        header: Secret,
    },
}

impl ManagedIdentity {
    /// The endpoint in words, for messages (the URL carries no secret: the header is apart).
    pub(crate) fn describe(&self) -> String {
        match self {
            Self::Imds { endpoint } => {
                format!(
                    "the Azure instance metadata service (IMDS, managed identity) at {endpoint}"
                )
            }
            Self::AppService { endpoint, .. } => {
                format!("App Service's managed identity endpoint {endpoint}")
            }
        }
    }
}

impl ClientAuth {
    /// The credential type as written in the config, for messages and status output.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Secret(_) => "client_secret",
            Self::Certificate(_) => "client_certificate",
            Self::User(_) => "device_code",
            Self::Password { .. } => "password",
            Self::ApiToken(_) => "api_token",
            Self::WorkloadIdentity { .. } => "workload_identity",
            Self::ManagedIdentity(_) => "managed_identity",
        }
    }

    fn hash_material(&self, hasher: &mut impl Hasher) {
        self.kind().hash(hasher);
        match self {
            Self::Secret(secret) | Self::ApiToken(secret) => secret.expose().hash(hasher),
            Self::Certificate(cert) => cert.fingerprint_material().hash(hasher),
            Self::User(file) => file.path().hash(hasher),
            Self::Password { username, password } => (username, password.expose()).hash(hasher),
            Self::WorkloadIdentity { token_file } => token_file.hash(hasher),
            Self::ManagedIdentity(ManagedIdentity::Imds { endpoint }) => {
                endpoint.as_str().hash(hasher)
            }
            Self::ManagedIdentity(ManagedIdentity::AppService { endpoint, header }) => {
                (endpoint.as_str(), header.expose()).hash(hasher)
            }
        }
    }
}
