//! Request screening: what a local token proxy must refuse before anything else happens (and so
//! before any token is fetched). Browsers: a page in the user's browser can send requests to
//! 127.0.0.1 (cross-site `Origin`, `Sec-Fetch-Site`) and, through DNS rebinding, under a foreign
//! `Host`. Open-proxy use: absolute-form targets, CONNECT, and paths that could climb out of a
//! route's upstream base once the upstream decodes them (dot-segments, encoded slashes).

use std::collections::HashSet;
use std::net::SocketAddr;

use http::{HeaderMap, HeaderValue, Method, Request, Version, header};
use percent_encoding::percent_decode_str;

use crate::error::ProxyError;

/// The `Sec-Fetch-Site` request header (Fetch Metadata), sent by browsers.
const SEC_FETCH_SITE: &str = "sec-fetch-site";

/// What a request must satisfy to reach the proxy.
#[derive(Debug, Clone)]
pub struct Screen {
    /// Accepted `Host` values (lower case, with the port as clients write it). A list: a few
    /// short names compare faster than they hash.
    hosts: Vec<String>,
    /// Accepted `Origin` values, exactly.
    origins: HashSet<String>,
    /// The listener's port.
    port: u16,
    /// Whether any IP literal with the listener's port is an accepted `Host`: the admin listener
    /// on an unspecified address, where kubelet probes and Prometheus name the pod's IP. A DNS
    /// rebinding page always sends its own host name, never an IP literal, so this opens nothing
    /// to it.
    ip_literals: bool,
}

impl Screen {
    /// The rules for a listener bound to `local`: the loopback names with its port, the listener's
    /// own address, and `extra_hosts` (names as clients write them, with or without a port).
    pub fn new(local: SocketAddr, extra_hosts: &[String], origins: &[String]) -> Self {
        let port = local.port();
        let mut hosts: HashSet<String> = [
            format!("127.0.0.1:{port}"),
            format!("localhost:{port}"),
            format!("[::1]:{port}"),
        ]
        .into();
        if !local.ip().is_unspecified() {
            hosts.insert(local.to_string());
        }
        for host in extra_hosts {
            let host = host.to_ascii_lowercase();
            if !host.contains(':') || host.ends_with(']') {
                hosts.insert(format!("{host}:{port}"));
                if port == 80 {
                    hosts.insert(host.clone());
                }
            }
            hosts.insert(host);
        }
        if port == 80 {
            hosts.extend(["127.0.0.1".into(), "localhost".into(), "[::1]".into()]);
        }
        // The proxy's own origins (RFC 6454 section 4): its pages (the console) send them on
        // their POSTs; a page elsewhere cannot, since its Host would be refused.
        let own = hosts
            .iter()
            .flat_map(|h| [format!("http://{h}"), format!("https://{h}")]);
        Self {
            origins: origins.iter().cloned().chain(own).collect(),
            hosts: hosts.into_iter().collect(),
            port,
            ip_literals: false,
        }
    }

    /// The rules for the admin listener bound to `local`: those of [`Screen::new`] and, when it is
    /// bound to an unspecified address, any IP literal with its port as `Host`.
    pub fn for_admin(local: SocketAddr, extra_hosts: &[String], origins: &[String]) -> Self {
        Self {
            ip_literals: local.ip().is_unspecified(),
            ..Self::new(local, extra_hosts, origins)
        }
    }

    /// Why `request` must be refused, if it must.
    pub fn check<B>(&self, request: &Request<B>) -> Result<(), ProxyError> {
        // The target first: an HTTP/1 absolute-form target is refused outright, whatever its Host.
        check_target(request.method(), request.version(), request.uri())?;
        let seen = Seen::of(request.headers());
        check_framing(&seen, request.uri())?;
        self.check_seen(&seen, request.uri())
    }

    /// The browser and `Host` checks alone: what the admin listener, which forwards nothing,
    /// needs so that no page can read it.
    pub fn check_origin_and_host<B>(&self, request: &Request<B>) -> Result<(), ProxyError> {
        self.check_seen(&Seen::of(request.headers()), request.uri())
    }

    fn check_seen(&self, seen: &Seen<'_>, uri: &http::Uri) -> Result<(), ProxyError> {
        self.check_browser(seen)?;
        self.check_host(seen, uri)
    }

    fn check_browser(&self, seen: &Seen<'_>) -> Result<(), ProxyError> {
        let origin = seen.origin;
        let allowed = origin
            .and_then(|o| o.to_str().ok())
            .is_some_and(|o| self.origins.contains(o));
        // `same-site` too: a page on another localhost port is the same site (scheme and
        // registrable domain, ports ignored) but another origin, and may not use the proxy
        // (<https://www.w3.org/TR/fetch-metadata/#sec-fetch-site-header>, RFC 6454 section 5).
        let cross_site = seen.fetch_site.is_some_and(|v| {
            let v = v.as_bytes();
            v.eq_ignore_ascii_case(b"cross-site") || v.eq_ignore_ascii_case(b"same-site")
        });
        if (origin.is_some() || cross_site) && !allowed {
            return Err(ProxyError::CrossSite {
                origin: origin.map(|o| String::from_utf8_lossy(o.as_bytes()).into_owned()),
            });
        }
        Ok(())
    }

