//! The Graph and MDCA shapes of the simulator's data, and the rows every advanced hunting query returns.
//!
//! Graph records are derived from the MDE/XDR ones so both APIs describe the same alerts and incidents.

use serde_json::{Value, json};

use super::{BASE_TIME, MDCA_ALERT_COUNT, hex_id, rfc3339};

/// Graph uses camelCase enum members ("inProgress", "truePositive").
fn graph_enum(value: &Value) -> Value {
    match value.as_str() {
        Some(s) => {
            let mut chars = s.chars();
            let first = chars.next().map(|c| c.to_ascii_lowercase()).into_iter();
            json!(first.chain(chars).collect::<String>())
        }
        None => json!("unknown"),
    }
}

pub(super) fn graph_alert(a: &Value, tenant_id: &str) -> Value {
    json!({
        "id": a["id"], "providerAlertId": a["id"], "incidentId": a["incidentId"].to_string(),
        "status": graph_enum(&a["status"]), "severity": graph_enum(&a["severity"]),
        "classification": if a["classification"].is_null() { json!(null) } else { graph_enum(&a["classification"]) },
        "determination": if a["determination"].is_null() { json!(null) } else { graph_enum(&a["determination"]) },
        "serviceSource": "microsoftDefenderForEndpoint", "detectionSource": graph_enum(&a["detectionSource"]),
        "detectorId": a["detectorId"], "tenantId": tenant_id, "title": a["title"], "description": a["description"],
        "recommendedActions": "Isolate the device and run a full antivirus scan.",
        "category": a["category"], "assignedTo": a["assignedTo"],
        "alertWebUrl": format!("https://security.microsoft.com/alerts/{}?tid={tenant_id}", a["id"].as_str().unwrap_or_default()),
        "incidentWebUrl": format!("https://security.microsoft.com/incidents/{}?tid={tenant_id}", a["incidentId"]),
        "actorDisplayName": null, "threatDisplayName": a["threatFamilyName"], "threatFamilyName": a["threatFamilyName"],
        "mitreTechniques": a["mitreTechniques"], "createdDateTime": a["alertCreationTime"],
        "lastUpdateDateTime": a["lastUpdateTime"], "resolvedDateTime": a["resolvedTime"],
        "firstActivityDateTime": a["firstEventTime"], "lastActivityDateTime": a["lastEventTime"],
        "comments": [],
        "evidence": [{
            "@odata.type": "#microsoft.graph.security.deviceEvidence", "createdDateTime": a["alertCreationTime"],
            "verdict": "suspicious", "remediationStatus": "none", "roles": [], "tags": [],
            "mdeDeviceId": a["machineId"], "deviceDnsName": a["computerDnsName"],
        }],
    })
}

pub(super) fn graph_incident(inc: &Value, tenant_id: &str) -> Value {
    json!({
        "id": inc["incidentId"].to_string(), "tenantId": tenant_id, "status": graph_enum(&inc["status"]),
        "incidentWebUrl": inc["incidentUri"], "redirectIncidentId": null, "displayName": inc["incidentName"],
        "createdDateTime": inc["createdTime"], "lastUpdateDateTime": inc["lastUpdateTime"],
        "assignedTo": inc["assignedTo"], "classification": graph_enum(&inc["classification"]),
        "determination": graph_enum(&inc["determination"]), "severity": graph_enum(&inc["severity"]),
        "customTags": inc["tags"], "systemTags": [], "description": null, "summary": null, "comments": [],
    })
}

pub(super) fn mdca_alert(i: usize, domain: &str) -> Value {
    let id = hex_id(&format!("mdca-alert-{i}"), 24);
    let titles = [
        "Impossible travel activity",
        "Mass download by a single user",
        "Activity from infrequent country",
        "Suspicious inbox forwarding",
        "Unusual file deletion activity",
    ];
    json!({
        "_id": id,
        "timestamp": (BASE_TIME - 5_400 * (MDCA_ALERT_COUNT - i) as u64) * 1000,
        "title": (titles[i % titles.len()]),
        "description": format!("{} for user{:02}@{domain}.", titles[i % titles.len()], i % 5),
        "isSystemAlert": false,
        "statusValue": i % 3,
        "severityValue": i % 3,
        "resolutionStatusValue": if i % 3 == 2 { 2 } else { 0 },
        "threatScore": 10 + (i * 7) % 90,
        "stories": [0],
        "evidence": [],
        "entities": [{"id": format!("user{:02}@{domain}", i % 5), "label": format!("user{:02}", i % 5), "type": "account"}],
        "URL": format!("https://contoso.portal.cloudappsecurity.com/#/alerts/{id}"),
        "handledByUser": null,
    })
}

pub(super) fn hunting_rows(machines: &[Value]) -> Vec<(&'static str, &'static str, Vec<Value>)> {
    let rows = 0..3;
    vec![
        (
            "Timestamp",
            "DateTime",
            rows.clone()
                .map(|i| json!(rfc3339(BASE_TIME - 60 * i)))
                .collect(),
        ),
        (
            "DeviceId",
            "String",
            rows.clone()
                .map(|i| machines[i as usize]["id"].clone())
                .collect(),
        ),
        (
            "DeviceName",
            "String",
            rows.clone()
                .map(|i| machines[i as usize]["computerDnsName"].clone())
                .collect(),
        ),
        (
            "ActionType",
            "String",
            rows.clone().map(|_| json!("ProcessCreated")).collect(),
        ),
        (
            "FileName",
            "String",
            ["powershell.exe", "cmd.exe", "rundll32.exe"]
                .into_iter()
                .map(|f| json!(f))
                .collect(),
        ),
        (
            "ProcessCommandLine",
            "String",
            [
                "powershell.exe -NoProfile -EncodedCommand SQBFAFgA",
                "cmd.exe /c whoami",
                "rundll32.exe comsvcs.dll, MiniDump",
            ]
            .into_iter()
            .map(|f| json!(f))
            .collect(),
        ),
        (
            "InitiatingProcessAccountName",
            "String",
            rows.map(|i| json!(format!("user{i:02}"))).collect(),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn graph_enum_members_are_lower_camel_case() {
        assert_eq!(graph_enum(&json!("InProgress")), json!("inProgress"));
        assert_eq!(graph_enum(&json!("TruePositive")), json!("truePositive"));
        assert_eq!(graph_enum(&Value::Null), json!("unknown"));
    }
}
