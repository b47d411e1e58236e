//! Link rewriting: absolute URLs that point at a configured upstream (OData's `@odata.nextLink` and
//! `@odata.context`, and `Location`) are rewritten to the proxy's own URL for that upstream's
//! route, so that pagination stays behind the proxy (protocol.md 7.3). Other absolute URLs, such
//! as Azure Storage download links, are left alone. JSON bodies are rewritten as they stream,
//! holding back at most one URL's length between chunks: never buffered.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use futures_util::StreamExt;
use http::HeaderValue;
use http_body_util::BodyExt;
use memchr::memmem::Finder;

use crate::route::Routes;

/// The upstream URLs of a configuration, compiled once per configuration.
#[derive(Debug)]
pub struct LinkTable {
    /// Longest first, so that an upstream with a base path wins over its host alone.
    rules: Vec<Rule>,
    /// The longest pattern, in bytes.
    longest: usize,
}

#[derive(Debug)]
struct Rule {
    finder: Finder<'static>,
    /// The route prefix links to this upstream are rewritten to (the first route with it, routes
    /// without a `{tenant}` segment first).
    prefix: String,
    /// The upstream's base URL, to recognise the route a response came through.
    base: Arc<str>,
    /// Whether this is the JSON escaped-slash form (`https:\/\/host`).
    escaped: bool,
}

impl LinkTable {
    /// The table for `routes`' upstreams.
    pub fn new(routes: &Routes) -> Self {
        let mut rules: Vec<Rule> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let (concrete, templated): (Vec<_>, Vec<_>) =
            routes.iter().partition(|r| !r.has_tenant_segment());
        for route in concrete.into_iter().chain(templated) {
            let base = route
                .upstream
                .url()
                .as_str()
                .trim_end_matches('/')
                .to_owned();
            if !seen.insert(base.clone()) {
                continue;
            }
            for escaped in [false, true] {
                let pattern = if escaped {
                    base.replace('/', "\\/")
                } else {
                    base.clone()
                };
                rules.push(Rule {
                    finder: Finder::new(pattern.as_bytes()).into_owned(),
                    prefix: route.prefix.clone(),
                    base: base.as_str().into(),
                    escaped,
                });
            }
        }
        rules.sort_by_key(|r| std::cmp::Reverse(r.finder.needle().len()));
        let longest = rules.first().map_or(0, |r| r.finder.needle().len());
        Self { rules, longest }
    }
}

/// What to do at a position where a pattern starts.
enum Outcome<'a> {
    /// Not a link to an upstream: move on by one byte.
    Skip,
    /// Whether it is a link depends on bytes not yet arrived.
    Wait,
    /// A link to this rule's upstream, ending here.
    Replace(&'a Rule, usize),
}

/// The rewriting of one response: links go to `proxy_base` (such as `http://127.0.0.1:8080`).
#[derive(Debug, Clone)]
pub struct Links {
    table: Arc<LinkTable>,
    proxy_base: Arc<str>,
    /// Links to this upstream base go to this prefix: the one the request came through, when it
    /// named a customer tenant (so that a partner's next page stays in that tenant).
    own: Option<(Arc<str>, String)>,
}

impl Links {
    /// Rewrites links for a response that the proxy serves at `proxy_base`.
    pub fn new(table: Arc<LinkTable>, proxy_base: &str) -> Self {
        Self {
            table,
            proxy_base: proxy_base.into(),
            own: None,
        }
    }

    /// Links to `upstream` (a base URL without its trailing slash) go to `prefix`.
    pub fn through(mut self, upstream: &str, prefix: String) -> Self {
        self.own = Some((upstream.into(), prefix));
        self
    }

    fn replacement(&self, rule: &Rule) -> Vec<u8> {
        let prefix = match &self.own {
            Some((base, prefix)) if *base == rule.base => prefix,
            _ => &rule.prefix,
        };
        let url = format!("{}{prefix}", self.proxy_base);
        if rule.escaped {
            url.replace('/', "\\/").into_bytes()
        } else {
            url.into_bytes()
        }
    }

    /// The rewritten `Location` value, if it points at an upstream.
    pub fn location(&self, value: &HeaderValue) -> Option<HeaderValue> {
        let mut pending = value.as_bytes().to_vec();
        let rewritten = self.process(&mut pending, true);
        (rewritten != value.as_bytes()).then(|| HeaderValue::from_bytes(&rewritten).ok())?
    }

