//! Compressed upstream bodies: on a route that rewrites links the upstream is asked for gzip and
//! what it gzips is decoded and rewritten (Python's `requests` and `httpx` ask for gzip by
//! default, and Microsoft's APIs answer compressed); on a route that keeps its links a gzip body
//! passes byte for byte; a gzip body that does not decode ends the response with an error.

use defender_sim::SimOptions;
use futures_util::StreamExt;
use serde_json::Value;
use tokio::io::AsyncReadExt;

use crate::support::{TestProxy, client, echoed, mde_config};

/// What Python's `requests` sends.
const PYTHON_ACCEPT: &str = "gzip, deflate, br, zstd";

/// `GET url` with `Accept-Encoding: accept` (none if empty): the response's Content-Encoding and
/// Content-Length, and its body decoded as a client that asked would decode it.
async fn get(url: &str, accept: &str) -> (Option<String>, Option<u64>, Vec<u8>) {
    let mut request = client().get(url);
    if !accept.is_empty() {
        request = request.header("accept-encoding", accept);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200, "{url}");
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    let (encoding, length) = (header("content-encoding"), header("content-length"));
    let body = response.bytes().await.unwrap().to_vec();
    let body = match encoding.as_deref() {
        Some("gzip") => gunzip(&body).await,
        Some(other) => panic!("unexpected Content-Encoding {other}"),
        None => body,
    };
    (encoding, length.map(|l| l.parse().unwrap()), body)
}

async fn gunzip(compressed: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    async_compression::tokio::bufread::GzipDecoder::new(compressed)
        .read_to_end(&mut out)
        .await
        .unwrap();
    out
}

#[tokio::test]
async fn a_gzip_accepting_client_pages_through_the_proxy_while_the_upstream_is_asked_for_gzip() {
    let proxy = TestProxy::start(SimOptions::default()).await;
    let control = proxy.control();
    let mut url = format!("{}/graph/v1.0/security/alerts_v2?$top=7", proxy.url);
    let mut ids = Vec::new();
    loop {
        let (_, _, body) = get(&url, PYTHON_ACCEPT).await;
        let page: Value = serde_json::from_slice(&body).unwrap();
        ids.extend(
            page["value"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a["id"].as_str().unwrap().to_owned()),
        );
        match page["@odata.nextLink"].as_str() {
            Some(next) => {
                let ours = format!("{}/graph/v1.0/security/alerts_v2?", proxy.url);
                assert!(next.starts_with(&ours), "{next}");
                assert_eq!(
                    control.last_accept_encoding().as_deref(),
                    Some("gzip"),
                    "the upstream was asked for gzip, and only gzip"
                );
                url = next.to_owned();
            }
            None => break,
        }
    }
    assert_eq!(ids.len(), 23);
    let (_, _, body) = get(
        &format!("{}/graph/v1.0/security/alerts_v2/{}", proxy.url, ids[3]),
        PYTHON_ACCEPT,
    )
    .await;
    let alert: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(alert["id"], ids[3].as_str());
    assert_eq!(
        alert["@odata.context"],
        format!(
            "{}/graph/v1.0/$metadata#security/alerts_v2/$entity",
            proxy.url
        )
    );
    assert_eq!(
        control.unauthorized(),
        0,
        "every page went through the proxy"
    );
}

#[tokio::test]
async fn a_client_that_accepts_no_compression_gets_the_rewritten_body_decoded_without_a_stale_length()
 {
    let proxy = TestProxy::start_mde(SimOptions::default()).await;
    for accept in ["", "identity"] {
        let (encoding, length, body) =
            get(&format!("{}/mde/api/alerts?$top=5", proxy.url), accept).await;
        assert_eq!(
            proxy.control().last_accept_encoding().as_deref(),
            Some("gzip")
        );
        assert_eq!(encoding, None, "decoded for a client that did not ask");
        assert!(
            length.is_none_or(|length| length == body.len() as u64),
            "Content-Length {length:?} for {} bytes",
            body.len()
        );
        let page: Value = serde_json::from_slice(&body).unwrap();
        let next = page["@odata.nextLink"].as_str().unwrap();
        assert!(
            next.starts_with(&format!("{}/mde/api/alerts?", proxy.url)),
            "{next}"
        );
    }
    // A long streamed document, compressed as it is generated, decodes and rewrites whole.
    let (encoding, _, body) = get(&format!("{}/mde/_sim/links?count=20000", proxy.url), "").await;
    assert_eq!(encoding, None);
    let text = String::from_utf8(body).unwrap();
    assert!(
        !text.contains(&proxy.sim.mde()),
        "an upstream link got through"
    );
    assert_eq!(
        text.matches(&format!("{}/mde/api/alerts/", proxy.url))
            .count()
            + text
                .matches(&format!("{}/mde/api/alerts/", proxy.url).replace('/', "\\/"))
                .count(),
        20000
    );
    serde_json::from_str::<Value>(&text).unwrap();
}

