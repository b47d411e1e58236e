//! The token request each credential type makes: client credentials (secret, certificate or
//! federated token), the refresh token of a signed-in user, the password grant, a managed identity
//! endpoint; and the interactive sign-in requests `login` drives (device code, authorization code
//! with PKCE).

use std::time::Duration;

use serde::Deserialize;

use super::entra::{Proof, refusal};
use super::{EntraClient, TokenError, TokenResponse, token_endpoint};
use crate::credential::{ClientAuth, Credential, ManagedIdentity};
use crate::secret::Secret;
use crate::state::{TokenFile, token_hash};

/// Asked for with every user token, so that Entra returns a refresh token
/// (<https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-auth-code-flow>).
const OFFLINE_ACCESS: &str = "offline_access";
/// RFC 8628's grant type.
const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// RFC 8628 section 3.2: "If no value is provided, clients MUST use 5 as the default."
const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(5);
/// Entra's default device code lifetime
/// (<https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-device-code>).
const DEFAULT_DEVICE_CODE_LIFETIME: Duration = Duration::from_secs(15 * 60);

/// The scopes of a user sign-in for `scope`.
pub(crate) fn user_scope(scope: &str) -> String {
    format!("{scope} {OFFLINE_ACCESS}")
}

impl EntraClient {
    /// A token for `scope` in `tenant` with `credential`, by whatever grant its type uses.
    pub(crate) async fn acquire(
        &self,
        credential: &Credential,
        tenant: &str,
        scope: &str,
    ) -> Result<TokenResponse, TokenError> {
        let client_id = credential.client_id.as_str();
        match &credential.auth {
            ClientAuth::Secret(secret) => {
                self.client_credentials(credential, tenant, scope, Proof::Secret(secret))
                    .await
            }
            ClientAuth::Certificate(cert) => {
                self.client_credentials(credential, tenant, scope, Proof::Certificate(cert))
                    .await
            }
            ClientAuth::WorkloadIdentity { token_file } => {
                // Read for every request: the kubelet rotates the file
                // (https://kubernetes.io/docs/tasks/configure-pod-container/configure-service-account/).
                // Off the runtime's threads: a file read blocks.
                let path = token_file.clone();
                let read = tokio::task::spawn_blocking(move || crate::file::read_to_string(&path))
                    .await
                    .unwrap_or_else(|join| Err(std::io::Error::other(join)));
                let assertion = read.map(|t| Secret::new(t.trim())).map_err(|source| {
                    TokenError::FederatedToken {
                        path: token_file.clone(),
                        source,
                    }
                })?;
                self.client_credentials(credential, tenant, scope, Proof::Assertion(assertion))
                    .await
            }
            ClientAuth::Password { username, password } => {
                let scope = user_scope(scope);
                let form = [
                    ("grant_type", "password"),
                    ("client_id", client_id),
                    ("scope", scope.as_str()),
                    ("username", username.as_str()),
                    ("password", password.expose()),
                ];
                let endpoint = token_endpoint(&credential.authority, tenant);
                self.send(self.post(&endpoint).form(&form)).await
            }
            ClientAuth::User(file) => self.refresh(credential, file, tenant, scope).await,
            ClientAuth::ManagedIdentity(identity) => {
                self.managed_identity(identity, client_id, scope).await
            }
            ClientAuth::ApiToken(_) => Err(TokenError::NotExchanged),
        }
    }

