//! Inbound authentication: when API keys are configured (required for a non-loopback listener),
//! every request except `/-/healthy` presents one, compared in constant time against each
//! configured key (several at once, for rotation).

use http::header::AUTHORIZATION;
use http::{HeaderName, Request};
use subtle::ConstantTimeEq;

use crate::error::ProxyError;
use crate::secret::Secret;

/// The header clients present their API key in. SDKs that can only send a bearer token may send
/// the key as `Authorization: Bearer <key>` instead.
pub(crate) const API_KEY_HEADER: HeaderName = HeaderName::from_static("x-api-key");

/// The managed-identity endpoint, which takes no API key: the SDKs that call it cannot send one,
/// so its callers authenticate with its own `X-IDENTITY-HEADER` secret instead.
pub(crate) const IDENTITY_PATH: &str = "/-/identity";

/// Lets `request` through if no API keys are configured, it is for `/-/healthy` or
/// [`IDENTITY_PATH`], or it presents one of `keys` (which is then removed from it: the key is for
/// the proxy alone).
pub(crate) fn authenticate<B>(keys: &[Secret], request: &mut Request<B>) -> Result<(), ProxyError> {
    let path = request.uri().path();
    if keys.is_empty() || path == "/-/healthy" || path == IDENTITY_PATH {
        return Ok(());
    }
    let headers = request.headers();
    let presented = headers
        .get(&API_KEY_HEADER)
        .and_then(|v| v.to_str().ok())
        .or_else(|| {
            headers
                .get(AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
        });
    if presented.is_some_and(|key| accepted(key, keys)) {
        // Authorization is replaced when forwarding anyway.
        request.headers_mut().remove(&API_KEY_HEADER);
        return Ok(());
    }
    Err(ProxyError::Unauthenticated {
        presented: presented.is_some(),
    })
}

/// Whether `key` equals one of `keys`. Every key is compared, in constant time for equal lengths,
/// so the timing says nothing about which key nearly matched.
fn accepted(key: &str, keys: &[Secret]) -> bool {
    keys.iter().fold(false, |found, candidate| {
        found | bool::from(candidate.expose().as_bytes().ct_eq(key.as_bytes()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_accepted_only_when_it_equals_a_configured_one() {
        let keys = [
            Secret::new("current-key-0123456789"),
            Secret::new("next-key-0123456789ab"),
        ];
        assert!(accepted("current-key-0123456789", &keys));
        assert!(accepted("next-key-0123456789ab", &keys));
        assert!(!accepted("current-key-012345678", &keys));
        assert!(!accepted("", &keys));
        assert!(!accepted("current-key-0123456789", &[]));
    }
}