#[tokio::test]
async fn a_gzip_body_passes_byte_for_byte_on_a_route_that_keeps_its_links() {
    let proxy = TestProxy::start_with(SimOptions::default(), |sim| {
        format!("{}rewrite_links = false\n", mde_config(sim, ""))
    })
    .await;
    let accept = "gzip;q=1.0, identity;q=0.5";
    let proxied = client()
        .get(format!("{}/mde/api/alerts?$top=5", proxy.url))
        .header("accept-encoding", accept)
        .send()
        .await
        .unwrap();
    assert_eq!(
        proxy.control().last_accept_encoding().as_deref(),
        Some(accept),
        "the client's own Accept-Encoding went upstream"
    );
    assert_eq!(proxied.headers()["content-encoding"], "gzip");
    let proxied = proxied.bytes().await.unwrap();

    // The same request straight to the simulator, with the token the proxy injects.
    let echo: Value = proxy.get("/mde/_sim/echo").await.json().await.unwrap();
    let authorization = echoed(&echo, "authorization").remove(0);
    let direct = client()
        .get(format!("{}/api/alerts?$top=5", proxy.sim.mde()))
        .header("authorization", authorization)
        .header("accept-encoding", accept)
        .send()
        .await
        .unwrap();
    assert_eq!(direct.headers()["content-encoding"], "gzip");
    assert_eq!(proxied, direct.bytes().await.unwrap(), "byte for byte");
    let page: Value = serde_json::from_slice(&gunzip(&proxied).await).unwrap();
    assert!(
        page["@odata.nextLink"]
            .as_str()
            .unwrap()
            .starts_with(&proxy.sim.mde())
    );
}

#[tokio::test]
async fn a_gzip_body_that_is_not_json_stays_compressed_for_a_client_that_takes_gzip_and_is_decoded_for_others()
 {
    let proxy = TestProxy::start_mde(SimOptions::default()).await;
    let url = format!("{}/mde/_sim/gzip/text", proxy.url);
    let expected = format!("plain text, not JSON: {}/api/alerts\n", proxy.sim.mde()).repeat(20);
    let (encoding, _, body) = get(&url, PYTHON_ACCEPT).await;
    assert_eq!(encoding.as_deref(), Some("gzip"), "passed compressed");
    assert_eq!(
        String::from_utf8(body).unwrap(),
        expected,
        "and not rewritten"
    );
    let (encoding, length, body) = get(&url, "").await;
    assert_eq!(encoding, None, "decoded for a client that did not ask");
    assert!(
        length.is_none_or(|length| length == body.len() as u64),
        "{length:?}"
    );
    assert_eq!(String::from_utf8(body).unwrap(), expected);
}

#[tokio::test]
async fn a_gzip_body_that_does_not_decode_ends_the_response_with_an_error_and_no_link_half_sent() {
    let proxy = TestProxy::start_mde(SimOptions::default()).await;
    for (fault, accept) in [
        ("truncated", ""),
        ("truncated", PYTHON_ACCEPT),
        ("corrupt", PYTHON_ACCEPT),
    ] {
        let mut request = client().get(format!("{}/mde/_sim/gzip/{fault}", proxy.url));
        if !accept.is_empty() {
            request = request.header("accept-encoding", accept);
        }
        let (mut received, mut failed) = (Vec::new(), false);
        // A body that fails before its first byte may take the response head with it.
        match request.send().await {
            Err(_) => failed = true,
            Ok(response) => {
                assert_eq!(response.status(), 200, "{fault}");
                assert!(response.headers().get("content-encoding").is_none());
                let mut body = response.bytes_stream();
                while let Some(chunk) = body.next().await {
                    match chunk {
                        Ok(chunk) => received.extend_from_slice(&chunk),
                        Err(_) => {
                            failed = true;
                            break;
                        }
                    }
                }
            }
        }
        let received = String::from_utf8_lossy(&received);
        assert!(failed, "{fault}: the body ended as if whole: {received}");
        assert!(
            !received.contains("\"@odata.nextLink\":\"h"),
            "{fault}: a piece of a link went out: {received}"
        );
    }
    // The proxy carries on.
    let (_, _, body) = get(
        &format!("{}/mde/api/alerts?$top=1", proxy.url),
        PYTHON_ACCEPT,
    )
    .await;
    assert!(serde_json::from_slice::<Value>(&body).unwrap()["value"].is_array());
}