    /// Redeems the stored refresh token of a signed-in user, and stores the one that replaces it
    /// before the new access token is used.
    async fn refresh(
        &self,
        credential: &Credential,
        file: &TokenFile,
        tenant: &str,
        scope: &str,
    ) -> Result<TokenResponse, TokenError> {
        // Locked against this process's other redemptions and other processes' (`token`, `login`,
        // another `serve`), and read once locked: whoever redeemed last stored the newest token.
        let mut memory = file.lock().await.map_err(TokenError::State)?;
        let stored = file.load().await.map_err(TokenError::State)?;
        let account = stored.as_ref().and_then(|s| s.account.clone());
        let refresh_token = match (memory.unsaved.clone(), stored) {
            (Some(unsaved), _) => unsaved,
            (None, Some(stored)) => stored.refresh_token,
            (None, None) => return Err(TokenError::LoginRequired(None)),
        };
        if memory.refused == Some(token_hash(&refresh_token)) {
            return Err(TokenError::LoginRequired(None));
        }
        let scope = user_scope(scope);
        let form = [
            ("grant_type", "refresh_token"),
            ("client_id", credential.client_id.as_str()),
            ("scope", scope.as_str()),
            ("refresh_token", refresh_token.expose()),
        ];
        let endpoint = token_endpoint(&credential.authority, tenant);
        match self.send(self.post(&endpoint).form(&form)).await {
            Ok(response) => {
                if let Some(next) = &response.refresh_token {
                    match file.save(next, account.as_deref()).await {
                        Ok(()) => memory.unsaved = None,
                        Err(error) => {
                            tracing::error!(
                                credential = %credential.name,
                                file = %file.path().display(),
                                error = %error,
                                "cannot save the rotated refresh token; keeping it in memory"
                            );
                            memory.unsaved = Some(next.clone());
                        }
                    }
                }
                memory.refused = None;
                Ok(response)
            }
            // invalid_grant: expired, revoked or already used; interaction_required: MFA or
            // another condition the user must meet. Either way, sign in again
            // (https://learn.microsoft.com/en-us/entra/identity-platform/reference-error-codes).
            Err(TokenError::Rejected(rejection))
                if matches!(
                    rejection.error.as_str(),
                    "invalid_grant" | "interaction_required"
                ) =>
            {
                memory.refused = Some(token_hash(&refresh_token));
                memory.unsaved = None;
                Err(TokenError::LoginRequired(Some(rejection)))
            }
            Err(error) => Err(error),
        }
    }

    /// A managed identity's token for the resource of `scope` (its `/.default` removed); failures
    /// name the endpoint, not Entra.
    async fn managed_identity(
        &self,
        identity: &ManagedIdentity,
        client_id: &str,
        scope: &str,
    ) -> Result<TokenResponse, TokenError> {
        self.managed_identity_request(identity, client_id, scope)
            .await
            .map_err(|error| TokenError::ManagedIdentity {
                service: identity.describe(),
                error: Box::new(error),
            })
    }

    /// Whether anything answers at the IMDS endpoint within `within`: any HTTP answer counts (the
    /// probe sends no `Metadata` header, so IMDS refuses it without issuing a token). Like
    /// azure-identity's DefaultAzureCredential, this keeps a machine outside Azure from waiting a
    /// whole token timeout for a metadata service that is not there.
    pub(crate) async fn probe_imds(
        &self,
        identity: &ManagedIdentity,
        within: Duration,
    ) -> Result<(), TokenError> {
        let ManagedIdentity::Imds { endpoint } = identity else {
            return Ok(());
        };
        let request = self.direct.get(endpoint.clone()).timeout(within);
        match request.send().await {
            Ok(_) => Ok(()),
            Err(error) => Err(TokenError::ManagedIdentity {
                service: identity.describe(),
                error: Box::new(if error.is_timeout() {
                    TokenError::Timeout(within)
                } else {
                    TokenError::Unreachable(error)
                }),
            }),
        }
    }

