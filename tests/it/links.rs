//! Pagination stays behind the proxy: absolute links to the upstream in JSON bodies and `Location`
//! come back pointing at the proxy, foreign links (storage downloads) stay as they are, and large
//! JSON bodies are rewritten as they stream.

use defender_sim::SimOptions;
use futures_util::StreamExt;
use serde_json::Value;

use crate::support::{TestProxy, client, mde_config, resident_bytes};

#[tokio::test]
async fn next_links_lead_back_through_the_proxy_until_the_last_page() {
    let proxy = TestProxy::start_mde(SimOptions::default()).await;
    let mut url = format!("{}/mde/api/alerts?$top=5", proxy.url);
    let mut ids = Vec::new();
    let mut pages = 0;
    loop {
        let page: Value = client()
            .get(&url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        pages += 1;
        assert!(
            page["@odata.context"]
                .as_str()
                .unwrap()
                .starts_with(&format!("{}/mde/", proxy.url)),
            "{page}"
        );
        ids.extend(
            page["value"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a["id"].as_str().unwrap().to_owned()),
        );
        match page["@odata.nextLink"].as_str() {
            Some(next) => {
                assert!(
                    next.starts_with(&format!("{}/mde/api/alerts?", proxy.url)),
                    "{next}"
                );
                url = next.to_owned();
            }
            None => break,
        }
    }
    assert_eq!(pages, 5);
    assert_eq!(ids.len(), 23);
    assert_eq!(
        proxy.control().unauthorized(),
        0,
        "every page went through the proxy"
    );
}

#[tokio::test]
async fn storage_links_are_left_alone_and_location_is_rewritten() {
    let proxy = TestProxy::start_mde(SimOptions::default()).await;
    let export: Value = proxy
        .get("/mde/api/machines/SoftwareVulnerabilitiesExport")
        .await
        .json()
        .await
        .unwrap();
    for file in export["exportFiles"].as_array().unwrap() {
        let file = file.as_str().unwrap();
        assert!(
            file.starts_with("https://wdatpexport.blob.core.windows.net/") && file.contains("sig="),
            "{file}"
        );
    }
    assert!(
        export["@odata.context"]
            .as_str()
            .unwrap()
            .starts_with(&proxy.url)
    );

    let redirect = proxy.get("/mde/_sim/redirect").await;
    assert_eq!(redirect.status(), 302);
    assert_eq!(
        redirect.headers()["location"],
        format!("{}/mde/_sim/echo", proxy.url).as_str()
    );
}

#[tokio::test]
async fn a_route_can_keep_its_links_as_they_are() {
    let proxy = TestProxy::start_with(SimOptions::default(), |sim| {
        format!("{}rewrite_links = false\n", mde_config(sim, ""))
    })
    .await;
    let page: Value = proxy
        .get("/mde/api/alerts?$top=5")
        .await
        .json()
        .await
        .unwrap();
    assert!(
        page["@odata.nextLink"]
            .as_str()
            .unwrap()
            .starts_with(&proxy.sim.mde())
    );
}

#[tokio::test]
async fn a_large_json_body_is_rewritten_as_it_streams_with_bounded_memory() {
    let proxy = TestProxy::start_mde(SimOptions::default()).await;
    const COUNT: u64 = 600_000;
    let response = proxy.get(&format!("/mde/_sim/links?count={COUNT}")).await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers().get("content-length").is_none(),
        "the rewritten body is chunked"
    );
    let upstream = proxy.sim.mde();
    let ours = format!("{}/mde/api/alerts/", proxy.url);
    let ours_escaped = ours.replace('/', "\\/");
    let baseline = resident_bytes();
    let (mut peak, mut total, mut ours_seen, mut storage_seen) = (baseline, 0usize, 0usize, 0usize);
    let mut tail = String::new();
    let mut body = response.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.unwrap();
        total += chunk.len();
        // Scan each chunk with the end of the previous one, counting only matches that end in
        // the new part, so that nothing is counted twice.
        let text = format!("{tail}{}", String::from_utf8_lossy(&chunk));
        let fresh = |needle: &str| {
            text.match_indices(needle)
                .filter(|(i, _)| i + needle.len() > tail.len())
                .count()
        };
        assert_eq!(fresh(&upstream), 0, "an upstream link got through");
        ours_seen += fresh(&ours) + fresh(&ours_escaped);
        storage_seen += fresh("https://wdatpexport.blob.core.windows.net/x/");
        tail = text[text.len().saturating_sub(200)..].to_owned();
        if total % (8 << 20) < chunk.len() {
            peak = peak.max(resident_bytes());
        }
    }
    assert!(total > 80 << 20, "{total} bytes");
    assert_eq!(ours_seen as u64, COUNT);
    assert_eq!(storage_seen as u64, COUNT);
    let growth = peak.saturating_sub(baseline);
    eprintln!(
        "{total} bytes of JSON rewritten: resident memory grew by {} KiB",
        growth >> 10
    );
    assert!(
        growth < 64 << 20,
        "resident memory grew by {} MiB",
        growth >> 20
    );
}
