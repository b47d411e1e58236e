//! The developer console at `/-/console`: its page and assets with their headers, its JSON (never
//! a token or a secret), the same-origin rule, API keys, and the list of the last requests.

use defender_sim::SimOptions;
use serde_json::Value;

use crate::support::{SECRET, TestProxy, client, mde_config};

/// The console's Content-Security-Policy, exactly.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
                   img-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

fn header<'a>(response: &'a reqwest::Response, name: &str) -> &'a str {
    response
        .headers()
        .get(name)
        .map_or("", |v| v.to_str().unwrap())
}

#[tokio::test]
async fn the_console_page_is_served_with_a_strict_csp_and_no_inline_code() {
    let proxy = TestProxy::start(SimOptions::default()).await;
    let page = proxy.get("/-/console").await;
    assert_eq!(page.status(), 200);
    assert_eq!(header(&page, "content-type"), "text/html; charset=utf-8");
    assert_eq!(header(&page, "content-security-policy"), CSP);
    assert_eq!(header(&page, "x-content-type-options"), "nosniff");
    assert_eq!(header(&page, "referrer-policy"), "no-referrer");
    assert_eq!(header(&page, "cache-control"), "no-store");
    assert_eq!(header(&page, "x-frame-options"), "DENY");
    let html = page.text().await.unwrap();
    // Everything it runs and styles comes from its own assets: the CSP allows nothing inline.
    assert!(html.contains(r#"<script src="/-/console/assets/console.js" defer></script>"#));
    assert!(!html.contains("<style") && !html.contains("style="));
    assert!(!has_event_handler(&html), "no inline event handler");
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "no CDN"
    );
}

/// Whether `html` has an attribute such as `onclick=`.
fn has_event_handler(html: &str) -> bool {
    html.match_indices(" on").any(|(at, _)| {
        let rest = &html[at + 3..];
        let name = rest.bytes().take_while(u8::is_ascii_lowercase).count();
        name > 0 && rest[name..].starts_with('=')
    })
}

#[tokio::test]
async fn the_console_assets_are_served_with_their_content_types() {
    let proxy = TestProxy::start(SimOptions::default()).await;
    for (asset, content_type) in [
        ("console.js", "text/javascript; charset=utf-8"),
        ("console.css", "text/css; charset=utf-8"),
        ("icon.svg", "image/svg+xml"),
    ] {
        let response = proxy.get(&format!("/-/console/assets/{asset}")).await;
        assert_eq!(response.status(), 200, "{asset}");
        assert_eq!(header(&response, "content-type"), content_type, "{asset}");
        assert_eq!(header(&response, "x-content-type-options"), "nosniff");
        assert_eq!(
            header(&response, "cross-origin-resource-policy"),
            "same-origin"
        );
        assert!(!response.bytes().await.unwrap().is_empty());
    }
    let missing = proxy.get("/-/console/assets/secrets.txt").await;
    assert_eq!(missing.status(), 404);
    assert_eq!(header(&missing, "x-token-proxy-error"), "unknown_route");
    let post = client()
        .post(format!("{}/-/console", proxy.url))
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 405);
    assert_eq!(header(&post, "x-token-proxy-error"), "method_not_allowed");
}

#[tokio::test]
async fn the_console_api_shows_routes_samples_and_token_states_but_never_a_token_or_secret() {
    let proxy = TestProxy::start(SimOptions::default()).await;
    // The token the proxy injects, as the simulated API received it.
    let echo: Value = proxy.get("/mde/_sim/echo").await.json().await.unwrap();
    let authorization = echo["headers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h[0] == "authorization")
        .and_then(|h| h[1].as_str())
        .unwrap()
        .to_owned();
    let token = authorization.strip_prefix("Bearer ").unwrap();

    let response = proxy.get("/-/console/api/overview").await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "cache-control"), "no-store");
    let text = response.text().await.unwrap();
    for api in ["/-/console/api/recent", "/-/status"] {
        let other = proxy.get(api).await.text().await.unwrap();
        assert!(!other.contains(token) && !other.contains(SECRET), "{api}");
    }
    assert!(!text.contains(token), "{text}");
    assert!(!text.contains(SECRET));
    assert!(!text.contains("eyJ"), "nothing like a JWT: {text}");

    let overview: Value = serde_json::from_str(&text).unwrap();
    let mde = &overview["routes"][0];
    assert_eq!(mde["prefix"], "/mde");
    assert_eq!(mde["credential"], "app");
    assert_eq!(mde["tenants"][0], "contoso.onmicrosoft.com");
    let samples: Vec<&str> = mde["samples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        samples,
        [
            "/mde/api/alerts?$top=3",
            "/mde/api/machines?$top=3",
            "/mde/api/advancedqueries/run"
        ]
    );
    let token_state = overview["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["scope"] == "https://api.securitycenter.microsoft.com/.default")
        .unwrap();
    assert_eq!(token_state["state"], "valid");
    assert!(token_state["expires_in_s"].as_u64().unwrap() > 0);
    assert_eq!(
        token_state["audience"],
        "https://api.securitycenter.microsoft.com"
    );
    assert!(token_state["roles"].is_array());
}

