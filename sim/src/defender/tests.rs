//! Tests of the simulated APIs: the token check, OData paging, and the data endpoints.

use std::time::Duration;

use serde_json::{Value, json};

use super::super::test_support::{MDE_SCOPE, access_token, get_json, http};
use super::super::{Sim, SimOptions};

#[tokio::test]
async fn whoami_describes_an_app_token() {
    let sim = Sim::start(SimOptions::default()).await.expect("sim");
    let token = access_token(&sim, "https://graph.microsoft.com/.default").await;
    let (status, me) = get_json(&format!("{}/_sim/whoami", sim.graph()), &token).await;
    assert_eq!(status, 200);
    assert_eq!(me["scheme"], "Bearer");
    assert_eq!(me["tid"], SimOptions::default().tenant_id.as_str());
    assert_eq!(me["appid"], super::super::test_support::CLIENT_ID);
    assert_eq!(me["idtyp"], "app");
    assert_eq!(me["roles"][0], "Alert.Read.All");
    assert!(me["oid"].is_string() && me["scp"].is_null() && me["upn"].is_null());
}

#[tokio::test]
async fn legacy_mdca_api_token_passes_every_mdca_endpoint_and_nothing_else() {
    let options = SimOptions {
        mdca_api_tokens: vec!["legacy-key-1".to_owned()],
        ..SimOptions::default()
    };
    let sim = Sim::start(options).await.expect("sim");
    let get = |url: String, authorization: &'static str| async move {
        let response = http()
            .get(url)
            .header("authorization", authorization)
            .send()
            .await
            .expect("send");
        let status = response.status().as_u16();
        (status, response.json::<Value>().await.expect("json"))
    };
    let (status, me) = get(format!("{}/_sim/whoami", sim.mdca()), "Token legacy-key-1").await;
    assert_eq!((status, me), (200, json!({"scheme": "Token"})));
    let (status, alerts) = get(
        format!("{}/api/v1/alerts/", sim.mdca()),
        "token legacy-key-1",
    )
    .await;
    assert_eq!(status, 200);
    assert!(alerts["data"].is_array());
    let (status, body) = get(format!("{}/api/v1/alerts/", sim.mdca()), "Token other-key").await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["code"], "Unauthorized");
    assert_eq!(
        get(format!("{}/_sim/whoami", sim.mde()), "Token legacy-key-1")
            .await
            .0,
        401
    );
    assert_eq!(sim.control().unauthorized(), 2);
}

#[tokio::test]
async fn api_request_without_a_token_is_refused_with_401_in_defender_shape() {
    let sim = Sim::start(SimOptions::default()).await.expect("sim");
    let response = http()
        .get(format!("{}/api/alerts", sim.mde()))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status().as_u16(), 401);
    assert_eq!(response.headers()["www-authenticate"], "Bearer");
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["error"]["code"], "Unauthorized");
    assert!(body["error"]["target"].is_string());
    let control = sim.control();
    assert_eq!(
        (
            control.api_requests(),
            control.unauthorized(),
            control.expired_tokens_seen()
        ),
        (1, 1, 0)
    );
}

#[tokio::test]
async fn api_request_with_a_token_for_another_audience_is_refused() {
    let sim = Sim::start(SimOptions::default()).await.expect("sim");
    let mde_token = access_token(&sim, MDE_SCOPE).await;
    let (status, body) = get_json(
        &format!("{}/v1.0/security/alerts_v2", sim.graph()),
        &mde_token,
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["code"], "InvalidAuthenticationToken");
    assert!(body["error"]["innerError"]["request-id"].is_string());
    let (status, _) = get_json(&format!("{}/api/alerts", sim.mde()), "not.a.jwt").await;
    assert_eq!(status, 401);
    assert_eq!(sim.control().unauthorized(), 2);
}

