//! The environment-only mode: with no config file, the standard Azure variables (the ones
//! azure-identity's EnvironmentCredential reads) make one credential and the default routes.

use std::collections::BTreeMap;
use std::path::Path;

use super::{
    Api, ConfigError, EnvLookup, FileRef, Overrides, RawCloud, RawConfig, RawCredential, RawRoute,
    RawServer, Validator,
};
use crate::credential::AssertionAlgorithm;
use crate::secret::SecretSource;

const ORIGIN: &str = "environment";
/// The one credential's name in this mode.
const CREDENTIAL: &str = "env";

/// Builds the configuration from the variables azure-identity's credentials read, in the order its
/// DefaultAzureCredential tries them (`EnvironmentCredential`, `WorkloadIdentityCredential`,
/// `ManagedIdentityCredential`): a client secret or certificate
/// (AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET or AZURE_CLIENT_CERTIFICATE_PATH), a
/// workload identity (AZURE_FEDERATED_TOKEN_FILE with AZURE_TENANT_ID and AZURE_CLIENT_ID), else a
/// managed identity (App Service's IDENTITY_ENDPOINT, or IMDS; AZURE_CLIENT_ID picks a
/// user-assigned one). AZURE_AUTHORITY_HOST and MDCA_URL apply to all; the routes are /mde, /xdr and
/// /graph (and /mdca when MDCA_URL is set).
pub(crate) fn from_env(
    overrides: &Overrides,
    env: EnvLookup<'_>,
) -> Result<super::Config, ConfigError> {
    let get = |name: &str| env(name).filter(|v| !v.trim().is_empty());
    let missing = |name: &str| ConfigError::Invalid {
        origin: ORIGIN.into(),
        key: name.into(),
        message: "is not set (with no --config, the proxy is configured from AZURE_TENANT_ID, \
                  AZURE_CLIENT_ID and AZURE_CLIENT_SECRET or AZURE_CLIENT_CERTIFICATE_PATH, or \
                  AZURE_FEDERATED_TOKEN_FILE for a workload identity; with none of these it uses \
                  the managed identity)"
            .into(),
    };
    let secretless =
        get("AZURE_CLIENT_SECRET").is_none() && get("AZURE_CLIENT_CERTIFICATE_PATH").is_none();
    let credential = if secretless && get("AZURE_FEDERATED_TOKEN_FILE").is_some() {
        // The rest is read from the environment by the credential's own validation.
        RawCredential::WorkloadIdentity {
            tenant: None,
            client_id: None,
            token_file: None,
            authority_host: None,
        }
    } else if secretless && get("AZURE_TENANT_ID").is_none() {
        RawCredential::ManagedIdentity {
            client_id: get("AZURE_CLIENT_ID"),
            endpoint: None,
        }
    } else {
        app_credential(&get, &missing)?
    };
    let managed = matches!(credential, RawCredential::ManagedIdentity { .. });
    let mut config = routes(
        overrides,
        env,
        credential,
        get("MDCA_URL"),
        get("AZURE_AUTHORITY_HOST"),
    )?;
    if managed {
        // Said at start-up, so that a forgotten --config is not mistaken for a broken identity.
        config.warnings.push(format!(
            "{ORIGIN}: no --config and none of AZURE_TENANT_ID, AZURE_CLIENT_SECRET, \
             AZURE_CLIENT_CERTIFICATE_PATH or AZURE_FEDERATED_TOKEN_FILE: using the managed \
             identity"
        ));
    }
    Ok(config)
}

/// A client secret or certificate credential from the variables.
fn app_credential(
    get: &dyn Fn(&str) -> Option<String>,
    missing: &dyn Fn(&str) -> ConfigError,
) -> Result<RawCredential, ConfigError> {
    let tenant = get("AZURE_TENANT_ID").ok_or_else(|| missing("AZURE_TENANT_ID"))?;
    let client_id = get("AZURE_CLIENT_ID").ok_or_else(|| missing("AZURE_CLIENT_ID"))?;
    let credential = if get("AZURE_CLIENT_SECRET").is_some() {
        RawCredential::ClientSecret {
            tenant: Some(tenant),
            tenants: None,
            client_id,
            client_secret: SecretSource::Env("AZURE_CLIENT_SECRET".into()),
        }
    } else if let Some(path) = get("AZURE_CLIENT_CERTIFICATE_PATH") {
        RawCredential::ClientCertificate {
            tenant: Some(tenant),
            tenants: None,
            client_id,
            certificate: FileRef { file: path.into() },
            algorithm: AssertionAlgorithm::default(),
        }
    } else {
        return Err(missing("AZURE_CLIENT_SECRET"));
    };
    Ok(credential)
}

/// The config with `credential` and the default routes.
fn routes(
    overrides: &Overrides,
    env: EnvLookup<'_>,
    credential: RawCredential,
    mdca_url: Option<String>,
    authority_host: Option<String>,
) -> Result<super::Config, ConfigError> {
    let mut apis = vec![Api::Mde, Api::Xdr, Api::Graph];
    if mdca_url.is_some() {
        apis.push(Api::Mdca);
    }
    let routes = apis
        .into_iter()
        .map(|api| RawRoute {
            prefix: api.default_prefix().into(),
            api: Some(api),
            credential: CREDENTIAL.into(),
            upstream: (api == Api::Mdca).then(|| mdca_url.clone()).flatten(),
            scope: None,
            methods: None,
            paths: None,
            rewrite_links: None,
            max_body_bytes: None,
            rate_limit: None,
            tenant_header: false,
        })
        .collect();
    let raw = RawConfig {
        server: RawServer::default(),
        cloud: RawCloud {
            name: Default::default(),
            authority_host,
        },
        credentials: BTreeMap::from([(CREDENTIAL.to_owned(), credential)]),
        routes,
        admin: None,
        state: None,
        identity_endpoint: None,
    };
    Validator::new(ORIGIN, Path::new("."), env)
        .config(raw, overrides)
        .map_err(|e| match e {
            // Name the variable rather than the internal key it was mapped to.
            ConfigError::Invalid { key, message, .. } => ConfigError::Invalid {
                origin: ORIGIN.into(),
                key: env_name(&key).into(),
                message,
            },
            other => other,
        })
}

fn env_name(key: &str) -> &str {
    match key.rsplit('.').next().unwrap_or(key) {
        "tenant" => "AZURE_TENANT_ID",
        "client_id" => "AZURE_CLIENT_ID",
        "client_secret" => "AZURE_CLIENT_SECRET",
        "certificate" => "AZURE_CLIENT_CERTIFICATE_PATH",
        "authority_host" => "AZURE_AUTHORITY_HOST",
        "token_file" => "AZURE_FEDERATED_TOKEN_FILE",
        "upstream" => "MDCA_URL",
        _ => key,
    }
}