#[tokio::test]
async fn every_sample_answers_200_through_the_proxy() {
    let proxy = TestProxy::start(SimOptions::default()).await;
    let overview: Value = proxy
        .get("/-/console/api/overview")
        .await
        .json()
        .await
        .unwrap();
    let mut tried = 0;
    for route in overview["routes"].as_array().unwrap() {
        for sample in route["samples"].as_array().unwrap() {
            let url = format!("{}{}", proxy.url, sample["path"].as_str().unwrap());
            let request = match sample["method"].as_str().unwrap() {
                "POST" => client()
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(sample["body"].as_str().unwrap().to_owned()),
                _ => client().get(&url),
            };
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 200, "{url}");
            tried += 1;
        }
    }
    assert_eq!(tried, 9, "the samples of MDE, XDR, Graph and Cloud Apps");
}

#[tokio::test]
async fn cross_site_requests_to_the_console_are_refused_with_403_and_its_own_origin_passes() {
    let proxy = TestProxy::start(SimOptions::default()).await;
    // Another port of the same host is the same site, but another origin.
    let other = proxy.url.rsplit_once(':').unwrap().0.to_owned() + ":1";
    for path in [
        "/-/console",
        "/-/console/assets/console.js",
        "/-/console/api/overview",
        "/-/console/api/recent",
    ] {
        for (origin, site) in [
            (Some(other.as_str()), "same-site"),
            (Some("https://evil.example"), "cross-site"),
            (None, "cross-site"),
        ] {
            let mut request = client()
                .get(format!("{}{path}", proxy.url))
                .header("sec-fetch-site", site);
            if let Some(origin) = origin {
                request = request.header("origin", origin);
            }
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 403, "{path} from {origin:?}");
            assert_eq!(
                header(&response, "x-token-proxy-error"),
                "cross_site_request"
            );
            assert_eq!(header(&response, "access-control-allow-origin"), "");
        }
    }
    // The console's own POST carries its origin, and passes.
    let own = client()
        .post(format!("{}/mde/api/advancedqueries/run", proxy.url))
        .header("origin", &proxy.url)
        .header("sec-fetch-site", "same-origin")
        .header("content-type", "application/json")
        .body(r#"{"Query": "DeviceProcessEvents | take 3"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(own.status(), 200);
    let navigation = client()
        .get(format!("{}/-/console", proxy.url))
        .header("sec-fetch-site", "none")
        .send()
        .await
        .unwrap();
    assert_eq!(navigation.status(), 200);
}

#[tokio::test]
async fn the_recent_requests_list_has_no_query_values_and_not_the_consoles_own_calls() {
    let proxy = TestProxy::start(SimOptions::default()).await;
    let asked = proxy
        .get("/mde/api/alerts?$top=2&$filter=title%20eq%20%27project-nightingale%27")
        .await;
    assert_eq!(asked.status(), 200);
    assert_eq!(proxy.get("/nowhere/x?secret=swordfish").await.status(), 404);
    proxy.get("/-/status").await;
    let text = proxy
        .get("/-/console/api/recent")
        .await
        .text()
        .await
        .unwrap();
    assert!(!text.contains("nightingale") && !text.contains("swordfish"));
    assert!(!text.contains("$top") && !text.contains('?'), "{text}");
    let recent: Value = serde_json::from_str(&text).unwrap();
    let requests = recent["requests"].as_array().unwrap();
    let listed: Vec<(&str, &str, u64)> = requests
        .iter()
        .map(|r| {
            (
                r["method"].as_str().unwrap(),
                r["path"].as_str().unwrap(),
                r["status"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [("GET", "/nowhere/x", 404), ("GET", "/mde/api/alerts", 200)]
    );
    assert!(requests[1]["latency_ms"].as_f64().unwrap() > 0.0);
}

#[tokio::test]
async fn with_api_keys_the_page_loads_without_one_and_its_api_needs_it() {
    const KEY: &str = "console-key-0123456789";
    let proxy = TestProxy::start_with(SimOptions::default(), |sim| {
        mde_config(sim, &format!("api_keys = [\"{KEY}\"]"))
    })
    .await;
    assert_eq!(proxy.get("/-/console").await.status(), 200);
    assert_eq!(
        proxy.get("/-/console/assets/console.js").await.status(),
        200
    );
    for api in [
        "/-/console/api/overview",
        "/-/console/api/recent",
        "/-/status",
    ] {
        let refused = proxy.get(api).await;
        assert_eq!(refused.status(), 401, "{api}");
        let allowed = client()
            .get(format!("{}{api}", proxy.url))
            .header("x-api-key", KEY)
            .send()
            .await
            .unwrap();
        assert_eq!(allowed.status(), 200, "{api}");
        assert!(!allowed.text().await.unwrap().contains(KEY), "{api}");
    }
    // The page keeps the key in memory: no storage, no cookie.
    let script = proxy
        .get("/-/console/assets/console.js")
        .await
        .text()
        .await
        .unwrap();
    for storage in ["localStorage", "sessionStorage", "document.cookie"] {
        assert!(
            !script.contains(&format!("{storage}.")) && !script.contains(&format!("{storage}[")),
            "{storage}"
        );
    }
}