#[tokio::test]
async fn api_request_with_an_expired_token_is_refused_and_counted_as_expired() {
    let options = SimOptions {
        token_lifetime: Duration::from_secs(1),
        ..SimOptions::default()
    };
    let sim = Sim::start(options).await.expect("sim");
    let token = access_token(&sim, MDE_SCOPE).await;
    let url = format!("{}/api/machines", sim.mde());
    assert_eq!(get_json(&url, &token).await.0, 200);
    // Bounded poll: the token lives 1 s; give up after 10 s.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let status = loop {
        let (status, _) = get_json(&url, &token).await;
        if status != 200 || tokio::time::Instant::now() > deadline {
            break status;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(status, 401);
    assert_eq!(sim.control().expired_tokens_seen(), 1);
}

#[tokio::test]
async fn revoked_tokens_are_refused_and_new_ones_accepted() {
    let sim = Sim::start(SimOptions::default()).await.expect("sim");
    let url = format!("{}/api/incidents", sim.xdr());
    let old = access_token(&sim, "https://api.security.microsoft.com/.default").await;
    sim.control().revoke_all_tokens();
    assert_eq!(get_json(&url, &old).await.0, 401);
    let new = access_token(&sim, "https://api.security.microsoft.com/.default").await;
    assert_eq!(get_json(&url, &new).await.0, 200);
    assert_eq!(sim.control().expired_tokens_seen(), 0);
}

#[tokio::test]
async fn next_link_paging_walks_all_23_alerts() {
    let sim = Sim::start(SimOptions::default()).await.expect("sim");
    let token = access_token(&sim, MDE_SCOPE).await;
    let mut url = format!("{}/api/alerts", sim.mde());
    let mut ids = Vec::new();
    let mut pages = 0;
    loop {
        let (status, body) = get_json(&url, &token).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            body["@odata.context"],
            format!("{}/api/$metadata#Alerts", sim.mde())
        );
        ids.extend(
            body["value"]
                .as_array()
                .expect("value")
                .iter()
                .map(|a| a["id"].clone()),
        );
        pages += 1;
        match body["@odata.nextLink"].as_str() {
            Some(next) => {
                assert!(
                    next.starts_with(&format!("{}/api/alerts?$top=5&$skiptoken=", sim.mde())),
                    "{next}"
                );
                url = next.to_owned();
            }
            None => break,
        }
    }
    assert_eq!((ids.len(), pages), (23, 5));
    ids.dedup();
    assert_eq!(ids.len(), 23);
}

#[tokio::test]
async fn odata_top_and_skip_are_honoured_and_oversized_top_is_refused() {
    let sim = Sim::start(SimOptions::default()).await.expect("sim");
    let token = access_token(&sim, "https://graph.microsoft.com/.default").await;
    let url = format!("{}/v1.0/security/alerts_v2?$top=20&$skip=10", sim.graph());
    let (status, body) = get_json(&url, &token).await;
    assert_eq!(
        (status, body["value"].as_array().map(Vec::len)),
        (200, Some(13))
    );
    assert!(body.get("@odata.nextLink").is_none());
    assert_eq!(
        body["@odata.context"],
        format!("{}/v1.0/$metadata#security/alerts_v2", sim.graph())
    );
    let (status, _) = get_json(
        &format!("{}/v1.0/security/incidents?$top=10001", sim.graph()),
        &token,
    )
    .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn single_items_are_found_by_id_and_unknown_ids_are_404() {
    let sim = Sim::start(SimOptions::default()).await.expect("sim");
    let token = access_token(&sim, MDE_SCOPE).await;
    let (_, list) = get_json(&format!("{}/api/machines?$top=1", sim.mde()), &token).await;
    let id = list["value"][0]["id"].as_str().expect("id").to_owned();
    let (status, machine) = get_json(&format!("{}/api/machines/{id}", sim.mde()), &token).await;
    assert_eq!((status, machine["id"].as_str()), (200, Some(id.as_str())));
    let (status, body) = get_json(&format!("{}/api/alerts/da000", sim.mde()), &token).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("ResourceNotFound"))
    );
    let (status, _) = get_json(&format!("{}/api/nothing-here", sim.mde()), &token).await;
    assert_eq!(status, 404);
    let xdr = access_token(&sim, "https://api.security.microsoft.com/.default").await;
    let (status, incident) = get_json(&format!("{}/api/incidents/1003", sim.xdr()), &xdr).await;
    assert_eq!((status, incident["incidentId"].as_u64()), (200, Some(1003)));
    assert_eq!(
        incident["@odata.context"],
        format!("{}/api/$metadata#Incidents/$entity", sim.xdr())
    );
}

