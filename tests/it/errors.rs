//! Errors the proxy makes itself: problem+json bodies with a stable kind, the
//! `x-token-proxy-error` header, the right status, and nothing sent upstream without a token.

use std::time::Duration;

use defender_sim::{EntraFault, Sim, SimOptions};
use serde_json::Value;

use crate::support::{TestProxy, mde_config};

const ERROR_HEADER: &str = "x-token-proxy-error";

async fn problem(response: reqwest::Response) -> (u16, String, Value) {
    let status = response.status().as_u16();
    let kind = response
        .headers()
        .get(ERROR_HEADER)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json",
        "status {status}"
    );
    let text = response.text().await.unwrap();
    assert!(text.ends_with('\n'), "status {status}: {text:?}");
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["kind"], kind.as_str());
    assert_eq!(body["status"], status);
    (status, kind, body)
}

#[tokio::test]
async fn an_entra_rejection_gives_502_with_the_aadsts_code_and_nothing_reaches_the_upstream() {
    let proxy = TestProxy::start_with(SimOptions::default(), |sim| {
        mde_config(sim, "").replace("{ env = \"SECRET\" }", "\"wrong-secret\"")
    })
    .await;
    let (status, kind, body) = problem(proxy.get("/mde/api/alerts").await).await;
    // The warm-up at start-up may have failed first, in which case this request finds the proxy
    // backing off: 503 with the same Entra error.
    assert!(
        (status, kind.as_str()) == (502, "token_rejected")
            || (status, kind.as_str()) == (503, "token_backing_off"),
        "{status} {kind}"
    );
    assert_eq!(body["aadsts"], serde_json::json!([7000215]));
    assert_eq!(body["entra_error"], "invalid_client");
    assert_eq!(body["credential"], "app");
    assert!(
        body["detail"].as_str().unwrap().contains("AADSTS7000215"),
        "{body}"
    );
    assert!(!body.to_string().contains("wrong-secret"));
    assert_eq!(proxy.control().api_requests(), 0);

    // Within the backoff, requests are answered at once without asking Entra again.
    let before = proxy.control().token_requests();
    let response = proxy.get("/mde/api/alerts").await;
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry_after), "{retry_after}");
    let (status, kind, body) = problem(response).await;
    assert_eq!((status, kind.as_str()), (503, "token_backing_off"));
    assert_eq!(body["aadsts"], serde_json::json!([7000215]));
    assert_eq!(proxy.control().token_requests(), before);
    assert_eq!(proxy.control().api_requests(), 0);
}

#[tokio::test]
async fn the_first_request_after_a_rejection_reports_it_as_502() {
    let proxy = TestProxy::start_with(SimOptions::default(), |sim| {
        mde_config(sim, "").replace("{ env = \"SECRET\" }", "\"wrong-secret\"")
    })
    .await;
    // Wait out the warm-up's failure and its backoff; the next request asks Entra itself.
    assert!(
        proxy
            .control()
            .wait_for_token_requests(1, Duration::from_secs(5))
            .await
    );
    let ready = crate::support::eventually(Duration::from_secs(5), || async {
        let response = proxy.get("/mde/api/alerts").await;
        response.status() == 502
    })
    .await;
    assert!(
        ready,
        "a request after the backoff gets Entra's answer: 502"
    );
}

#[tokio::test]
async fn entra_throttling_gives_503_with_entras_retry_after() {
    let sim = Sim::start(SimOptions::default()).await.unwrap();
    sim.control().set_fault(Some(EntraFault::Throttled {
        retry_after: Duration::from_secs(17),
    }));
    let proxy = TestProxy::start_on(sim, |sim| mde_config(sim, "")).await;
    let response = proxy.get("/mde/api/alerts").await;
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((16..=17).contains(&retry_after), "{retry_after}");
    let (status, kind, _) = problem(response).await;
    assert_eq!(status, 503);
    assert!(
        kind == "token_throttled" || kind == "token_backing_off",
        "{kind}"
    );
}

#[tokio::test]
async fn entra_failures_map_to_distinct_kinds() {
    for (fault, status, kind, token_timeout) in [
        (EntraFault::ServerError, 502, "token_endpoint_failed", ""),
        (
            EntraFault::MalformedJson,
            502,
            "token_response_malformed",
            "",
        ),
        (
            EntraFault::Delay(Duration::from_secs(3)),
            504,
            "token_endpoint_timeout",
            "token_timeout = \"300ms\"",
        ),
    ] {
        let sim = Sim::start(SimOptions::default()).await.unwrap();
        sim.control().set_fault(Some(fault));
        let proxy = TestProxy::start_on(sim, |sim| mde_config(sim, token_timeout)).await;
        let (got_status, got_kind, body) = problem(proxy.get("/mde/api/alerts").await).await;
        // Either this request's own fetch failed, or it found the warm-up's failure backing off.
        if got_kind == "token_backing_off" {
            assert_eq!(got_status, 503);
            assert!(body["detail"].as_str().unwrap().len() > 10);
        } else {
            assert_eq!((got_status, got_kind.as_str()), (status, kind), "{body}");
        }
        assert_eq!(proxy.control().api_requests(), 0);
    }
}

