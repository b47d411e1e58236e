//! A token request once the checks every grant shares have passed, and the form body it comes from: what the
//! token endpoint hands each grant.

use std::collections::HashMap;

use axum::http::{HeaderMap, header};

use super::entra_error::EntraError;
use super::options::SimTenant;
use crate::state::{RegisteredClient, SimState};

/// A token request that passed the checks every grant shares.
pub(super) struct TokenRequest<'a> {
    pub(super) state: &'a SimState,
    /// The tenant the path named.
    pub(super) tenant: &'a SimTenant,
    pub(super) client: &'a RegisteredClient,
    form: HashMap<String, String>,
}

impl<'a> TokenRequest<'a> {
    /// A request of `client` in `tenant` with the parameters of its `form` body.
    pub(super) fn new(
        state: &'a SimState,
        tenant: &'a SimTenant,
        client: &'a RegisteredClient,
        form: HashMap<String, String>,
    ) -> Self {
        Self {
            state,
            tenant,
            client,
            form,
        }
    }

    /// A form parameter; an empty value counts as absent, as in Entra.
    pub(super) fn param(&self, name: &str) -> Option<&str> {
        self.form
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// A form parameter the grant cannot do without.
    pub(super) fn required(&self, name: &str) -> Result<&str, EntraError> {
        self.param(name)
            .ok_or_else(|| EntraError::missing_parameter(name))
    }
}

/// The form body. Without the form content type Entra reads no parameters, which surfaces as a missing
/// `grant_type`; a repeated parameter is refused.
pub(super) fn parse_form(
    headers: &HeaderMap,
    body: &[u8],
) -> Result<HashMap<String, String>, EntraError> {
    let mut form = HashMap::new();
    if is_form(headers) {
        for (name, value) in url::form_urlencoded::parse(body) {
            if form.insert(name.to_string(), value.into_owned()).is_some() {
                return Err(EntraError::malformed_request(&format!(
                    "The parameter '{name}' is duplicated."
                )));
            }
        }
    }
    Ok(form)
}

/// Whether the body is declared a form (`application/x-www-form-urlencoded`, any parameters).
pub(super) fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        })
}
