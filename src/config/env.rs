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

/// Builds the configuration from AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET or
/// AZURE_CLIENT_CERTIFICATE_PATH, AZURE_AUTHORITY_HOST and MDCA_URL, with routes /mde, /xdr and
/// /graph (and /mdca when MDCA_URL is set).
pub fn from_env(overrides: &Overrides, env: EnvLookup<'_>) -> Result<super::Config, ConfigError> {
    let get = |name: &str| env(name).filter(|v| !v.trim().is_empty());
    let missing = |name: &str| ConfigError::Invalid {
        origin: ORIGIN.into(),
        key: name.into(),
        message: "is not set (with no --config, the proxy is configured from AZURE_TENANT_ID, \
                  AZURE_CLIENT_ID and AZURE_CLIENT_SECRET or AZURE_CLIENT_CERTIFICATE_PATH)"
            .into(),
    };
    let tenant = get("AZURE_TENANT_ID").ok_or_else(|| missing("AZURE_TENANT_ID"))?;
    let client_id = get("AZURE_CLIENT_ID").ok_or_else(|| missing("AZURE_CLIENT_ID"))?;
    let credential = if get("AZURE_CLIENT_SECRET").is_some() {
        RawCredential::ClientSecret {
            tenant,
            client_id,
            client_secret: SecretSource::Env("AZURE_CLIENT_SECRET".into()),
        }
    } else if let Some(path) = get("AZURE_CLIENT_CERTIFICATE_PATH") {
        RawCredential::ClientCertificate {
            tenant,
            client_id,
            certificate: FileRef { file: path.into() },
            algorithm: AssertionAlgorithm::default(),
        }
    } else {
        return Err(missing("AZURE_CLIENT_SECRET"));
    };
    let mut apis = vec![Api::Mde, Api::Xdr, Api::Graph];
    let mdca_url = get("MDCA_URL");
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
        })
        .collect();
    let raw = RawConfig {
        server: RawServer::default(),
        cloud: RawCloud {
            name: Default::default(),
            authority_host: get("AZURE_AUTHORITY_HOST"),
        },
        credentials: BTreeMap::from([(CREDENTIAL.to_owned(), credential)]),
        routes,
        admin: None,
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
        "upstream" => "MDCA_URL",
        _ => key,
    }
}
