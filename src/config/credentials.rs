//! Validation of `[credentials.NAME]`: each credential type's settings, with the standard Azure
//! variables filling in what a workload or managed identity leaves out (as azure-identity does).

use std::path::{Path, PathBuf};

use url::Url;

use super::checks::{check_local_url, check_tenant, is_name, normalize_authority};
use super::validator::Validator;
use super::{ConfigError, RawCredential, WatchedFile};
use crate::credential::{Certificate, ClientAuth, Credential, ManagedIdentity};
use crate::digest::content_fingerprint;
use crate::report::error_chain;
use crate::secret::{Secret, SecretSource};
use crate::state::{Binding, TokenFile};

/// Azure's instance metadata service token endpoint
/// (<https://learn.microsoft.com/en-us/entra/identity/managed-identities-azure-resources/how-to-use-vm-token>).
pub(super) const IMDS_ENDPOINT: &str = "http://169.254.169.254/metadata/identity/oauth2/token";
/// IMDS's token path, under [`IMDS_HOST_VAR`]'s host.
const IMDS_PATH: &str = "/metadata/identity/oauth2/token";
/// The variable azure-identity reads to reach IMDS at another host.
pub(crate) const IMDS_HOST_VAR: &str = "AZURE_POD_IDENTITY_AUTHORITY_HOST";

/// What the credentials of one config share.
pub(super) struct Context<'c> {
    /// The cloud's (or `cloud.authority_host`'s) authority.
    pub(super) authority: &'c Url,
    /// `state.dir`, or the user's state directory.
    pub(super) state_dir: Option<&'c Path>,
    /// Start-up warnings.
    pub(super) warnings: &'c mut Vec<String>,
}

