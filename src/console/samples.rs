//! Sample requests per API preset, for the console to start from. Each path is one Microsoft
//! documents, and one the simulator serves, so that they all answer in `demo`.

use crate::cloud::Api;

/// A sample request: what it shows, the method, the path after the route prefix (with its query),
/// and the JSON body of a POST.
#[derive(Debug, Clone, Copy)]
pub(super) struct Sample {
    pub(super) title: &'static str,
    pub(super) method: &'static str,
    pub(super) path: &'static str,
    pub(super) body: Option<&'static str>,
}

const fn get(title: &'static str, path: &'static str) -> Sample {
    Sample {
        title,
        method: "GET",
        path,
        body: None,
    }
}

/// The Kusto query the hunting samples run.
const HUNTING: &str = r#"{"Query": "DeviceProcessEvents | take 3"}"#;

const MDE: [Sample; 3] = [
    // <https://learn.microsoft.com/en-us/defender-endpoint/api/get-alerts>
    get("List alerts", "/api/alerts?$top=3"),
    // <https://learn.microsoft.com/en-us/defender-endpoint/api/get-machines>
    get("List machines", "/api/machines?$top=3"),
    // <https://learn.microsoft.com/en-us/defender-endpoint/api/run-advanced-query-api>
    Sample {
        title: "Advanced hunting query",
        method: "POST",
        path: "/api/advancedqueries/run",
        body: Some(HUNTING),
    },
];

const XDR: [Sample; 2] = [
    // <https://learn.microsoft.com/en-us/defender-xdr/api-list-incidents>
    get("List incidents", "/api/incidents?$top=3"),
    // <https://learn.microsoft.com/en-us/defender-xdr/api-advanced-hunting>
    Sample {
        title: "Advanced hunting query",
        method: "POST",
        path: "/api/advancedhunting/run",
        body: Some(HUNTING),
    },
];

const GRAPH: [Sample; 3] = [
    // <https://learn.microsoft.com/en-us/graph/api/security-list-alerts_v2>
    get("List alerts (alerts_v2)", "/v1.0/security/alerts_v2?$top=3"),
    // <https://learn.microsoft.com/en-us/graph/api/security-list-incidents>
    get("List incidents", "/v1.0/security/incidents?$top=3"),
    // <https://learn.microsoft.com/en-us/graph/api/security-security-runhuntingquery>
    Sample {
        title: "Run hunting query",
        method: "POST",
        path: "/v1.0/security/runHuntingQuery",
        body: Some(HUNTING),
    },
];

const MDCA: [Sample; 1] = [
    // <https://learn.microsoft.com/en-us/defender-cloud-apps/api-alerts-list>
    get("List alerts", "/api/v1/alerts/"),
];

/// The samples of a route configured from `api`; none for a route without a preset.
pub(super) fn for_api(api: Option<Api>) -> &'static [Sample] {
    match api {
        Some(Api::Mde) => &MDE,
        Some(Api::Xdr) => &XDR,
        Some(Api::Graph) => &GRAPH,
        Some(Api::Mdca) => &MDCA,
        None => &[],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_preset_has_samples_with_a_body_exactly_for_post() {
        for api in [Api::Mde, Api::Xdr, Api::Graph, Api::Mdca] {
            let samples = for_api(Some(api));
            assert!(!samples.is_empty(), "{api:?}");
            for sample in samples {
                assert!(sample.path.starts_with('/'), "{}", sample.path);
                assert_eq!(sample.method == "POST", sample.body.is_some());
                if let Some(body) = sample.body {
                    serde_json::from_str::<serde_json::Value>(body).unwrap();
                }
            }
        }
        assert!(for_api(None).is_empty());
    }
}
