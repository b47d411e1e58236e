//! Link rewriting: link values that point at a configured upstream (`Location`, and in JSON the
//! value of a member named `@odata.nextLink`, `@odata.deltaLink`, `nextLink` or `@odata.context`,
//! at any depth) are rewritten to the proxy's own URL for that upstream's route, so that pagination
//! stays behind the proxy (<https://learn.microsoft.com/en-us/graph/paging>). Nothing else changes:
//! an upstream URL in any other string (an alert's description, a command line, evidence) reaches
//! the tool byte for byte, and links elsewhere, such as Azure Storage download links, are left
//! alone. JSON bodies are rewritten as they arrive, holding back at most one URL's length between
//! chunks: never buffered beyond the frame at hand.

use std::sync::Arc;

use http::HeaderValue;

use crate::route::Routes;
use json::{Decision, Scan};

mod body;
mod json;

pub(crate) use body::Rewritten;

/// The upstream URLs of a configuration, compiled once per configuration.
#[derive(Debug)]
pub struct LinkTable {
    /// Longest first, so that an upstream with a base path wins over its host alone.
    rules: Vec<Rule>,
    /// The start all needles share (`http`, `https:`): a buffer without it holds no needle.
    /// `None` without rules.
    common_start: Option<memchr::memmem::Finder<'static>>,
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
        let common_start = rules.split_first().map(|(first, rest)| {
            let len = rest.iter().fold(first.needle.len(), |len, rule| {
                let same = first
                    .needle
                    .iter()
                    .zip(&rule.needle)
                    .take_while(|(a, b)| a == b);
                len.min(same.count())
            });
            memchr::memmem::Finder::new(&first.needle[..len]).into_owned()
        });
        Self {
            rules,
            common_start,
        }
    }

    /// Whether `buf` may hold a rule's needle: false only if it holds none.
    fn may_hold_a_needle(&self, buf: &[u8]) -> bool {
        self.common_start
            .as_ref()
            .is_some_and(|start| start.find(buf).is_some())
    }
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
        let Decision::Replace(rule) = json::decide(&self.table, value.as_bytes(), true) else {
            return None;
        };
        let mut out = Vec::with_capacity(value.len() + 64);
        self.push_replacement(rule, &mut out);
        out.extend_from_slice(&value.as_bytes()[rule.needle.len()..]);
        HeaderValue::from_bytes(&out).ok()
    }

    /// `buf` (as far as `found` did not hold it back) with `found`'s links replaced.
    fn apply(&self, buf: &[u8], found: &json::Found<'_>) -> Vec<u8> {
        let end = found.hold.unwrap_or(buf.len());
        let mut out = Vec::with_capacity(end + 64 * found.edits.len());
        let mut at = 0;
        for &(start, stop, rule) in &found.edits {
            out.extend_from_slice(&buf[at..start]);
            self.push_replacement(rule, &mut out);
            at = stop;
        }
        out.extend_from_slice(&buf[at..end]);
        out
    }

    /// Rewrites what can be rewritten in `pending` (which starts where `scan` stands) and returns
    /// it; the start of a link value that is not complete yet stays in `pending` for the next
    /// chunk (unless `last`).
    fn process(&self, scan: &mut Scan, pending: &mut Vec<u8>, last: bool) -> Vec<u8> {
        let buf = std::mem::take(pending);
        let found = scan.find(&self.table, &buf, last);
        let out = self.apply(&buf, &found);
        if let Some(hold) = found.hold {
            pending.extend_from_slice(&buf[hold..]);
        }
        out
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

    /// The rewriting of `text` cut once at every point, and into pieces of every small size,
    /// must be the rewriting of it whole.
    pub(super) fn same_at_every_split(links: &Links, text: &str) -> String {
        let whole = String::from_utf8(links.rewrite_chunks([text.as_bytes()])).unwrap();
        let bytes = text.as_bytes();
        for cut in 0..=bytes.len() {
            let (a, b) = bytes.split_at(cut);
            let split = String::from_utf8(links.rewrite_chunks([a, b])).unwrap();
            assert_eq!(split, whole, "cut at {cut}");
        }
        for size in 1..=9 {
            assert_eq!(
                rewrite_in_chunks(links, text, size),
                whole,
                "pieces of {size}"
            );
        }
        whole
    }

    #[test]
    fn link_values_to_upstreams_are_rewritten_to_their_route_and_others_are_left_alone() {
        let text = r#"{"@odata.context":"https://api.securitycenter.microsoft.com/api/$metadata#Alerts","@odata.nextLink":"https://api.securitycenter.microsoft.com/api/alerts?$top=2&$skiptoken=eyJ%3D","a":{"nextLink":"https://graph.microsoft.com/v1.0/x"},"b":[{"@odata.deltaLink":"https://graph.microsoft.com/beta/y"}],"e" : { "members@odata.nextLink" : "https:\/\/graph.microsoft.com\/v1.0\/z"},"x":{"@odata.nextLink":"https://wdatp.blob.core.windows.net/x?sig=a"},"y":{"nextLink":"https://graph.microsoft.com.evil.example/x"},"z":{"nextLink":"https://graph.microsoft.com"}}"#;
        let expected = r#"{"@odata.context":"http://127.0.0.1:8080/mde/api/$metadata#Alerts","@odata.nextLink":"http://127.0.0.1:8080/mde/api/alerts?$top=2&$skiptoken=eyJ%3D","a":{"nextLink":"http://127.0.0.1:8080/graph/v1.0/x"},"b":[{"@odata.deltaLink":"http://127.0.0.1:8080/based/y"}],"e" : { "members@odata.nextLink" : "http:\/\/127.0.0.1:8080\/graph\/v1.0\/z"},"x":{"@odata.nextLink":"https://wdatp.blob.core.windows.net/x?sig=a"},"y":{"nextLink":"https://graph.microsoft.com.evil.example/x"},"z":{"nextLink":"http://127.0.0.1:8080/graph"}}"#;
        assert_eq!(same_at_every_split(&links(), text), expected);
    }

    #[test]
    fn an_upstream_url_in_an_alert_s_other_strings_passes_byte_for_byte_while_its_next_link_is_rewritten()
     {
        // The description, command line and evidence hold the upstream's URL (even quoted, even
        // with escaped slashes, even after a member named like a link inside a string); only the
        // page's nextLink is a link.
        let alert = r#"{"value":[{"id":"da1","description":"Beacon to https://api.securitycenter.microsoft.com/api/alerts seen","evidence":[{"processCommandLine":"curl \"https://graph.microsoft.com/v1.0/x\" -H 'nextLink: https://graph.microsoft.com'","url":"https:\/\/graph.microsoft.com\/beta\/y"}],"comments":["\"nextLink\":\"https://graph.microsoft.com/v1.0/z\""],"title":"https://graph.microsoft.com"}],"@odata.nextLink":"https://api.securitycenter.microsoft.com/api/alerts?$skip=1"}"#;
        let out = same_at_every_split(&links(), alert);
        let (before, after) = alert.split_at(alert.rfind("\"@odata.nextLink\"").unwrap());
        assert!(out.starts_with(before), "{out}");
        assert_eq!(
            &out[before.len()..],
            r#""@odata.nextLink":"http://127.0.0.1:8080/mde/api/alerts?$skip=1"}"#,
            "{after}"
        );
    }

    #[test]
    fn links_to_the_upstream_a_request_came_through_go_back_to_its_concrete_prefix() {
        let links = links().through(
            "https://api.securitycenter.microsoft.com",
            "/customers/fabrikam.onmicrosoft.com/mde".into(),
        );
        let text = r#"{"nextLink":"https://api.securitycenter.microsoft.com/api/alerts?$skip=2","g":{"nextLink":"https://graph.microsoft.com/v1.0/x"}}"#;
        assert_eq!(
            rewrite_in_chunks(&links, text, 5),
            r#"{"nextLink":"http://127.0.0.1:8080/customers/fabrikam.onmicrosoft.com/mde/api/alerts?$skip=2","g":{"nextLink":"http://127.0.0.1:8080/graph/v1.0/x"}}"#
        );
    }

    #[test]
    fn a_host_link_is_rewritten_where_a_longer_base_path_does_not_fit() {
        let text = r#"{"nextLink":"https://graph.microsoft.com/betax/"}"#;
        assert_eq!(
            same_at_every_split(&links(), text),
            r#"{"nextLink":"http://127.0.0.1:8080/graph/betax/"}"#
        );
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
        let longer = HeaderValue::from_static("https://graph.microsoft.com.evil.example/x");
        assert!(links.location(&longer).is_none());
    }

    #[test]
    fn pieces_of_link_members_in_any_order_rewrite_the_same_whatever_the_chunking() {
        let links = links();
        let pieces = [
            "https://graph.microsoft.com",
            "https:\\/\\/graph.microsoft.com",
            "https://graph.microsoft.com/beta",
            "https://api.securitycenter.microsoft.com",
            "https://graph.microsoft.co",
            "\"nextLink\"",
            "\"@odata.deltaLink\":",
            ":",
            " ",
            "h",
            "/",
            "\"",
            "\\",
            "\\\"",
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
            same_at_every_split(&links, &text);
        }
    }

    #[test]
    fn text_without_link_members_passes_through_unchanged_whatever_the_chunking() {
        let links = links();
        let text = r#"{"u":"https://graph.microsoft.com/v1.0/x","n":"nextLink","k":["nextLink","https://graph.microsoft.com"]} https://graph.microsoft.com"#.repeat(20);
        for size in [1, 5, 33, text.len()] {
            assert_eq!(rewrite_in_chunks(&links, &text, size), text);
        }
    }
}
