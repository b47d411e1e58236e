//! The validation of one `[[routes]]` entry: its prefix, API and upstream, credential, tenants,
//! allow-lists and rate limit, into a `RouteConfig`.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::checks::check_prefix;
use super::validator::Validator;
use super::{Api, Cloud, ConfigError, MAX_BODY_BYTES, RawRoute, RouteConfig, TENANT_PLACEHOLDER};
use crate::access::Access;
use crate::credential::{ClientAuth, Credential};
use crate::report::error_chain;
use crate::token::AccessToken;
use crate::upstream::Upstream;

impl Validator<'_> {
    pub(super) fn route(
        &self,
        i: usize,
        raw: RawRoute,
        cloud: Cloud,
        credentials: &BTreeMap<String, Arc<Credential>>,
    ) -> Result<RouteConfig, ConfigError> {
        let key = |field: &str| format!("routes[{i}].{field}");
        let prefix = raw.prefix.trim_end_matches('/').to_owned();
        check_prefix(&prefix).map_err(|m| self.invalid(key("prefix"), m))?;
        let credential = credentials.get(&raw.credential).cloned().ok_or_else(|| {
            let known: Vec<&str> = credentials.keys().map(String::as_str).collect();
            self.invalid(
                key("credential"),
                format!(
                    "no credential named {:?} (defined: {})",
                    raw.credential,
                    if known.is_empty() {
                        "none".into()
                    } else {
                        known.join(", ")
                    }
                ),
            )
        })?;
        let upstream = match (&raw.upstream, raw.api) {
            (Some(url), _) => url.clone(),
            (None, Some(api)) => cloud.upstream(api).map(str::to_owned).ok_or_else(|| {
                self.invalid(
                    key("upstream"),
                    "api = \"mdca\" needs the tenant's API URL, such as \
                     \"https://contoso.us2.portal.cloudappsecurity.com\" (Defender portal: Settings, \
                     Cloud Apps, About)",
                )
            })?,
            (None, None) => {
                return Err(self.invalid(key("upstream"), "give `api` (a preset) or `upstream`"));
            }
        };
        let upstream = Upstream::new(self.url(key("upstream"), &upstream)?)
            .map_err(|m| self.invalid(key("upstream"), m))?;
        let scope = match (raw.scope, raw.api) {
            (Some(scope), _) => scope,
            (None, Some(api)) => cloud.scope(api),
            (None, None) => {
                return Err(self.invalid(key("scope"), "give `api` (a preset) or `scope`"));
            }
        };
        if scope.trim().is_empty() || scope.contains(char::is_whitespace) {
            return Err(self.invalid(
                key("scope"),
                "one scope, such as \"https://api.securitycenter.microsoft.com/.default\"",
            ));
        }
        let access = Access::new(raw.methods.as_deref(), raw.paths.as_deref())
            .map_err(|(field, message)| self.invalid(key(field), message))?;
        let templated = prefix.contains(TENANT_PLACEHOLDER);
        if (templated || raw.tenant_header) && !credential.partner {
            return Err(self.invalid(
                key(if templated { "prefix" } else { "tenant_header" }),
                format!(
                    "a customer tenant per request needs a partner credential (one with \
                 tenants = [...]); {:?} has one tenant",
                    raw.credential
                ),
            ));
        }
        if credential.partner && !templated && !raw.tenant_header {
            return Err(self.invalid(
                key("prefix"),
                format!(
                    "credential {:?} serves several customer tenants: put a {TENANT_PLACEHOLDER} \
                 segment in the prefix (such as \"/customers/{TENANT_PLACEHOLDER}/mde\") or \
                 set tenant_header = true",
                    raw.credential
                ),
            ));
        }
        if let ClientAuth::ApiToken(token) = &credential.auth {
            if raw.api.is_some_and(|api| api != Api::Mdca) {
                return Err(self.invalid(
                    key("credential"),
                    "an api_token credential is the legacy Defender for Cloud Apps token: use it \
                     only with api = \"mdca\"",
                ));
            }
            // The header is built from it for every request: it must be one a header can carry.
            AccessToken::api_token(token)
                .map_err(|e| self.invalid(key("credential"), error_chain(&e)))?;
        }
        if raw.max_body_bytes == Some(0) {
            return Err(self.invalid(key("max_body_bytes"), "must be more than zero"));
        }
        if raw.max_body_bytes.is_some_and(|n| n > MAX_BODY_BYTES) {
            return Err(self.invalid(
                key("max_body_bytes"),
                format!("must be at most {MAX_BODY_BYTES} (1 TiB)"),
            ));
        }
        let rate_limit = raw
            .rate_limit
            .map(|spec| spec.resolve())
            .transpose()
            .map_err(|message| self.invalid(key("rate_limit"), message))?;
        Ok(RouteConfig {
            prefix,
            api: raw.api,
            upstream,
            scope: scope.into(),
            credential,
            tenant_header: raw.tenant_header,
            access,
            rewrite_links: raw.rewrite_links.unwrap_or(true),
            max_body_bytes: raw.max_body_bytes,
            rate_limit,
        })
    }
}