impl Validator<'_> {
    pub(super) fn credential(
        &mut self,
        name: &str,
        raw: RawCredential,
        context: &mut Context<'_>,
    ) -> Result<Credential, ConfigError> {
        let key = |field: &str| format!("credentials.{name}.{field}");
        if !is_name(name) {
            return Err(self.invalid(
                format!("credentials.{name}"),
                "a credential name uses only letters, digits, '-' and '_'",
            ));
        }
        let mut authority = context.authority.as_str().to_owned();
        let (tenants, partner, client_id, auth) = match raw {
            RawCredential::ClientSecret {
                tenant,
                tenants,
                client_id,
                client_secret,
            } => {
                let (tenants, partner) = self.tenants(name, tenant, tenants)?;
                self.literal_warning(&key("client_secret"), &client_secret, context);
                let secret = self.secret(&key("client_secret"), client_secret)?;
                (tenants, partner, client_id, ClientAuth::Secret(secret))
            }
            RawCredential::ClientCertificate {
                tenant,
                tenants,
                client_id,
                certificate,
                algorithm,
            } => {
                let (tenants, partner) = self.tenants(name, tenant, tenants)?;
                let path = self.base.join(certificate.file);
                let pem = crate::file::read(&path).map_err(|e| {
                    self.invalid(
                        key("certificate"),
                        format!("cannot read {}: {e}", path.display()),
                    )
                })?;
                self.files.push(WatchedFile {
                    path: path.clone(),
                    fingerprint: Some(content_fingerprint(&pem)),
                });
                let cert = Certificate::from_pem(&pem, algorithm).map_err(|e| {
                    self.invalid(
                        key("certificate"),
                        format!("{}: {}", path.display(), error_chain(&e)),
                    )
                })?;
                (tenants, partner, client_id, ClientAuth::Certificate(cert))
            }
            RawCredential::DeviceCode { tenant, client_id } => {
                self.user_tenant(&key("tenant"), &tenant, &["organizations", "common"])?;
                let dir = context.state_dir.ok_or_else(|| {
                    self.invalid(
                        "state.dir",
                        "a device_code credential stores its sign-in in the state directory: set \
                         state.dir (neither XDG_STATE_HOME nor HOME is set)",
                    )
                })?;
                let file = TokenFile::new(
                    dir,
                    name,
                    Binding {
                        authority: authority.trim_end_matches('/').to_owned(),
                        tenant: tenant.to_ascii_lowercase(),
                        client_id: client_id.clone(),
                    },
                );
                (vec![tenant], false, client_id, ClientAuth::User(file))
            }
            RawCredential::Password {
                tenant,
                client_id,
                username,
                password,
            } => {
                // ROPC needs a specific tenant or `organizations`
                // (https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth-ropc).
                self.user_tenant(&key("tenant"), &tenant, &["organizations"])?;
                context.warnings.push(format!(
                    "{}: {}: the password grant cannot do multi-factor authentication and Microsoft \
                     recommends against it; prefer type = \"device_code\" (user context) or an \
                     application credential",
                    self.origin,
                    format_args!("credentials.{name}"),
                ));
                self.literal_warning(&key("password"), &password, context);
                let password = self.secret(&key("password"), password)?;
                if username.trim().is_empty() {
                    return Err(self.invalid(key("username"), "must not be empty"));
                }
                let auth = ClientAuth::Password { username, password };
                (vec![tenant], false, client_id, auth)
            }
            RawCredential::ApiToken { token } => {
                self.literal_warning(&key("token"), &token, context);
                let token = self.secret(&key("token"), token)?;
                return Ok(Credential::new(
                    name,
                    &authority,
                    Vec::new(),
                    false,
                    String::new(),
                    ClientAuth::ApiToken(token),
                ));
            }
            RawCredential::WorkloadIdentity {
                tenant,
                client_id,
                token_file,
                authority_host,
            } => {
                let tenant = self.setting(tenant, "AZURE_TENANT_ID", &key("tenant"))?;
                let client_id = self.setting(client_id, "AZURE_CLIENT_ID", &key("client_id"))?;
                let token_file = match token_file {
                    Some(path) => self.base.join(path),
                    None => PathBuf::from(self.setting(
                        None,
                        "AZURE_FEDERATED_TOKEN_FILE",
                        &key("token_file"),
                    )?),
                };
                if let Err(e) = crate::file::read(&token_file) {
                    return Err(self.invalid(
                        key("token_file"),
                        format!("cannot read {}: {e}", token_file.display()),
                    ));
                }
                if let Some(host) = authority_host.or_else(|| self.env_var("AZURE_AUTHORITY_HOST"))
                {
                    authority = self
                        .url(key("authority_host"), &normalize_authority(&host))?
                        .as_str()
                        .to_owned();
                }
                let auth = ClientAuth::WorkloadIdentity { token_file };
                (vec![tenant], false, client_id, auth)
            }
            RawCredential::ManagedIdentity {
                client_id,
                endpoint,
            } => {
                let identity = self.managed_identity(&key("endpoint"), endpoint)?;
                let client_id = client_id.unwrap_or_default();
                if !client_id.is_empty() {
                    self.client_id(&key("client_id"), &client_id)?;
                }
                let auth = ClientAuth::ManagedIdentity(identity);
                return Ok(Credential::new(
                    name,
                    &authority,
                    Vec::new(),
                    false,
                    client_id,
                    auth,
                ));
            }
        };
        self.client_id(&key("client_id"), &client_id)?;
        Ok(Credential::new(
            name, &authority, tenants, partner, client_id, auth,
        ))
    }

    /// `tenant`, or a partner app's `tenants`: exactly one of the two.
    fn tenants(
        &self,
        name: &str,
        tenant: Option<String>,
        tenants: Option<Vec<String>>,
    ) -> Result<(Vec<String>, bool), ConfigError> {
        match (tenant, tenants) {
            (Some(tenant), None) => {
                check_tenant(&tenant)
                    .map_err(|m| self.invalid(format!("credentials.{name}.tenant"), m))?;
                Ok((vec![tenant], false))
            }
            (None, Some(tenants)) => {
                let key = format!("credentials.{name}.tenants");
                if tenants.is_empty() {
                    return Err(self.invalid(key, "list at least one customer tenant"));
                }
                let mut seen = std::collections::HashSet::new();
                for (i, tenant) in tenants.iter().enumerate() {
                    check_tenant(tenant).map_err(|m| self.invalid(format!("{key}[{i}]"), m))?;
                    if !seen.insert(tenant.to_ascii_lowercase()) {
                        return Err(self.invalid(
                            format!("{key}[{i}]"),
                            format!("{tenant:?} is listed twice"),
                        ));
                    }
                }
                Ok((tenants, true))
            }
            (Some(_), Some(_)) => Err(self.invalid(
                format!("credentials.{name}.tenants"),
                "give either tenant (one tenant) or tenants (a partner app's customer tenants), \
                 not both",
            )),
            (None, None) => Err(self.invalid(
                format!("credentials.{name}.tenant"),
                "missing: give the tenant ID (or tenants = [...] for a partner app)",
            )),
        }
    }

    /// A user-context tenant: a GUID, a domain, or one of the `aliases` Entra accepts for the flow.
    fn user_tenant(&self, key: &str, tenant: &str, aliases: &[&str]) -> Result<(), ConfigError> {
        if aliases.iter().any(|a| a.eq_ignore_ascii_case(tenant)) {
            return Ok(());
        }
        check_tenant(tenant).map_err(|m| self.invalid(key, m))
    }

    fn client_id(&self, key: &str, client_id: &str) -> Result<(), ConfigError> {
        if uuid::Uuid::parse_str(client_id).is_err() {
            return Err(self.invalid(
                key,
                format!(
                    "{client_id:?} is not a GUID: use the Application (client) ID from the app \
                     registration's overview page"
                ),
            ));
        }
        Ok(())
    }

    /// A setting from the config, else from the environment variable that azure-identity reads.
    fn setting(
        &self,
        value: Option<String>,
        variable: &str,
        key: &str,
    ) -> Result<String, ConfigError> {
        value.or_else(|| self.env_var(variable)).ok_or_else(|| {
            self.invalid(
                key,
                format!("missing: set it here, or set {variable} (the Azure Workload Identity webhook sets it)"),
            )
        })
    }

    fn env_var(&self, name: &str) -> Option<String> {
        (self.env)(name).filter(|v| !v.trim().is_empty())
    }

    /// The managed identity endpoint: `endpoint` (IMDS protocol), else App Service's
    /// IDENTITY_ENDPOINT with IDENTITY_HEADER, else IMDS
    /// (<https://learn.microsoft.com/en-us/azure/app-service/overview-managed-identity>,
    /// <https://learn.microsoft.com/en-us/entra/identity/managed-identities-azure-resources/how-to-use-vm-token>).
    fn managed_identity(
        &self,
        key: &str,
        endpoint: Option<String>,
    ) -> Result<ManagedIdentity, ConfigError> {
        let local_url = |key: &str, value: &str| {
            let url =
                Url::parse(value).map_err(|e| self.invalid(key, format!("{value:?}: {e}")))?;
            check_local_url(&url).map_err(|m| self.invalid(key, format!("{value:?}: {m}")))?;
            Ok(url)
        };
        if let Some(endpoint) = endpoint {
            return Ok(ManagedIdentity::Imds {
                endpoint: local_url(key, &endpoint)?,
            });
        }
        match (
            self.env_var("IDENTITY_ENDPOINT"),
            self.env_var("IDENTITY_HEADER"),
        ) {
            (Some(endpoint), Some(header)) => Ok(ManagedIdentity::AppService {
                endpoint: local_url("IDENTITY_ENDPOINT", &endpoint)?,
                header: Secret::new(header),
            }),
            // azure-identity's override of the IMDS host (for AAD Pod Identity's node agent, or a
            // local stand-in); the path stays IMDS's.
            _ => match self.env_var(IMDS_HOST_VAR) {
                Some(host) => {
                    let url = format!("{}{IMDS_PATH}", host.trim_end_matches('/'));
                    Ok(ManagedIdentity::Imds {
                        endpoint: local_url(IMDS_HOST_VAR, &url)?,
                    })
                }
                None => Ok(ManagedIdentity::Imds {
                    endpoint: Url::parse(IMDS_ENDPOINT).expect("a valid constant URL"),
                }),
            },
        }
    }

    fn literal_warning(&self, key: &str, source: &SecretSource, context: &mut Context<'_>) {
        if matches!(source, SecretSource::Literal(_)) {
            context.warnings.push(format!(
                "{}: {key}: the secret is written in the config file; prefer {{ env = \"...\" }} \
                 or {{ file = \"...\" }}",
                self.origin,
            ));
        }
    }
}