    /// `body` with its links rewritten as it streams.
    pub fn body(self, body: hyper::body::Incoming) -> Body {
        let state = (body.into_data_stream(), Vec::new(), self, false);
        let stream = futures_util::stream::unfold(
            state,
            |(mut data, mut pending, links, done)| async move {
                if done {
                    return None;
                }
                loop {
                    match data.next().await {
                        Some(Ok(chunk)) => {
                            pending.extend_from_slice(&chunk);
                            let out = links.process(&mut pending, false);
                            if !out.is_empty() {
                                return Some((Ok(Bytes::from(out)), (data, pending, links, false)));
                            }
                        }
                        Some(Err(error)) => {
                            return Some((Err(error), (data, pending, links, true)));
                        }
                        None => {
                            let out = links.process(&mut pending, true);
                            return Some((Ok(Bytes::from(out)), (data, pending, links, true)));
                        }
                    }
                }
            },
        );
        Body::from_stream(stream)
    }

    /// The rewriting of a whole body arriving in `chunks`, as [`Links::body`] does it as it streams
    /// (for fuzzing and benchmarks).
    pub fn rewrite_chunks<'a>(&self, chunks: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
        let mut pending = Vec::new();
        let mut out = Vec::new();
        for chunk in chunks {
            pending.extend_from_slice(chunk);
            out.extend(self.process(&mut pending, false));
        }
        out.extend(self.process(&mut pending, true));
        out
    }

    /// Rewrites what can be rewritten in `pending` and returns it; what could still turn out to be
    /// the start of a link stays in `pending` for the next chunk (unless `last`).
    fn process(&self, pending: &mut Vec<u8>, last: bool) -> Vec<u8> {
        let buf = std::mem::take(pending);
        let mut out = Vec::with_capacity(buf.len() + 64);
        let mut at = 0;
        loop {
            let next = self
                .table
                .rules
                .iter()
                .enumerate()
                .filter_map(|(i, rule)| rule.finder.find(&buf[at..]).map(|p| (at + p, i)))
                .min();
            let Some((start, i)) = next else {
                let keep = if last {
                    0
                } else {
                    self.partial_suffix(&buf[at..])
                };
                out.extend_from_slice(&buf[at..buf.len() - keep]);
                pending.extend_from_slice(&buf[buf.len() - keep..]);
                return out;
            };
            // A longer pattern (an upstream with a base path) may still match once more arrives.
            let longer_possible = !last
                && self.table.rules[..i].iter().any(|longer| {
                    longer.finder.needle().len() > buf.len() - start
                        && longer.finder.needle().starts_with(&buf[start..])
                });
            if longer_possible {
                out.extend_from_slice(&buf[at..start]);
                pending.extend_from_slice(&buf[start..]);
                return out;
            }
            // Every pattern that matches here, longest first: when `…/beta` is followed by `x`, the
            // host alone may still be a link (found by the `link_rewrite` fuzz target).
            let mut outcome = Outcome::Skip;
            for rule in self.table.rules[i..]
                .iter()
                .filter(|r| buf[start..].starts_with(r.finder.needle()))
            {
                let end = start + rule.finder.needle().len();
                match buf.get(end) {
                    // The byte after the match decides whether it is this upstream or a longer host.
                    None if !last => {
                        outcome = Outcome::Wait;
                        break;
                    }
                    Some(&next) if !matches!(next, b'/' | b'?' | b'"' | b'\\' | b'#') => {}
                    _ => {
                        outcome = Outcome::Replace(rule, end);
                        break;
                    }
                }
            }
            match outcome {
                Outcome::Wait => {
                    out.extend_from_slice(&buf[at..start]);
                    pending.extend_from_slice(&buf[start..]);
                    return out;
                }
                Outcome::Skip => {
                    out.extend_from_slice(&buf[at..=start]);
                    at = start + 1;
                }
                Outcome::Replace(rule, end) => {
                    out.extend_from_slice(&buf[at..start]);
                    out.extend_from_slice(&self.replacement(rule));
                    at = end;
                }
            }
        }
    }

    /// The length of the longest end of `tail` that is the start of a pattern.
    fn partial_suffix(&self, tail: &[u8]) -> usize {
        let most = self.table.longest.saturating_sub(1).min(tail.len());
        (1..=most)
            .rev()
            .find(|&k| {
                let end = &tail[tail.len() - k..];
                self.table
                    .rules
                    .iter()
                    .any(|r| r.finder.needle().starts_with(end))
            })
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::route::{Route, Upstream};

    fn links() -> Links {
        let cred = std::sync::Arc::new(crate::credential::Credential::new(
            "app",
            "https://login.example",
            vec!["t.example".into()],
            false,
            "c".into(),
            crate::credential::ClientAuth::Secret(crate::secret::Secret::new("s")),
        ));
        let route = |prefix: &str, url: &str| {
            Route::new(
                prefix.into(),
                None,
                Upstream::new(url.parse().unwrap()).unwrap(),
                "s/.default".into(),
                cred.clone(),
                false,
            )
            .unwrap()
        };
        let routes = Routes::new(vec![
            route("/mde", "https://api.securitycenter.microsoft.com"),
            route("/mde2", "https://api.securitycenter.microsoft.com"),
            route("/graph", "https://graph.microsoft.com"),
            route("/based", "https://graph.microsoft.com/beta"),
        ]);
        Links::new(Arc::new(LinkTable::new(&routes)), "http://127.0.0.1:8080")
    }

    fn rewrite_in_chunks(links: &Links, text: &str, size: usize) -> String {
        String::from_utf8(links.rewrite_chunks(text.as_bytes().chunks(size))).unwrap()
    }

    #[test]
    fn upstream_links_are_rewritten_to_their_route_and_others_are_left_alone() {
        let text = r#"{"@odata.context":"https://api.securitycenter.microsoft.com/api/$metadata#Alerts","@odata.nextLink":"https://api.securitycenter.microsoft.com/api/alerts?$top=2&$skiptoken=eyJ%3D","g":"https://graph.microsoft.com/v1.0/x","b":"https://graph.microsoft.com/beta/y","e":"https:\/\/graph.microsoft.com\/v1.0\/z","storage":"https://wdatp.blob.core.windows.net/x?sig=a","longer":"https://graph.microsoft.com.evil.example/x","bare":"https://graph.microsoft.com"}"#;
        let expected = r#"{"@odata.context":"http://127.0.0.1:8080/mde/api/$metadata#Alerts","@odata.nextLink":"http://127.0.0.1:8080/mde/api/alerts?$top=2&$skiptoken=eyJ%3D","g":"http://127.0.0.1:8080/graph/v1.0/x","b":"http://127.0.0.1:8080/based/y","e":"http:\/\/127.0.0.1:8080\/graph\/v1.0\/z","storage":"https://wdatp.blob.core.windows.net/x?sig=a","longer":"https://graph.microsoft.com.evil.example/x","bare":"http://127.0.0.1:8080/graph"}"#;
        let links = links();
        for size in [1, 2, 3, 7, 16, 64, 4096] {
            assert_eq!(
                rewrite_in_chunks(&links, text, size),
                expected,
                "chunks of {size}"
            );
        }
    }

    #[test]
    fn links_to_the_upstream_a_request_came_through_go_back_to_its_concrete_prefix() {
        let links = links().through(
            "https://api.securitycenter.microsoft.com",
            "/customers/fabrikam.onmicrosoft.com/mde".into(),
        );
        let text = r#"{"n":"https://api.securitycenter.microsoft.com/api/alerts?$skip=2","g":"https://graph.microsoft.com/v1.0/x"}"#;
        assert_eq!(
            rewrite_in_chunks(&links, text, 5),
            r#"{"n":"http://127.0.0.1:8080/customers/fabrikam.onmicrosoft.com/mde/api/alerts?$skip=2","g":"http://127.0.0.1:8080/graph/v1.0/x"}"#
        );
    }

    #[test]
    fn a_host_link_is_rewritten_where_a_longer_base_path_does_not_fit() {
        let links = links();
        for size in [1, 4, 64] {
            assert_eq!(
                rewrite_in_chunks(&links, "\"https://graph.microsoft.com/betax/\"", size),
                "\"http://127.0.0.1:8080/graph/betax/\""
            );
        }
    }

    #[test]
    fn a_location_header_to_an_upstream_is_rewritten() {
        let links = links();
        let to_upstream =
            HeaderValue::from_static("https://graph.microsoft.com/v1.0/security/incidents/1");
        assert_eq!(
            links.location(&to_upstream).unwrap(),
            "http://127.0.0.1:8080/graph/v1.0/security/incidents/1"
        );
        let elsewhere = HeaderValue::from_static("https://login.microsoftonline.com/x");
        assert!(links.location(&elsewhere).is_none());
    }

    #[test]
    fn text_without_links_passes_through_unchanged_whatever_the_chunking() {
        let links = links();
        let text = "https https:/ https://api.security https://graph.microsoft.co h".repeat(50);
        for size in [1, 5, 33] {
            assert_eq!(rewrite_in_chunks(&links, &text, size), text);
        }
    }
}