#[tokio::test]
async fn token_answers_that_cannot_be_used_fail_with_a_reason_and_back_off() {
    for answer in [
        r#"{"token_type":"Bearer","expires_in":9223372036854775808,"access_token":"a"}"#,
        r#"{"token_type":"Bearer","expires_in":18446744073709551615,"access_token":"a"}"#,
        r#"{"token_type":"Bearer","expires_in":3599,"access_token":""}"#,
        r#"{"token_type":"Bearer","expires_in":0,"access_token":"a"}"#,
        r#"{"token_type":"Bearer","expires_on":"1000","access_token":"a"}"#,
    ] {
        let sim = Sim::start(SimOptions::default()).await.unwrap();
        sim.control()
            .set_fault(Some(EntraFault::Answer(answer.to_owned())));
        let proxy = TestProxy::start_on(sim, |sim| mde_config(sim, "")).await;
        for _ in 0..5 {
            let (status, kind, body) = problem(proxy.get("/mde/api/alerts").await).await;
            assert!(
                (status, kind.as_str()) == (502, "token_response_malformed")
                    || (status, kind.as_str()) == (503, "token_backing_off"),
                "{answer}: {status} {kind} {body}"
            );
        }
        // The failure is recorded and backed off: the warm-up and at most one request asked Entra,
        // not each of the five.
        assert!(
            proxy.control().token_requests() <= 2,
            "{answer}: {} token requests",
            proxy.control().token_requests()
        );
        assert_eq!(proxy.control().api_requests(), 0);
    }
}

#[tokio::test]
async fn an_unreachable_entra_gives_502() {
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let proxy = TestProxy::start_with(SimOptions::default(), |sim| {
        mde_config(sim, "").replace(&sim.authority(), &format!("http://{closed}"))
    })
    .await;
    let (status, kind, _) = problem(proxy.get("/mde/api/alerts").await).await;
    assert!(
        (status, kind.as_str()) == (502, "token_endpoint_unreachable")
            || (status, kind.as_str()) == (503, "token_backing_off"),
        "{status} {kind}"
    );
}

#[tokio::test]
async fn an_unknown_prefix_gets_404_listing_the_configured_prefixes() {
    let proxy = TestProxy::start(SimOptions::default()).await;
    for path in ["/nope/api/alerts", "/mdex/api", "/", "/-/unknown"] {
        let (status, kind, body) = problem(proxy.get(path).await).await;
        assert_eq!((status, kind.as_str()), (404, "unknown_route"), "{path}");
        assert_eq!(
            body["prefixes"],
            serde_json::json!(["/mde", "/xdr", "/graph", "/mdca"])
        );
    }
}

#[tokio::test]
async fn an_unreachable_upstream_gives_502() {
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let proxy = TestProxy::start_with(SimOptions::default(), |sim| {
        mde_config(sim, "").replace(&sim.mde(), &format!("http://{closed}"))
    })
    .await;
    let (status, kind, _) = problem(proxy.get("/mde/api/alerts").await).await;
    assert_eq!((status, kind.as_str()), (502, "upstream_unreachable"));
}

#[tokio::test]
async fn a_slow_upstream_gives_504() {
    let proxy = TestProxy::start_with(SimOptions::default(), |sim| {
        mde_config(sim, "upstream_timeout = \"200ms\"")
    })
    .await;
    let (status, kind, _) = problem(proxy.get("/mde/_sim/slow?ms=3000").await).await;
    assert_eq!((status, kind.as_str()), (504, "upstream_timeout"));
    assert_eq!(proxy.get("/mde/_sim/slow?ms=1").await.status(), 200);
}

#[tokio::test]
async fn the_upstreams_own_errors_pass_through_unmarked() {
    let proxy = TestProxy::start_mde(SimOptions::default()).await;
    // 429 last: it holds the route for its Retry-After.
    for code in [400u16, 403, 404, 500, 503, 429] {
        let response = proxy.get(&format!("/mde/_sim/status/{code}")).await;
        assert_eq!(response.status().as_u16(), code);
        assert!(response.headers().get(ERROR_HEADER).is_none(), "{code}");
        if code == 429 {
            assert_eq!(response.headers()["retry-after"], "7");
        }
    }
}

#[tokio::test]
async fn the_proxys_own_endpoints_answer_any_other_method_or_path_with_a_problem_on_both_listeners()
{
    let proxy = TestProxy::start_with(SimOptions::default(), |sim| mde_config(sim, "")).await;
    let client = crate::support::client();
    for base in [&proxy.url, &proxy.admin_url] {
        for (method, path) in [
            (reqwest::Method::POST, "/-/ready"),
            (reqwest::Method::DELETE, "/-/healthy"),
            (reqwest::Method::PUT, "/-/metrics"),
            (reqwest::Method::PATCH, "/-/status"),
        ] {
            let response = client
                .request(method.clone(), format!("{base}{path}"))
                .send()
                .await
                .unwrap();
            let allow = response.headers()["allow"].to_str().unwrap().to_owned();
            assert!(allow.contains("GET"), "{method} {path}: {allow}");
            let (status, kind, body) = problem(response).await;
            assert_eq!((status, kind.as_str()), (405, "method_not_allowed"));
            assert!(body["title"].as_str().unwrap().contains(path), "{body}");
        }
    }
    let (status, kind, _) = problem(proxy.admin("/mde/api/alerts").await).await;
    assert_eq!((status, kind.as_str()), (404, "no_endpoint"));
    let (status, kind, _) = problem(proxy.get("/nowhere").await).await;
    assert_eq!((status, kind.as_str()), (404, "unknown_route"));
    // The endpoints' own JSON ends with a newline too, for the shell prompt's sake.
    for path in ["/-/healthy", "/-/ready", "/-/status"] {
        let text = proxy.admin(path).await.text().await.unwrap();
        assert!(text.ends_with("}\n"), "{path}: {text:?}");
    }
    assert_eq!(proxy.control().api_requests(), 0);
}
