//! A route's allow-lists of methods and paths (least privilege).

use http::Method;

/// A route's allow-lists (least privilege): a request passes when its method is in `methods`, or
/// when it matches one of the `paths` rules (`"[METHOD ]/path"`, with a trailing `*` for "and
/// below"). Paths are after the route prefix, without the query.
#[derive(Debug, Clone)]
pub struct Access {
    methods: Vec<Method>,
    paths: Vec<PathRule>,
}

#[derive(Debug, Clone)]
struct PathRule {
    method: Option<Method>,
    pattern: String,
    prefix: bool,
}

impl Access {
    /// The allow-lists from the config (`None` when neither is given: everything passes). Errors
    /// name the field (`methods` or `paths`) and say what is wrong.
    pub fn new(
        methods: Option<&[String]>,
        paths: Option<&[String]>,
    ) -> Result<Option<Self>, (&'static str, String)> {
        if methods.is_none() && paths.is_none() {
            return Ok(None);
        }
        let method = |text: &str| {
            Method::from_bytes(text.as_bytes())
                .ok()
                .filter(|_| text.chars().all(|c| c.is_ascii_uppercase()))
                .ok_or_else(|| format!("{text:?} is not an HTTP method such as GET or POST"))
        };
        let methods = methods
            .unwrap_or_default()
            .iter()
            .map(|m| method(m))
            .collect::<Result<_, _>>()
            .map_err(|e| ("methods", e))?;
        let paths = paths
            .unwrap_or_default()
            .iter()
            .map(|rule| {
                let (method, pattern) = match rule.split_once(' ') {
                    Some((m, p)) => (Some(method(m)?), p.trim()),
                    None => (None, rule.as_str()),
                };
                // By char, not by byte: a rule may end in a multi-byte character.
                let body = pattern.strip_suffix('*').unwrap_or(pattern);
                if !pattern.starts_with('/') || body.contains('*') {
                    return Err(format!(
                        "{rule:?}: a rule is \"[METHOD ]/path\", the path starting with '/' and \
                         a '*' allowed only at its end"
                    ));
                }
                let prefix = pattern.ends_with('*');
                Ok(PathRule {
                    method,
                    pattern: pattern.trim_end_matches('*').to_owned(),
                    prefix,
                })
            })
            .collect::<Result<_, _>>()
            .map_err(|e| ("paths", e))?;
        Ok(Some(Self { methods, paths }))
    }

    /// The rules, as the config writes them: the methods, and the path rules (`"[METHOD ]/path"`).
    pub(crate) fn rules(&self) -> (Vec<&str>, Vec<String>) {
        let methods = self.methods.iter().map(Method::as_str).collect();
        let paths = self
            .paths
            .iter()
            .map(|rule| {
                let star = if rule.prefix { "*" } else { "" };
                match &rule.method {
                    Some(method) => format!("{method} {}{star}", rule.pattern),
                    None => format!("{}{star}", rule.pattern),
                }
            })
            .collect();
        (methods, paths)
    }

    /// Whether `method` on `path` (after the prefix, no query) passes.
    pub fn allows(&self, method: &Method, path: &str) -> bool {
        let path = if path.is_empty() { "/" } else { path };
        self.methods.contains(method)
            || self.paths.iter().any(|rule| {
                rule.method.as_ref().is_none_or(|m| m == method)
                    && if rule.prefix {
                        path.starts_with(&rule.pattern)
                    } else {
                        path == rule.pattern
                    }
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access(methods: &[&str], paths: &[&str]) -> Access {
        let owned = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let (m, p) = (owned(methods), owned(paths));
        Access::new(
            (!m.is_empty()).then_some(&m[..]),
            (!p.is_empty()).then_some(&p[..]),
        )
        .unwrap()
        .unwrap()
    }

    #[test]
    fn a_read_only_route_allows_get_and_one_post() {
        let read_only = access(&["GET"], &["POST /api/advancedqueries/run"]);
        assert!(read_only.allows(&Method::GET, "/api/machines"));
        assert!(read_only.allows(&Method::POST, "/api/advancedqueries/run"));
        assert!(!read_only.allows(&Method::POST, "/api/machines/1/isolate"));
        assert!(!read_only.allows(&Method::POST, "/api/advancedqueries/run/x"));
        assert!(!read_only.allows(&Method::DELETE, "/api/indicators/1"));
    }

    #[test]
    fn path_rules_match_exactly_or_below_a_trailing_star() {
        let alerts = access(&[], &["GET /api/alerts*", "/api/info"]);
        assert!(alerts.allows(&Method::GET, "/api/alerts"));
        assert!(alerts.allows(&Method::GET, "/api/alerts/da123"));
        assert!(!alerts.allows(&Method::PATCH, "/api/alerts/da123"));
        assert!(alerts.allows(&Method::PUT, "/api/info"));
        assert!(!alerts.allows(&Method::GET, "/api/machines"));
        assert_eq!(
            alerts.rules(),
            (
                vec![],
                vec!["GET /api/alerts*".to_owned(), "/api/info".to_owned()]
            )
        );
    }

    #[test]
    fn bad_rules_are_refused_naming_the_field() {
        let rules = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            Access::new(Some(&rules(&["get"])), None).unwrap_err().0,
            "methods"
        );
        assert_eq!(
            Access::new(None, Some(&rules(&["api/x"]))).unwrap_err().0,
            "paths"
        );
        assert_eq!(
            Access::new(None, Some(&rules(&["/a*/b"]))).unwrap_err().0,
            "paths"
        );
        assert!(Access::new(None, None).unwrap().is_none());
    }

    #[test]
    fn a_rule_ending_in_a_multi_byte_character_is_accepted_without_a_panic() {
        let rules = access(&[], &["GET /api/é", "/api/ü/*"]);
        assert!(rules.allows(&Method::GET, "/api/é"));
        assert!(rules.allows(&Method::POST, "/api/ü/x"));
        let bad = ["/a*é".to_owned()];
        assert_eq!(Access::new(None, Some(&bad)).unwrap_err().0, "paths");
    }
}