#[tokio::test]
async fn advanced_hunting_needs_the_case_sensitive_query_key() {
    let sim = Sim::start(SimOptions::default()).await.expect("sim");
    let token = access_token(&sim, "https://api.security.microsoft.com/.default").await;
    let url = format!("{}/api/advancedhunting/run", sim.xdr());
    let post = |body: Value| http().post(&url).bearer_auth(&token).json(&body).send();
    let answer: Value = post(json!({"Query": "DeviceProcessEvents | take 3"}))
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(answer["Results"].as_array().map(Vec::len), Some(3));
    assert!(answer["Schema"].is_array() && answer["Stats"].is_object());
    assert_eq!(
        post(json!({"query": "x"}))
            .await
            .expect("send")
            .status()
            .as_u16(),
        400
    );
}

#[tokio::test]
async fn mdca_pages_by_request_body() {
    let sim = Sim::start(SimOptions::default()).await.expect("sim");
    let token = access_token(&sim, "05a65629-4c1b-48c1-a78b-804c4abdd4af/.default").await;
    let url = format!("{}/api/v1/alerts/", sim.mdca());
    let page: Value = http()
        .post(&url)
        .bearer_auth(&token)
        .json(&json!({"skip": 10, "limit": 3}))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(
        (page["total"].as_u64(), page["hasNext"].as_bool()),
        (Some(14), Some(true))
    );
    assert_eq!(page["data"].as_array().map(Vec::len), Some(3));
}

/// `GET url` with `Accept-Encoding: accept`: the status, `Content-Encoding`, and the body as sent.
async fn get_encoded(url: &str, token: &str, accept: &str) -> (u16, Option<String>, Vec<u8>) {
    let response = http()
        .get(url)
        .bearer_auth(token)
        .header("accept-encoding", accept)
        .send()
        .await
        .expect("send");
    let status = response.status().as_u16();
    let encoding = response
        .headers()
        .get("content-encoding")
        .map(|v| v.to_str().expect("ascii").to_owned());
    let body = response.bytes().await.expect("body").to_vec();
    (status, encoding, body)
}

async fn gunzip(compressed: &[u8]) -> std::io::Result<Vec<u8>> {
    use tokio::io::AsyncReadExt;
    let mut decoded = Vec::new();
    async_compression::tokio::bufread::GzipDecoder::new(compressed)
        .read_to_end(&mut decoded)
        .await?;
    Ok(decoded)
}

#[tokio::test]
async fn json_is_gzipped_for_clients_that_ask_and_sent_plain_to_others() {
    let sim = Sim::start(SimOptions::default()).await.expect("sim");
    let token = access_token(&sim, MDE_SCOPE).await;
    let url = format!("{}/api/alerts?$top=2", sim.mde());
    let (status, encoding, body) = get_encoded(&url, &token, "gzip, deflate").await;
    assert_eq!((status, encoding.as_deref()), (200, Some("gzip")));
    assert_eq!(
        sim.control().last_accept_encoding().as_deref(),
        Some("gzip, deflate")
    );
    let page: Value = serde_json::from_slice(&gunzip(&body).await.expect("gzip")).expect("json");
    assert_eq!(page["value"].as_array().map(Vec::len), Some(2));
    assert!(page["@odata.nextLink"].is_string());

    let (status, encoding, body) = get_encoded(&url, &token, "identity").await;
    assert_eq!((status, encoding), (200, None));
    assert_eq!(serde_json::from_slice::<Value>(&body).expect("json"), page);
    let (_, encoding, _) = get_encoded(&url, &token, "gzip;q=0").await;
    assert_eq!(encoding, None, "q=0 refuses gzip");

    // Errors are JSON too; the pattern bytes are not compressed.
    let (status, encoding, _) = get_encoded(&url, "not.a.jwt", "gzip").await;
    assert_eq!((status, encoding.as_deref()), (401, Some("gzip")));
    let bytes = format!("{}/_sim/bytes?size=1000", sim.mde());
    let (status, encoding, body) = get_encoded(&bytes, &token, "gzip").await;
    assert_eq!((status, encoding, body.len()), (200, None, 1000));
}