    fn check_host(&self, seen: &Seen<'_>, uri: &http::Uri) -> Result<(), ProxyError> {
        // HTTP/2 carries the authority in the URI (:authority); HTTP/1.1 in Host.
        let host = match uri.authority() {
            Some(authority) => Some(authority.as_str().as_bytes()),
            None => seen.host.map(HeaderValue::as_bytes),
        };
        // Compared without copying: a handful of names, each compared ignoring case.
        match host {
            Some(host)
                if self
                    .hosts
                    .iter()
                    .any(|h| h.as_bytes().eq_ignore_ascii_case(host)) =>
            {
                Ok(())
            }
            Some(host) if self.ip_literals && self.is_ip_literal(host) => Ok(()),
            host => Err(ProxyError::HostNotAllowed {
                host: host.map(|h| String::from_utf8_lossy(h).into_owned()),
            }),
        }
    }

    /// Whether `host` is an IP literal with this listener's port.
    fn is_ip_literal(&self, host: &[u8]) -> bool {
        std::str::from_utf8(host)
            .ok()
            .and_then(|h| h.parse::<SocketAddr>().ok())
            .is_some_and(|a| a.port() == self.port)
    }
}

/// The request headers the screen reads, gathered in one pass over the few a request has (a hashed
/// lookup per name cost more, measured with callgrind); for each name its first value, as
/// `HeaderMap::get` gives.
#[derive(Default)]
struct Seen<'a> {
    origin: Option<&'a HeaderValue>,
    fetch_site: Option<&'a HeaderValue>,
    host: Option<&'a HeaderValue>,
    /// A second Host came.
    more_hosts: bool,
    /// How many times the Transfer-Encoding values apply chunked.
    chunked: usize,
}

impl<'a> Seen<'a> {
    fn of(headers: &'a HeaderMap) -> Self {
        let mut seen = Self::default();
        for (name, value) in headers {
            if name == header::HOST {
                if seen.host.is_some() {
                    seen.more_hosts = true;
                } else {
                    seen.host = Some(value);
                }
            } else if name == header::ORIGIN {
                seen.origin.get_or_insert(value);
            } else if name == header::TRANSFER_ENCODING {
                seen.chunked += value
                    .as_bytes()
                    .split(|b| *b == b',')
                    .filter(|coding| coding.trim_ascii().eq_ignore_ascii_case(b"chunked"))
                    .count();
            } else if name.as_str() == SEC_FETCH_SITE {
                seen.fetch_site.get_or_insert(value);
            }
        }
        seen
    }
}

/// Refuses what hyper lets through but makes the request ambiguous to the next hop (request
/// smuggling): more than one Host, a Host other than the target's authority, and chunked applied
/// more than once.
fn check_framing(seen: &Seen<'_>, uri: &http::Uri) -> Result<(), ProxyError> {
    // RFC 9112 section 3.2: "A server MUST respond with a 400 (Bad Request) status code to any
    // request message that contains more than one Host header field line".
    if seen.more_hosts {
        return Err(ProxyError::MalformedRequest("more than one Host header"));
    }
    // RFC 9112 section 3.2: a client sends a Host "identical to that authority component"; RFC 9113
    // section 8.3.1: a Host that differs from :authority is malformed.
    if let (Some(host), Some(authority)) = (seen.host, uri.authority())
        && !host
            .as_bytes()
            .eq_ignore_ascii_case(authority.as_str().as_bytes())
    {
        return Err(ProxyError::MalformedRequest(
            "the Host header disagrees with the request target",
        ));
    }
    // RFC 9112 section 6.1: "A sender MUST NOT apply the chunked transfer coding more than once to
    // a message body"; twice, the next hop may frame the body differently (section 6.3).
    if seen.chunked > 1 {
        return Err(ProxyError::MalformedRequest(
            "Transfer-Encoding applies chunked more than once",
        ));
    }
    Ok(())
}

/// Methods whose answer echoes the request, Authorization header included: TRACE (RFC 9110 section
/// 9.3.8: "A client MUST NOT generate fields in a TRACE request containing sensitive data") and
/// IIS's TRACK. Compared ignoring case: a server that does so would still echo.
const ECHOING_METHODS: [&str; 2] = ["TRACE", "TRACK"];

/// Refuses echoing methods, CONNECT, absolute-form targets, and paths with dot-segments or encoded
/// slashes.
fn check_target(method: &Method, version: Version, uri: &http::Uri) -> Result<(), ProxyError> {
    if ECHOING_METHODS
        .iter()
        .any(|m| m.eq_ignore_ascii_case(method.as_str()))
    {
        return Err(ProxyError::MethodRefused(method.as_str().to_owned()));
    }
    if method == Method::CONNECT {
        return Err(ProxyError::TargetRefused(
            "CONNECT: this is not a forward proxy",
        ));
    }
    // An HTTP/1 request target with a scheme is the absolute form, which asks a forward proxy to
    // go elsewhere (RFC 9112 section 3.2.2); HTTP/2 always carries scheme and authority.
    if version < Version::HTTP_2 && uri.scheme().is_some() {
        return Err(ProxyError::TargetRefused(
            "an absolute-form request target: this is not a forward proxy",
        ));
    }
    // Most paths have none of the bytes the checks below look for: no need to split them.
    let path = uri.path().as_bytes();
    if !path.contains(&b'%')
        && !path.contains(&b'\\')
        && path.first() != Some(&b'.')
        && memchr::memmem::find(path, b"/.").is_none()
    {
        return Ok(());
    }
    for segment in uri.path().split('/') {
        if segment.contains('\\') {
            return Err(ProxyError::TargetRefused("a backslash in the path"));
        }
        let decoded = if segment.contains('%') {
            percent_decode_str(segment).decode_utf8_lossy()
        } else {
            segment.into()
        };
        if decoded == "." || decoded == ".." {
            return Err(ProxyError::TargetRefused("a dot-segment in the path"));
        }
        if decoded.contains('/') || decoded.contains('\\') {
            return Err(ProxyError::TargetRefused("an encoded slash in the path"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
