use super::*;

#[test]
fn route_handles_count_by_status_class_and_encode_with_the_prefix() {
    let metrics = Metrics::default();
    let route = metrics.route("/mde");
    route.response(200);
    route.response(204);
    route.response(502);
    route.response(999);
    route.upstream_latency(Duration::from_millis(3));
    let text = metrics.encode(&[], true);
    assert!(
        text.contains(r#"defender_token_proxy_requests_total{route="/mde",status_class="2xx"} 2"#),
        "{text}"
    );
    assert!(
        text.contains(r#"defender_token_proxy_requests_total{route="/mde",status_class="5xx"} 2"#),
        "{text}"
    );
    assert!(
        text.contains("defender_token_proxy_upstream_duration_seconds_count{route=\"/mde\"} 1"),
        "{text}"
    );
    assert!(text.contains("defender_token_proxy_ready 1"), "{text}");
}
