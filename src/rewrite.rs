//! Link rewriting: absolute URLs that point at a configured upstream (OData's `@odata.nextLink` and
//! `@odata.context`, and `Location`) are rewritten to the proxy's own URL for that upstream's
//! route, so that pagination stays behind the proxy (<https://learn.microsoft.com/en-us/graph/paging>).
//! Other absolute URLs, such as Azure Storage download links, are left alone. JSON bodies are
//! rewritten as they arrive, holding back at most one URL's length between chunks: never buffered
//! beyond the frame at hand.

use std::sync::Arc;

use http::HeaderValue;
use memchr::memmem::Finder;

use crate::route::Routes;

mod body;

/// The upstream URLs of a configuration, compiled once per configuration.
#[derive(Debug)]
pub struct LinkTable {
    /// Longest first, so that an upstream with a base path wins over its host alone.
    rules: Vec<Rule>,
    /// The longest pattern, in bytes.
    longest: usize,
    /// The start every pattern shares (`http:` at least): one scan finds every candidate, instead
    /// of one scan per pattern. `None` without patterns.
    lead: Option<Finder<'static>>,
}

#[derive(Debug)]
struct Rule {
    needle: Vec<u8>,
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
                    needle: pattern.into_bytes(),
                    prefix: route.prefix.clone(),
                    base: base.as_str().into(),
                    escaped,
                });
            }
        }
        rules.sort_by_key(|r| std::cmp::Reverse(r.needle.len()));
        let longest = rules.first().map_or(0, |r| r.needle.len());
        let lead = rules.first().map(|first| {
            let shared = rules.iter().fold(&first.needle[..], |lead, rule| {
                let same = lead.iter().zip(&rule.needle).take_while(|(a, b)| a == b);
                &lead[..same.count()]
            });
            Finder::new(shared).into_owned()
        });
        Self {
            rules,
            longest,
            lead,
        }
    }
}

/// The next thing to do in a buffer, from a position on.
enum Step<'a> {
    /// Nothing to rewrite up to the end but the last `keep` bytes, which may start a link.
    End { keep: usize },
    /// Whether a link starts here depends on bytes not yet arrived.
    Wait(usize),
    /// A link to this rule's upstream from `.1` to `.2`.
    Replace(&'a Rule, usize, usize),
}

/// The rewriting of one response: links go to `proxy_base` (such as `http://127.0.0.1:8080`).
#[derive(Debug, Clone)]
pub struct Links {
    table: Arc<LinkTable>,
    proxy_base: String,
    /// Links to this upstream base go to this prefix: the one the request came through, when it
    /// named a customer tenant (so that a partner's next page stays in that tenant).
    own: Option<(Arc<str>, String)>,
}

impl Links {
    /// Rewrites links for a response that the proxy serves at `proxy_base`.
    pub fn new(table: Arc<LinkTable>, proxy_base: impl Into<String>) -> Self {
        Self {
            table,
            proxy_base: proxy_base.into(),
            own: None,
        }
    }

    /// Links to `upstream` (a base URL without its trailing slash) go to `prefix`.
    pub(crate) fn through(mut self, upstream: &str, prefix: String) -> Self {
        self.own = Some((upstream.into(), prefix));
        self
    }

    /// Appends the proxy's URL for `rule`'s upstream, escaped as the link was.
    fn push_replacement(&self, rule: &Rule, out: &mut Vec<u8>) {
        let prefix = match &self.own {
            Some((base, prefix)) if *base == rule.base => prefix,
            _ => &rule.prefix,
        };
        for part in [self.proxy_base.as_bytes(), prefix.as_bytes()] {
            if rule.escaped {
                for &byte in part {
                    if byte == b'/' {
                        out.push(b'\\');
                    }
                    out.push(byte);
                }
            } else {
                out.extend_from_slice(part);
            }
        }
    }

    /// The rewritten `Location` value, if it points at an upstream.
    pub fn location(&self, value: &HeaderValue) -> Option<HeaderValue> {
        let mut pending = value.as_bytes().to_vec();
        let rewritten = self.process(&mut pending, true);
        (rewritten != value.as_bytes()).then(|| HeaderValue::from_bytes(&rewritten).ok())?
    }

    /// Rewrites what can be rewritten in `pending` and returns it; what could still turn out to be
    /// the start of a link stays in `pending` for the next chunk (unless `last`).
    fn process(&self, pending: &mut Vec<u8>, last: bool) -> Vec<u8> {
        let buf = std::mem::take(pending);
        let mut out = Vec::with_capacity(buf.len() + 64);
        let mut at = 0;
        loop {
            match self.next_step(&buf, at, last) {
                Step::End { keep } => {
                    out.extend_from_slice(&buf[at..buf.len() - keep]);
                    pending.extend_from_slice(&buf[buf.len() - keep..]);
                    return out;
                }
                Step::Wait(start) => {
                    out.extend_from_slice(&buf[at..start]);
                    pending.extend_from_slice(&buf[start..]);
                    return out;
                }
                Step::Replace(rule, start, end) => {
                    out.extend_from_slice(&buf[at..start]);
                    self.push_replacement(rule, &mut out);
                    at = end;
                }
            }
        }
    }

