//! The `[identity_endpoint]` section: the managed-identity endpoint's secret (the
//! `X-IDENTITY-HEADER` callers send), the credential whose tokens it hands out, and the resources
//! it serves (those of the routes that use that credential), validated in one step.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Deserialize;

use super::validator::Validator;
use super::{ConfigError, RouteConfig};
use crate::credential::{ClientAuth, Credential};
use crate::secret::{Secret, SecretSource};

/// The shortest identity header secret accepted: like an API key, anything shorter can be guessed.
pub(crate) const MIN_IDENTITY_SECRET_LEN: usize = 16;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawIdentityEndpoint {
    secret: SecretSource,
    credential: String,
}

/// The validated `[identity_endpoint]`: `GET /-/identity` hands out `credential`'s tokens for
/// `resources` to callers that present `secret`.
#[derive(Debug, Clone)]
pub struct IdentityEndpoint {
    /// What callers present as `X-IDENTITY-HEADER`.
    pub secret: Secret,
    /// Whose tokens it hands out.
    pub credential: Arc<Credential>,
    /// The resources (audiences) it serves, each with the scope its routes' tokens are cached
    /// under: `https://api.securitycenter.microsoft.com` ↔ `…/.default`.
    pub resources: Vec<(String, Arc<str>)>,
}

/// The resource a scope is for: the scope without `/.default`, without trailing slashes (azure-identity
/// and msal send the resource bare: <https://learn.microsoft.com/en-us/entra/identity-platform/scopes-oidc#the-default-scope>).
pub(crate) fn resource_of(scope: &str) -> &str {
    scope
        .strip_suffix("/.default")
        .unwrap_or(scope)
        .trim_end_matches('/')
}

impl Validator<'_> {
    pub(super) fn identity_endpoint(
        &mut self,
        raw: RawIdentityEndpoint,
        credentials: &BTreeMap<String, Arc<Credential>>,
        routes: &[RouteConfig],
    ) -> Result<IdentityEndpoint, ConfigError> {
        let secret = self.secret("identity_endpoint.secret", raw.secret)?;
        if secret.expose().chars().count() < MIN_IDENTITY_SECRET_LEN {
            return Err(self.invalid(
                "identity_endpoint.secret",
                format!("the identity header needs at least {MIN_IDENTITY_SECRET_LEN} characters"),
            ));
        }
        // Callers send it as a header value; one a header cannot carry would never match.
        if http::HeaderValue::from_str(secret.expose()).is_err() {
            return Err(self.invalid(
                "identity_endpoint.secret",
                "the identity header has characters a header cannot carry",
            ));
        }
        let key = "identity_endpoint.credential";
        let credential = credentials.get(&raw.credential).cloned().ok_or_else(|| {
            self.invalid(key, format!("no credential named {:?}", raw.credential))
        })?;
        if matches!(credential.auth, ClientAuth::ApiToken(_)) {
            return Err(self.invalid(
                key,
                format!(
                    "{:?} is an api_token credential: a static API token is not an Entra access \
                     token, so no SDK can use it",
                    raw.credential
                ),
            ));
        }
        if credential.partner {
            return Err(self.invalid(
                key,
                format!(
                    "{:?} is a partner credential: the managed identity protocol names no tenant, \
                     so it cannot say which customer's token to hand out",
                    raw.credential
                ),
            ));
        }
        let mut resources: Vec<(String, Arc<str>)> = Vec::new();
        for route in routes
            .iter()
            .filter(|r| Arc::ptr_eq(&r.credential, &credential))
        {
            let resource = resource_of(&route.scope).to_owned();
            if !resources.iter().any(|(r, _)| *r == resource) {
                resources.push((resource, route.scope.clone()));
            }
        }
        if resources.is_empty() {
            return Err(self.invalid(
                key,
                format!(
                    "no route uses credential {:?}, so there is no resource to hand out tokens for",
                    raw.credential
                ),
            ));
        }
        Ok(IdentityEndpoint {
            secret,
            credential,
            resources,
        })
    }
}
