//! An upstream base URL, split once at start-up, and the URI each forwarded request goes to.

use http::Uri;
use http::uri::{Authority, PathAndQuery, Scheme};
use url::{Position, Url};

/// An upstream base URL, split once at start-up into the parts each forwarded request reuses.
#[derive(Debug, Clone)]
pub struct Upstream {
    url: Url,
    scheme: Scheme,
    authority: Authority,
    base_path: String,
}

impl Upstream {
    /// Splits a validated URL (scheme, host, optional port, optional base path).
    pub fn new(url: Url) -> Result<Self, String> {
        let scheme = Scheme::try_from(url.scheme()).map_err(|e| e.to_string())?;
        let authority = Authority::try_from(&url[Position::BeforeHost..Position::AfterPort])
            .map_err(|e| format!("bad host: {e}"))?;
        let base_path = url.path().trim_end_matches('/').to_owned();
        Ok(Self {
            url,
            scheme,
            authority,
            base_path,
        })
    }

    /// The upstream base URL as configured.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The URI for `rest`, the part of the request target after the route prefix: it starts with
    /// `/` or `?`, or is empty, and is appended byte for byte.
    pub fn uri_for(&self, rest: &str) -> Result<Uri, http::Error> {
        let mut target = String::with_capacity(self.base_path.len() + rest.len() + 1);
        target.push_str(&self.base_path);
        if rest.is_empty() || rest.starts_with('?') {
            target.push('/');
        }
        target.push_str(rest);
        Ok(Uri::from_parts({
            let mut parts = http::uri::Parts::default();
            parts.scheme = Some(self.scheme.clone());
            parts.authority = Some(self.authority.clone());
            parts.path_and_query = Some(PathAndQuery::try_from(target)?);
            parts
        })?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upstream(url: &str) -> Upstream {
        Upstream::new(Url::parse(url).unwrap()).unwrap()
    }

    #[test]
    fn upstream_uri_appends_the_rest_byte_for_byte() {
        let up = upstream("https://api.securitycenter.microsoft.com");
        assert_eq!(
            up.uri_for("/api/alerts?$top=5&$filter=severity%20eq%20'High'")
                .unwrap(),
            "https://api.securitycenter.microsoft.com/api/alerts?$top=5&$filter=severity%20eq%20'High'"
        );
        assert_eq!(
            up.uri_for("").unwrap(),
            "https://api.securitycenter.microsoft.com/"
        );
        assert_eq!(
            up.uri_for("?a=1").unwrap(),
            "https://api.securitycenter.microsoft.com/?a=1"
        );
    }

    #[test]
    fn upstream_uri_keeps_a_base_path_and_port() {
        let up = upstream("http://127.0.0.1:9000/base/");
        assert_eq!(up.uri_for("/x").unwrap(), "http://127.0.0.1:9000/base/x");
        assert_eq!(up.uri_for("").unwrap(), "http://127.0.0.1:9000/base/");
        assert_eq!(up.uri_for("?q").unwrap(), "http://127.0.0.1:9000/base/?q");
        let v6 = upstream("http://[::1]:9000");
        assert_eq!(v6.uri_for("/x").unwrap(), "http://[::1]:9000/x");
    }
}
