//! Which token a request uses: its route's, or for a partner route, the customer tenant's that
//! the request names.

use std::borrow::Cow;
use std::sync::Arc;

use http::HeaderMap;

use super::{Route, TENANT_HEADER, Tenancy};
use crate::error::ProxyError;
use crate::token::{AccessToken, TokenEntry};

/// Where a request's `Authorization` comes from.
pub(crate) enum Source<'r> {
    /// The token cache, under this key (and in the route's slot for a pinned one).
    Cache(TokenEntry<'r>),
    /// A static token.
    Static(&'r Arc<AccessToken>),
}

impl Route {
    /// The token source of a request: the route's, or for a partner route, the customer tenant's that
    /// the request names (its `{tenant}` segment, or `X-Tenant-Id` where allowed), which must be one of
    /// the credential's (else 403, before any token request).
    pub(crate) fn source(
        &self,
        segment: Option<&str>,
        headers: &HeaderMap,
    ) -> Result<Source<'_>, ProxyError> {
        let route = self;
        let header = match &route.tenancy {
            Tenancy::Fixed {
                key,
                slot: Some(slot),
            } => return Ok(Source::Cache(TokenEntry::pinned(key, slot))),
            Tenancy::Fixed { key, slot: None } => {
                return Ok(Source::Cache(TokenEntry::keyed(Cow::Borrowed(key))));
            }
            Tenancy::Static(token) => return Ok(Source::Static(token)),
            Tenancy::PerRequest { header } => *header,
        };
        let from_header = match headers.get(&TENANT_HEADER).filter(|_| header) {
            Some(value) => Some(value.to_str().map_err(|_| ProxyError::TenantNotAllowed {
                tenant: None,
                prefix: route.prefix.clone(),
            })?),
            None => None,
        };
        let named = match (segment, from_header) {
            (Some(path), Some(header)) if !path.eq_ignore_ascii_case(header) => {
                return Err(ProxyError::TenantConflict {
                    prefix: route.prefix.clone(),
                });
            }
            (Some(tenant), _) | (None, Some(tenant)) => tenant,
            (None, None) => {
                return Err(ProxyError::TenantRequired {
                    prefix: route.prefix.clone(),
                });
            }
        };
        let tenant =
            route
                .credential
                .tenant(named)
                .ok_or_else(|| ProxyError::TenantNotAllowed {
                    // Echoed only when it looks like a tenant: it is the client's own text.
                    tenant: (named.len() <= 253
                        && named
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-'))
                    .then(|| named.to_owned()),
                    prefix: route.prefix.clone(),
                })?;
        Ok(Source::Cache(TokenEntry::keyed(Cow::Owned(
            route.token_key(tenant.clone()),
        ))))
    }
}