    /// What comes next in `buf` from `at` on: the first link to rewrite, or the first place that
    /// needs more bytes to decide (unless `last`), or the end.
    fn next_step(&self, buf: &[u8], mut at: usize, last: bool) -> Step<'_> {
        let Some(lead) = &self.table.lead else {
            return Step::End { keep: 0 };
        };
        loop {
            let Some(found) = lead.find(&buf[at..]) else {
                let keep = if last {
                    0
                } else {
                    self.partial_suffix(&buf[at..])
                };
                return Step::End { keep };
            };
            let start = at + found;
            let rest = &buf[start..];
            // A longer pattern (an upstream with a base path) may still match once more arrives.
            if !last
                && self
                    .table
                    .rules
                    .iter()
                    .any(|rule| rule.needle.len() > rest.len() && rule.needle.starts_with(rest))
            {
                return Step::Wait(start);
            }
            // Every pattern that matches here, longest first: when `…/beta` is followed by `x`, the
            // host alone may still be a link (found by the `link_rewrite` fuzz target).
            for rule in self
                .table
                .rules
                .iter()
                .filter(|rule| rest.starts_with(&rule.needle))
            {
                let end = start + rule.needle.len();
                match buf.get(end) {
                    // The byte after the match decides whether it is this upstream or a longer host.
                    None if !last => return Step::Wait(start),
                    Some(&next) if !matches!(next, b'/' | b'?' | b'"' | b'\\' | b'#') => {}
                    _ => return Step::Replace(rule, start, end),
                }
            }
            at = start + 1;
        }
    }

    /// The length of the longest end of `tail` that is the start of a pattern.
    fn partial_suffix(&self, tail: &[u8]) -> usize {
        let most = self.table.longest.saturating_sub(1).min(tail.len());
        // Every pattern starts with the lead's first byte (`h`): the other ends need no comparing.
        let first = self.table.lead.as_ref().and_then(|l| l.needle().first());
        (1..=most)
            .rev()
            .find(|&k| {
                let end = &tail[tail.len() - k..];
                first.is_none_or(|b| end[0] == *b)
                    && self.table.rules.iter().any(|r| r.needle.starts_with(end))
            })
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RouteConfig;
    use crate::upstream::Upstream;

    pub(super) fn links() -> Links {
        let cred = std::sync::Arc::new(crate::credential::Credential::new(
            "app",
            "https://login.example",
            vec!["t.example".into()],
            false,
            "c".into(),
            crate::credential::ClientAuth::Secret(crate::secret::Secret::new("s")),
        ));
        let route = |prefix: &str, url: &str| RouteConfig {
            prefix: prefix.into(),
            api: None,
            upstream: Upstream::new(url.parse().unwrap()).unwrap(),
            scope: "s/.default".into(),
            credential: cred.clone(),
            tenant_header: false,
            access: None,
            rewrite_links: true,
            max_body_bytes: None,
            rate_limit: None,
        };
        let routes = Routes::new(vec![
            route("/mde", "https://api.securitycenter.microsoft.com"),
            route("/mde2", "https://api.securitycenter.microsoft.com"),
            route("/graph", "https://graph.microsoft.com"),
            route("/based", "https://graph.microsoft.com/beta"),
        ])
        .unwrap();
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
    fn pieces_of_links_in_any_order_rewrite_the_same_whatever_the_chunking() {
        let links = links();
        let pieces = [
            "https://graph.microsoft.com",
            "https:\\/\\/graph.microsoft.com",
            "https://graph.microsoft.com/beta",
            "https://api.securitycenter.microsoft.com",
            "https://graph.microsoft.co",
            "https://",
            "http",
            "h",
            "/",
            "\"",
            "\\",
            "?",
            "x",
            ".evil",
            "/betax",
        ];
        // A fixed linear congruential sequence: the same texts on every run.
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        for _ in 0..300 {
            let mut text = String::new();
            for _ in 0..12 {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                text.push_str(pieces[(state >> 33) as usize % pieces.len()]);
            }
            let whole = rewrite_in_chunks(&links, &text, text.len().max(1));
            for size in 1..=9 {
                assert_eq!(
                    rewrite_in_chunks(&links, &text, size),
                    whole,
                    "{text:?} in {size}"
                );
            }
        }
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