#[tokio::test]
async fn graph_alerts_page_with_absolute_next_links_and_are_found_by_id() {
    let sim = Sim::start(SimOptions::default()).await.expect("sim");
    let token = access_token(&sim, "https://graph.microsoft.com/.default").await;
    let mut url = format!("{}/v1.0/security/alerts_v2", sim.graph());
    let mut ids = Vec::new();
    loop {
        let (status, page) = get_json(&url, &token).await;
        assert_eq!(status, 200, "{page}");
        ids.extend(
            page["value"]
                .as_array()
                .expect("value")
                .iter()
                .map(|a| a["id"].as_str().expect("id").to_owned()),
        );
        match page["@odata.nextLink"].as_str() {
            Some(next) => {
                let prefix = format!("{}/v1.0/security/alerts_v2?$top=5&$skiptoken=", sim.graph());
                assert!(next.starts_with(&prefix), "{next}");
                url = next.to_owned();
            }
            None => break,
        }
    }
    assert_eq!(ids.len(), 23);
    let (status, alert) = get_json(
        &format!("{}/v1.0/security/alerts_v2/{}", sim.graph(), ids[7]),
        &token,
    )
    .await;
    assert_eq!((status, alert["id"].as_str()), (200, Some(ids[7].as_str())));
    assert_eq!(
        alert["@odata.context"],
        format!("{}/v1.0/$metadata#security/alerts_v2/$entity", sim.graph())
    );
    let (status, missing) = get_json(
        &format!("{}/v1.0/security/alerts_v2/no-such-alert", sim.graph()),
        &token,
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(missing["error"]["code"], "ResourceNotFound");
    assert!(missing["error"]["innerError"]["request-id"].is_string());
}

#[tokio::test]
async fn sim_gzip_bodies_are_announced_as_gzip_and_decode_whole_or_fail() {
    let sim = Sim::start(SimOptions::default()).await.expect("sim");
    let token = access_token(&sim, MDE_SCOPE).await;
    let url = format!("{}/_sim/gzip/text", sim.mde());
    let (status, encoding, body) = get_encoded(&url, &token, "identity").await;
    assert_eq!((status, encoding.as_deref()), (200, Some("gzip")));
    let text = String::from_utf8(gunzip(&body).await.expect("a whole gzip stream")).expect("utf-8");
    assert!(
        text.starts_with(&format!("plain text, not JSON: {}/api/alerts\n", sim.mde())),
        "{text}"
    );
    for fault in ["truncated", "corrupt"] {
        let url = format!("{}/_sim/gzip/{fault}", sim.mde());
        let response = http()
            .get(&url)
            .bearer_auth(&token)
            .send()
            .await
            .expect("send");
        assert_eq!(response.status().as_u16(), 200);
        assert_eq!(response.headers()["content-encoding"], "gzip");
        let body = response
            .bytes()
            .await
            .expect("the transfer itself is whole");
        let decoded = gunzip(&body).await;
        assert!(decoded.is_err(), "{fault}: {decoded:?}");
    }
    // The truncated one decodes up to the middle of its link's port.
    let (_, _, body) = get_encoded(
        &format!("{}/_sim/gzip/truncated", sim.mde()),
        &token,
        "gzip",
    )
    .await;
    let mut partial = Vec::new();
    let mut decoder = async_compression::tokio::bufread::GzipDecoder::new(&body[..]);
    let _ = tokio::io::AsyncReadExt::read_to_end(&mut decoder, &mut partial).await;
    let text = String::from_utf8(partial).expect("utf-8");
    let port = sim.mde().rsplit_once(':').expect("port").1.to_owned();
    assert!(
        text.ends_with(&format!(
            "\"@odata.nextLink\":\"http://127.0.0.1:{}",
            &port[..1]
        )),
        "{text}"
    );
}