    async fn managed_identity_request(
        &self,
        identity: &ManagedIdentity,
        client_id: &str,
        scope: &str,
    ) -> Result<TokenResponse, TokenError> {
        let resource = scope.strip_suffix("/.default").unwrap_or(scope);
        let (endpoint, api_version) = match identity {
            ManagedIdentity::Imds { endpoint } => (endpoint, "2018-02-01"),
            ManagedIdentity::AppService { endpoint, .. } => (endpoint, "2019-08-01"),
        };
        let mut url = endpoint.clone();
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("api-version", api_version);
            query.append_pair("resource", resource);
            if !client_id.is_empty() {
                query.append_pair("client_id", client_id);
            }
        }
        let request = match identity {
            // Required, lower case: IMDS's guard against server-side request forgery.
            ManagedIdentity::Imds { .. } => self.direct.get(url).header("Metadata", "true"),
            ManagedIdentity::AppService { header, .. } => self
                .direct
                .get(url)
                .header("X-IDENTITY-HEADER", header.expose()),
        };
        let (status, retry_after, body) = self.exchange(request).await?;
        if status.is_success() {
            return super::entra::parse_success(&body);
        }
        // 404 and 410 mean IMDS is being updated and will answer again shortly
        // (https://learn.microsoft.com/en-us/entra/identity/managed-identities-azure-resources/how-to-use-vm-token).
        let retriable = matches!(status.as_u16(), 404 | 410);
        match refusal(status, retry_after, &body) {
            TokenError::Rejected(rejection) if retriable => Err(TokenError::Unavailable {
                retry_after,
                rejection,
            }),
            error => Err(error),
        }
    }

    /// Starts a device code sign-in for `scope` plus `offline_access` (RFC 8628;
    /// <https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-device-code>).
    pub(crate) async fn device_code(
        &self,
        credential: &Credential,
        scope: &str,
    ) -> Result<DeviceCode, TokenError> {
        let endpoint = format!(
            "{}/{}/oauth2/v2.0/devicecode",
            credential.authority,
            credential.home_tenant()
        );
        let scope = user_scope(scope);
        let form = [
            ("client_id", credential.client_id.as_str()),
            ("scope", scope.as_str()),
        ];
        let (status, retry_after, body) = self.exchange(self.post(&endpoint).form(&form)).await?;
        if !status.is_success() {
            return Err(refusal(status, retry_after, &body));
        }
        let raw: RawDeviceCode = serde_json::from_slice(&body)
            .map_err(|e| TokenError::Malformed(format!("not a device code response: {e}")))?;
        Ok(DeviceCode {
            device_code: raw.device_code,
            user_code: raw.user_code,
            verification_uri: raw.verification_uri,
            message: raw.message,
            expires_in: raw
                .expires_in
                .map_or(DEFAULT_DEVICE_CODE_LIFETIME, Duration::from_secs),
            interval: raw
                .interval
                .map_or(DEFAULT_POLL_INTERVAL, Duration::from_secs),
        })
    }

    /// One poll of a device code sign-in. Entra's "not yet" answers come back as
    /// [`TokenError::Rejected`] with `authorization_pending` or `slow_down`.
    pub(crate) async fn poll_device_code(
        &self,
        credential: &Credential,
        code: &DeviceCode,
    ) -> Result<TokenResponse, TokenError> {
        let form = [
            ("grant_type", DEVICE_CODE_GRANT),
            ("client_id", credential.client_id.as_str()),
            ("device_code", code.device_code.expose()),
        ];
        let endpoint = token_endpoint(&credential.authority, &credential.home_tenant());
        self.send(self.post(&endpoint).form(&form)).await
    }

    /// Redeems an authorization code with its PKCE verifier
    /// (<https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-auth-code-flow>).
    pub(crate) async fn redeem_code(
        &self,
        credential: &Credential,
        code: &Secret,
        redirect_uri: &str,
        verifier: &Secret,
        scope: &str,
    ) -> Result<TokenResponse, TokenError> {
        let scope = user_scope(scope);
        let form = [
            ("grant_type", "authorization_code"),
            ("client_id", credential.client_id.as_str()),
            ("scope", scope.as_str()),
            ("code", code.expose()),
            ("redirect_uri", redirect_uri),
            ("code_verifier", verifier.expose()),
        ];
        let endpoint = token_endpoint(&credential.authority, &credential.home_tenant());
        self.send(self.post(&endpoint).form(&form)).await
    }
}

/// A started device code sign-in.
#[derive(Debug)]
pub(crate) struct DeviceCode {
    device_code: Secret,
    /// The code the user enters.
    pub user_code: String,
    /// Where the user enters it.
    pub verification_uri: String,
    /// Entra's instructions for the user, when it sends them.
    pub message: Option<String>,
    /// How long the code is valid.
    pub expires_in: Duration,
    /// How long to wait between polls.
    pub interval: Duration,
}

#[derive(Deserialize)]
struct RawDeviceCode {
    device_code: Secret,
    user_code: String,
    verification_uri: String,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
    #[serde(default)]
    interval: Option<u64>,
}
