//! The proxy's own errors and their HTTP form: RFC 9457 `application/problem+json` bodies with a
//! stable `kind`, and the `x-token-proxy-error` header that tells them apart from Defender's errors.
//! This is the only error type that becomes a response; its status mapping is exhaustive.

use std::sync::Arc;
use std::time::Duration;

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use serde_json::{Value, json};

use crate::body::ProxyBody;
use crate::token::TokenError;

pub(crate) use crate::headers::ERROR_HEADER;

/// The `Allow` header of a 405: the standard methods the proxy forwards (all but TRACE and CONNECT).
const ALLOWED_METHODS: &str = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS";

/// A request the proxy answers itself instead of forwarding.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// No route has the request's path prefix.
    #[error("no route for this path")]
    UnknownRoute {
        /// The configured prefixes.
        prefixes: Vec<String>,
    },
    /// A browser request from a page whose origin is not allowed (cross-site request forgery).
    #[error("cross-site requests are refused{}", .origin.as_ref().map(|o| format!(" (origin {o})")).unwrap_or_default())]
    CrossSite {
        /// The request's `Origin`, if any.
        origin: Option<String>,
    },
    /// The `Host` (or `:authority`) does not name this listener (DNS rebinding).
    #[error("host {} is not this proxy's", .host.as_deref().unwrap_or("(none)"))]
    HostNotAllowed {
        /// The request's host, if any.
        host: Option<String>,
    },
    /// The request target is refused outright.
    #[error("the request target is refused: {0}")]
    TargetRefused(&'static str),
    /// The request's framing is ambiguous: two Host headers, a Host that disagrees with the target's
    /// authority, or chunked applied twice (RFC 9112 sections 3.2 and 6.1).
    #[error("the request is malformed: {0}")]
    MalformedRequest(&'static str),
    /// A method whose answer echoes the request (TRACE, TRACK): forwarded with a token, the answer
    /// would hand the token back to whoever sent it (RFC 9110 section 9.3.8).
    #[error("method {0} is refused: its answer would echo the request and its token")]
    MethodRefused(String),
    /// The route does not allow this method and path.
    #[error("route {prefix} does not allow {method} {path}")]
    RouteForbids {
        /// The route.
        prefix: String,
        /// The request method.
        method: String,
        /// The path after the prefix.
        path: String,
    },
    /// A partner route's request names a tenant the credential does not serve (or an unreadable
    /// one); nothing was requested from Entra.
    #[error("route {prefix} does not serve tenant {}", .tenant.as_deref().unwrap_or("(unreadable)"))]
    TenantNotAllowed {
        /// The tenant named, when it looks like one.
        tenant: Option<String>,
        /// The route.
        prefix: String,
    },
    /// A partner route's request names no tenant.
    #[error(
        "route {prefix} needs a customer tenant: in the path, or in the X-Tenant-Id header where the route allows it"
    )]
    TenantRequired {
        /// The route.
        prefix: String,
    },
    /// The path and `X-Tenant-Id` name different tenants.
    #[error("route {prefix}: the path and the X-Tenant-Id header name different tenants")]
    TenantConflict {
        /// The route.
        prefix: String,
    },
    /// The listener requires an API key and the request has none, or a wrong one.
    #[error("{}", if *.presented { "the API key is not valid" } else { "an API key is required (X-Api-Key)" })]
    Unauthenticated {
        /// Whether a key was presented at all.
        presented: bool,
    },
    /// No token could be had for the route's credential; nothing was sent upstream.
    #[error("no token for credential {credential} in tenant {tenant}")]
    Token {
        /// The credential's name.
        credential: Arc<str>,
        /// The tenant.
        tenant: Arc<str>,
        /// Why.
        #[source]
        error: Arc<TokenError>,
    },
    /// The upstream could not be reached or dropped the connection before answering.
    #[error("the upstream is unreachable")]
    UpstreamUnreachable(#[source] hyper_util::client::legacy::Error),
    /// The upstream did not answer in time.
    #[error("the upstream did not answer within {0:?}")]
    UpstreamTimeout(Duration),
    /// The request cannot be turned into an upstream request.
    #[error("the request target cannot be forwarded")]
    BadTarget(#[source] http::Error),
    /// The route's client-side rate limit (or an upstream 429's Retry-After) would make this request
    /// wait too long.
    #[error("route {prefix} is rate limited; retry after {retry_after:?}")]
    RateLimited {
        /// The route.
        prefix: String,
        /// When a slot will be free.
        retry_after: Duration,
    },
    /// Too many requests are in flight; this one was shed.
    #[error("the proxy is at its limit of requests in flight")]
    Overloaded,
    /// The request body is larger than the route allows.
    #[error("the request body is larger than this route's limit of {limit} bytes")]
    BodyTooLarge {
        /// The route's `max_body_bytes`.
        limit: u64,
    },
    /// The request body could not be read from the client.
    #[error("the request body could not be read")]
    RequestBody(#[source] axum::Error),
    /// The client stopped sending its request body (`server.body_read_timeout`), or took longer
    /// to send it than `server.upstream_timeout` allows.
    #[error("the client's request body did not arrive within {0:?}")]
    RequestBodyTimeout(Duration),
    /// The path is one of the proxy's own endpoints, which do not take this method.
    #[error("{path} does not allow {method}")]
    MethodNotAllowed {
        /// The request method.
        method: String,
        /// The endpoint.
        path: String,
    },
    /// `/-/identity` was asked for, but `[identity_endpoint]` is not configured.
    #[error("the managed identity endpoint is off")]
    IdentityOff,
    /// A request to `/-/identity` without the identity header, or with a wrong one.
    #[error("{}", if *.presented { "the X-IDENTITY-HEADER is not valid" } else { "the X-IDENTITY-HEADER header is required" })]
    IdentityUnauthenticated {
        /// Whether a header was presented at all.
        presented: bool,
    },
    /// A request to `/-/identity` for a resource no route of its credential uses.
    #[error("the managed identity endpoint does not serve resource {resource:?}")]
    IdentityResource {
        /// The resource asked for.
        resource: String,
        /// The resources it serves.
        served: Vec<String>,
    },
    /// A request to `/-/identity` that is not one of the protocol's (no resource, another
    /// api-version, another identity).
    #[error("the managed identity request is invalid: {0}")]
    IdentityRequest(&'static str),
    /// The admin listener has no endpoint at this path (it never forwards).
    #[error("the admin listener has no endpoint {path}")]
    NoEndpoint {
        /// The request path.
        path: String,
    },
}

impl ProxyError {
    /// The HTTP status: client mistakes are 4xx; Entra or the upstream failing us is 502, or 503
    /// while waiting to retry, or 504 for a timeout; our own failures are 500.
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            Self::UnknownRoute { .. } | Self::NoEndpoint { .. } | Self::IdentityOff => {
                StatusCode::NOT_FOUND
            }
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::Unauthenticated { .. } | Self::IdentityUnauthenticated { .. } => {
                StatusCode::UNAUTHORIZED
            }
            Self::CrossSite { .. }
            | Self::HostNotAllowed { .. }
            | Self::RouteForbids { .. }
            | Self::TenantNotAllowed { .. } => StatusCode::FORBIDDEN,
            Self::TargetRefused(_)
            | Self::MalformedRequest(_)
            | Self::BadTarget(_)
            | Self::RequestBody(_)
            | Self::TenantRequired { .. }
            | Self::TenantConflict { .. }
            | Self::IdentityResource { .. }
            | Self::IdentityRequest(_) => StatusCode::BAD_REQUEST,
            Self::MethodRefused(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            // RFC 9110 section 15.5.9: the server did not receive a complete request in time.
            Self::RequestBodyTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Overloaded => StatusCode::SERVICE_UNAVAILABLE,
            Self::Token { error, .. } => match error.root() {
                TokenError::Rejected(_)
                | TokenError::Unavailable { .. }
                | TokenError::Unreachable(_)
                | TokenError::Malformed(_) => StatusCode::BAD_GATEWAY,
                TokenError::Throttled { .. }
                | TokenError::BackingOff { .. }
                | TokenError::Interrupted => StatusCode::SERVICE_UNAVAILABLE,
                TokenError::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
                // The client can fix this: a person signs in with `login`.
                TokenError::LoginRequired(_) => StatusCode::UNAUTHORIZED,
                TokenError::Assertion(_)
                | TokenError::State(_)
                | TokenError::FederatedToken { .. }
                | TokenError::NotExchanged => StatusCode::INTERNAL_SERVER_ERROR,
                // root() unwraps these.
                TokenError::ManagedIdentity { .. } => StatusCode::BAD_GATEWAY,
            },
            Self::UpstreamUnreachable(_) => StatusCode::BAD_GATEWAY,
            Self::UpstreamTimeout(_) => StatusCode::GATEWAY_TIMEOUT,
        }
    }

    /// The stable error kind, in the body's `kind` and in [`ERROR_HEADER`].
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Self::UnknownRoute { .. } => "unknown_route",
            Self::NoEndpoint { .. } => "no_endpoint",
            Self::IdentityOff => "identity_endpoint_off",
            Self::IdentityUnauthenticated { .. } => "identity_header_invalid",
            Self::IdentityResource { .. } => "resource_not_served",
            Self::IdentityRequest(_) => "identity_request_invalid",
            Self::MethodNotAllowed { .. } => "method_not_allowed",
            Self::Unauthenticated { .. } => "unauthenticated",
            Self::CrossSite { .. } => "cross_site_request",
            Self::HostNotAllowed { .. } => "host_not_allowed",
            Self::TargetRefused(_) => "target_refused",
            Self::MethodRefused(_) => "method_refused",
            Self::MalformedRequest(_) => "malformed_request",
            Self::RouteForbids { .. } => "route_forbids",
            Self::TenantNotAllowed { .. } => "tenant_not_allowed",
            Self::TenantRequired { .. } => "tenant_required",
            Self::TenantConflict { .. } => "tenant_conflict",
            Self::BadTarget(_) => "bad_target",
            Self::RequestBody(_) => "request_body_failed",
            Self::BodyTooLarge { .. } => "body_too_large",
            Self::RequestBodyTimeout(_) => "request_timeout",
            Self::Overloaded => "overloaded",
            Self::RateLimited { .. } => "rate_limited",
            Self::Token { error, .. } => match error.root() {
                TokenError::Rejected(_) => "token_rejected",
                TokenError::Throttled { .. } => "token_throttled",
                TokenError::Unavailable { .. } => "token_endpoint_failed",
                TokenError::Unreachable(_) => "token_endpoint_unreachable",
                TokenError::Timeout(_) => "token_endpoint_timeout",
                TokenError::Malformed(_) => "token_response_malformed",
                TokenError::Assertion(_) => "token_assertion_failed",
                TokenError::Interrupted => "token_request_interrupted",
                TokenError::BackingOff { .. } => "token_backing_off",
                TokenError::LoginRequired(_) => "login_required",
                TokenError::State(_) => "sign_in_state_failed",
                TokenError::FederatedToken { .. } => "federated_token_unreadable",
                TokenError::NotExchanged => "not_exchanged",
                TokenError::ManagedIdentity { .. } => "token_endpoint_failed",
            },
            Self::UpstreamUnreachable(_) => "upstream_unreachable",
            Self::UpstreamTimeout(_) => "upstream_timeout",
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Overloaded => Some(Duration::from_secs(1)),
            Self::RateLimited { retry_after, .. } => Some(*retry_after),
            Self::Token { error, .. } => match error.root() {
                TokenError::BackingOff { retry_after, .. } => Some(*retry_after),
                TokenError::Throttled { retry_after, .. } => *retry_after,
                _ => None,
            },
            _ => None,
        }
    }

    /// The problem details object (RFC 9457) for this error.
    pub(crate) fn problem(&self) -> Value {
        let status = self.status();
        let mut body = json!({
            "type": format!("urn:defender-token-proxy:error:{}", self.kind()),
            "title": self.to_string(),
            "status": status.as_u16(),
            "kind": self.kind(),
        });
        let detail = match self {
            Self::UnknownRoute { prefixes } => {
                body["prefixes"] = json!(prefixes);
                format!("the path must start with one of: {}", prefixes.join(", "))
            }
            Self::NoEndpoint { .. } => {
                "the admin listener serves only /-/healthy, /-/ready, /-/metrics and /-/status"
                    .to_owned()
            }
            Self::MethodNotAllowed { .. } => {
                "the proxy's own endpoints take GET (or HEAD)".to_owned()
            }
            Self::IdentityOff => {
                "configure [identity_endpoint] to serve the managed identity protocol".to_owned()
            }
            Self::IdentityResource { served, .. } => {
                body["resources"] = json!(served);
                format!("the resource must be one of: {}", served.join(", "))
            }
            Self::IdentityUnauthenticated { .. } | Self::IdentityRequest(_) => {
                crate::report::error_chain(self)
            }
            Self::Token {
                credential,
                tenant,
                error,
            } => {
                body["credential"] = json!(&**credential);
                body["tenant"] = json!(&**tenant);
                let root = match &**error {
                    TokenError::BackingOff { last, .. } => &**last,
                    other => other,
                };
                if let Some(rejection) = root.rejection() {
                    body["entra_error"] = json!(rejection.error);
                    body["aadsts"] = json!(rejection.codes);
                    body["correlation_id"] = json!(rejection.correlation_id);
                    body["trace_id"] = json!(rejection.trace_id);
                }
                if let Some(hint) = root.hint(credential) {
                    body["hint"] = json!(hint);
                }
                crate::report::error_chain(&**error)
            }
            Self::Unauthenticated { .. }
            | Self::CrossSite { .. }
            | Self::HostNotAllowed { .. }
            | Self::TargetRefused(_)
            | Self::MethodRefused(_)
            | Self::MalformedRequest(_)
            | Self::RouteForbids { .. }
            | Self::TenantNotAllowed { .. }
            | Self::TenantRequired { .. }
            | Self::TenantConflict { .. }
            | Self::UpstreamUnreachable(_)
            | Self::UpstreamTimeout(_)
            | Self::BadTarget(_)
            | Self::RequestBody(_)
            | Self::BodyTooLarge { .. }
            | Self::RequestBodyTimeout(_)
            | Self::Overloaded
            | Self::RateLimited { .. } => crate::report::error_chain(self),
        };
        if let Self::IdentityOff
        | Self::IdentityUnauthenticated { .. }
        | Self::IdentityResource { .. }
        | Self::IdentityRequest(_) = self
        {
            // The App Service endpoint's own error fields: msal reports a failure by them.
            body["statusCode"] = json!(status.as_u16());
            body["message"] = json!(format!("{self}: {detail}"));
        }
        body["detail"] = json!(detail);
        body
    }
}

impl ProxyError {
    /// The problem response, in the main listener's body type (held whole, not boxed).
    pub(crate) fn response(self) -> http::Response<ProxyBody> {
        // A trailing newline, so that `curl` output does not run into the shell prompt.
        let body = format!("{}\n", self.problem());
        let mut response = http::Response::new(ProxyBody::full(body));
        *response.status_mut() = self.status();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        headers.insert(ERROR_HEADER, HeaderValue::from_static(self.kind()));
        // RFC 9110 section 15.5.2: a 401 carries a challenge.
        if self.status() == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"defender-token-proxy\""),
            );
        }
        // RFC 9110 section 15.5.6: a 405 lists the methods the target supports; every method but
        // the refused ones is forwarded (a route's allow-lists may narrow that further).
        if self.status() == StatusCode::METHOD_NOT_ALLOWED {
            headers.insert(header::ALLOW, HeaderValue::from_static(ALLOWED_METHODS));
        }
        if let Some(wait) = self.retry_after() {
            // Whole seconds, rounded up so a client does not come back too early.
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

impl IntoResponse for ProxyError {
    fn into_response(self) -> Response {
        self.response().map(axum::body::Body::new)
    }
}
