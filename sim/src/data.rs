//! The simulator's data set: deterministic Defender-, Graph- and MDCA-shaped records, generated once per `Sim`.
//!
//! Field names follow the public API docs (MDE alert/machine, XDR incident, Graph `alert`/`incident`, MDCA alert).
//! The values are invented but stable, so tests can assert counts and ids.

use std::time::{Duration, UNIX_EPOCH};

use serde_json::{Value, json};
use sha1::{Digest, Sha1};

use views::{graph_alert, graph_incident, hunting_rows, mdca_alert};

mod views;

/// Number of MDE alerts (also exposed as Graph `alerts_v2`).
const ALERT_COUNT: usize = 23;
/// Number of MDE machines.
const MACHINE_COUNT: usize = 12;
/// Number of XDR incidents (also exposed as Graph `incidents`).
const INCIDENT_COUNT: usize = 9;
/// Number of MDCA alerts.
const MDCA_ALERT_COUNT: usize = 14;
/// First XDR incident id.
const FIRST_INCIDENT_ID: u64 = 1001;
/// Fixed clock for the records (2026-10-26T08:53:20Z), so the data does not depend on when the test runs.
const BASE_TIME: u64 = 1_793_004_800;

const HOSTS: [&str; MACHINE_COUNT] = [
    "desktop-7hq2k1",
    "desktop-m4x9pl",
    "laptop-finance-03",
    "laptop-hr-11",
    "srv-dc01",
    "srv-sql02",
    "srv-web03",
    "build-agent-01",
    "mac-design-02",
    "ubuntu-jump-01",
    "desktop-ops-22",
    "laptop-exec-01",
];
const OS: [(&str, &str); 5] = [
    ("Windows11", "10.0.22631"),
    ("Windows10", "10.0.19045"),
    ("WindowsServer2022", "10.0.20348"),
    ("Linux", "22.04"),
    ("macOS", "14.5"),
];
/// (title, category, threatFamilyName, detectionSource, evidence file name)
const ALERT_KINDS: [(&str, &str, Option<&str>, &str, &str); 6] = [
    (
        "'Mimikatz' credential theft tool",
        "CredentialAccess",
        Some("Mimikatz"),
        "WindowsDefenderAv",
        "mimikatz.exe",
    ),
    (
        "Suspicious PowerShell command line",
        "Execution",
        None,
        "WindowsDefenderAtp",
        "powershell.exe",
    ),
    (
        "'Emotet' malware was detected",
        "Malware",
        Some("Emotet"),
        "WindowsDefenderAv",
        "invoice_0425.docm",
    ),
    (
        "Suspicious scheduled task",
        "Persistence",
        None,
        "WindowsDefenderAtp",
        "schtasks.exe",
    ),
    (
        "Possible lateral movement using PsExec",
        "LateralMovement",
        None,
        "CustomDetection",
        "psexesvc.exe",
    ),
    (
        "Tampering with security settings",
        "DefenseEvasion",
        None,
        "AutomatedInvestigation",
        "reg.exe",
    ),
];
const SEVERITIES: [&str; 4] = ["Informational", "Low", "Medium", "High"];
const STATUSES: [&str; 3] = ["New", "InProgress", "Resolved"];

/// Every record the simulated APIs serve.
#[derive(Debug)]
pub(super) struct Dataset {
    /// MDE alerts (`/api/alerts`).
    pub(super) alerts: Vec<Value>,
    /// MDE machines (`/api/machines`).
    pub(super) machines: Vec<Value>,
    /// XDR incidents (`/api/incidents`).
    pub(super) incidents: Vec<Value>,
    /// Graph `alerts_v2`.
    pub(super) graph_alerts: Vec<Value>,
    /// Graph `incidents`.
    pub(super) graph_incidents: Vec<Value>,
    /// MDCA alerts (`/api/v1/alerts/`).
    pub(super) mdca_alerts: Vec<Value>,
    /// Rows returned by every advanced hunting query: (column name, Kusto type, value per row).
    pub(super) hunting: Vec<(&'static str, &'static str, Vec<Value>)>,
}

impl Dataset {
    /// Generates the data set for one tenant.
    pub(super) fn generate(tenant_id: &str, tenant_domain: &str) -> Self {
        let machines: Vec<Value> = (0..MACHINE_COUNT)
            .map(|i| machine(i, tenant_domain))
            .collect();
        let alerts: Vec<Value> = (0..ALERT_COUNT)
            .map(|i| alert(i, &machines[i % MACHINE_COUNT], tenant_id, tenant_domain))
            .collect();
        let incidents: Vec<Value> = (0..INCIDENT_COUNT)
            .map(|i| incident(i, &alerts, tenant_id))
            .collect();
        let graph_alerts = alerts.iter().map(|a| graph_alert(a, tenant_id)).collect();
        let graph_incidents = incidents
            .iter()
            .map(|i| graph_incident(i, tenant_id))
            .collect();
        let mdca_alerts = (0..MDCA_ALERT_COUNT)
            .map(|i| mdca_alert(i, tenant_domain))
            .collect();
        let hunting = hunting_rows(&machines);
        Self {
            alerts,
            machines,
            incidents,
            graph_alerts,
            graph_incidents,
            mdca_alerts,
            hunting,
        }
    }
}

/// Formats unix seconds as RFC 3339 UTC with Defender's seven fractional digits ("2026-11-22T20:02:12.0000000Z").
pub(super) fn rfc3339(unix_secs: u64) -> String {
    let seconds = utc_seconds(unix_secs);
    format!("{}.0000000Z", seconds.trim_end_matches('Z'))
}

/// Formats unix seconds the way Entra's error bodies do ("2026-11-22 20:02:12Z").
pub(super) fn entra_timestamp(unix_secs: u64) -> String {
    utc_seconds(unix_secs).replacen('T', " ", 1)
}

/// Unix seconds as RFC 3339 UTC to the second ("2026-11-22T20:02:12Z").
fn utc_seconds(unix_secs: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(unix_secs)).to_string()
}

/// Stable pseudo-random hex derived from a label (ids must not change between runs).
fn hex_id(label: &str, len: usize) -> String {
    let digest = Sha1::digest(label.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    hex[..len].to_owned()
}

/// Stable UUID (hyphenated) derived from a label.
pub(super) fn stable_uuid(label: &str) -> String {
    let digest = Sha1::digest(label.as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_sha1_bytes(bytes)
        .into_uuid()
        .to_string()
}

fn machine(i: usize, domain: &str) -> Value {
    let (platform, version) = OS[i % OS.len()];
    let id = hex_id(&format!("machine-{i}"), 40);
    json!({
        "id": id,
        "computerDnsName": format!("{}.{domain}", HOSTS[i]),
        "firstSeen": rfc3339(BASE_TIME - 86_400 * (200 + i as u64 * 7)),
        "lastSeen": rfc3339(BASE_TIME - 600 * i as u64),
        "osPlatform": platform,
        "version": version,
        "osVersion": version,
        "osProcessor": "x64",
        "lastIpAddress": format!("10.0.{}.{}", i / 4 + 1, 20 + i),
        "lastExternalIpAddress": format!("203.0.113.{}", 10 + i),
        "agentVersion": "10.8760.22631.1000",
        "healthStatus": (["Active", "Active", "Inactive", "ImpairedCommunication"][i % 4]),
        "deviceValue": if i % 5 == 4 { "High" } else { "Normal" },
        "rbacGroupId": 1 + i % 3,
        "rbacGroupName": (["Workstations", "Servers", "Executives"][i % 3]),
        "riskScore": (["None", "Low", "Medium", "High"][i % 4]),
        "exposureLevel": (["Low", "Medium", "High"][i % 3]),
        "isAadJoined": i % 3 != 2,
        "aadDeviceId": stable_uuid(&format!("aad-device-{i}")),
        "machineTags": if i % 4 == 0 { json!(["VIP"]) } else { json!([]) },
        "onboardingStatus": "Onboarded",
        "managedBy": "MicrosoftDefenderForEndpoint",
    })
}

fn alert(i: usize, machine: &Value, tenant_id: &str, domain: &str) -> Value {
    let (title, category, family, source, file) = ALERT_KINDS[i % ALERT_KINDS.len()];
    let status = STATUSES[i % STATUSES.len()];
    let resolved = status == "Resolved";
    let created = BASE_TIME - 3_600 * (ALERT_COUNT - i) as u64;
    let user = format!("user{:02}", i % 7);
    json!({
        "id": format!("da6373{:014}_{}", 40_318_529_104_117 + i as u64 * 1_000_003, 880_718_168 + i * 7_919),
        "incidentId": FIRST_INCIDENT_ID + (i % INCIDENT_COUNT) as u64,
        "investigationId": if i % 3 == 0 { json!(null) } else { json!(4_000 + i) },
        "assignedTo": if i % 2 == 0 { json!(null) } else { json!(format!("secops@{domain}")) },
        "severity": SEVERITIES[i % SEVERITIES.len()],
        "status": status,
        "classification": if resolved { json!("TruePositive") } else { json!(null) },
        "determination": if resolved { json!(if family.is_some() { "Malware" } else { "SecurityTesting" }) } else { json!(null) },
        "investigationState": if i % 3 == 0 { "UnsupportedAlertType" } else { "Running" },
        "detectionSource": source,
        "detectorId": stable_uuid(&format!("detector-{}", i % ALERT_KINDS.len())),
        "category": category,
        "threatFamilyName": family,
        "title": title,
        "description": format!("{title} was observed on {}.", machine["computerDnsName"].as_str().unwrap_or_default()),
        "alertCreationTime": rfc3339(created),
        "firstEventTime": rfc3339(created - 120),
        "lastEventTime": rfc3339(created - 60),
        "lastUpdateTime": rfc3339(created + 1_800),
        "resolvedTime": if resolved { json!(rfc3339(created + 3_000)) } else { json!(null) },
        "machineId": machine["id"],
        "computerDnsName": machine["computerDnsName"],
        "rbacGroupName": machine["rbacGroupName"],
        "aadTenantId": tenant_id,
        "threatName": family,
        "mitreTechniques": [(["T1003", "T1059.001", "T1204", "T1053.005", "T1570", "T1562.001"][i % 6])],
        "relatedUser": {"userName": user, "domainName": "CONTOSO"},
        "loggedOnUsers": [{"accountName": user, "domainName": "CONTOSO"}],
        "comments": [],
        "evidence": [{
            "entityType": "File",
            "evidenceCreationTime": rfc3339(created),
            "sha1": hex_id(&format!("file-{i}"), 40),
            "sha256": format!("{}{}", hex_id(&format!("file-{i}-a"), 32), hex_id(&format!("file-{i}-b"), 32)),
            "fileName": file,
            "filePath": "C:\\Users\\Public\\Downloads",
            "detectionStatus": if resolved { "Prevented" } else { "Detected" },
            "accountName": user,
            "domainName": "CONTOSO",
        }],
    })
}

fn incident(i: usize, alerts: &[Value], tenant_id: &str) -> Value {
    let id = FIRST_INCIDENT_ID + i as u64;
    let mine: Vec<&Value> = alerts
        .iter()
        .filter(|a| a["incidentId"] == json!(id))
        .collect();
    let created = BASE_TIME - 3_600 * (INCIDENT_COUNT * 3 - i) as u64;
    let nested: Vec<Value> = mine
        .iter()
        .map(|a| {
            json!({
                "alertId": a["id"], "providerAlertId": a["id"], "incidentId": id,
                "serviceSource": "MicrosoftDefenderForEndpoint", "detectionSource": a["detectionSource"],
                "creationTime": a["alertCreationTime"], "lastUpdatedTime": a["lastUpdateTime"],
                "resolvedTime": a["resolvedTime"], "firstActivity": a["firstEventTime"], "lastActivity": a["lastEventTime"],
                "title": a["title"], "description": a["description"], "category": a["category"], "status": a["status"],
                "severity": a["severity"], "investigationId": a["investigationId"],
                "investigationState": a["investigationState"], "classification": a["classification"],
                "determination": a["determination"], "assignedTo": a["assignedTo"],
                "threatFamilyName": a["threatFamilyName"], "mitreTechniques": a["mitreTechniques"],
                "devices": [{"mdatpDeviceId": a["machineId"], "deviceDnsName": a["computerDnsName"],
                             "aadDeviceId": null, "rbacGroupName": a["rbacGroupName"]}],
                "entities": [{"entityType": "User", "accountName": a["relatedUser"]["userName"], "domainName": "CONTOSO"}],
            })
        })
        .collect();
    let severity = mine
        .iter()
        .filter_map(|a| a["severity"].as_str())
        .max_by_key(|s| SEVERITIES.iter().position(|x| x == s));
    let resolved = i % 4 == 3;
    json!({
        "incidentId": id,
        "incidentUri": format!("https://security.microsoft.com/incidents/{id}?tid={tenant_id}"),
        "redirectIncidentId": null,
        "incidentName": format!("Multi-stage incident involving {} on one endpoint", mine.first().and_then(|a| a["category"].as_str()).unwrap_or("Execution")),
        "createdTime": rfc3339(created),
        "lastUpdateTime": rfc3339(created + 7_200),
        "assignedTo": if i % 2 == 0 { json!(null) } else { mine.first().map_or(json!(null), |a| a["assignedTo"].clone()) },
        "classification": if resolved { "TruePositive" } else { "Unknown" },
        "determination": if resolved { "Malware" } else { "NotAvailable" },
        "status": if resolved { "Resolved" } else { "Active" },
        "severity": severity.unwrap_or("Informational"),
        "tags": if i % 3 == 0 { json!(["Ransomware"]) } else { json!([]) },
        "comments": [],
        "alerts": nested,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_formatted_as_utc_calendar_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.0000000Z");
        assert_eq!(entra_timestamp(1_795_896_132), "2026-11-28 20:02:12Z");
        assert_eq!(entra_timestamp(951_782_400), "2000-02-29 00:00:00Z");
    }

    #[test]
    fn generated_data_links_alerts_to_machines_and_incidents() {
        let data = Dataset::generate("t", "contoso.onmicrosoft.com");
        assert_eq!(data.alerts.len(), ALERT_COUNT);
        assert_eq!(data.machines.len(), MACHINE_COUNT);
        assert_eq!(data.incidents.len(), INCIDENT_COUNT);
        let nested: usize = data
            .incidents
            .iter()
            .map(|i| i["alerts"].as_array().map_or(0, Vec::len))
            .sum();
        assert_eq!(nested, ALERT_COUNT);
        assert!(
            data.alerts
                .iter()
                .all(|a| a["id"].as_str().is_some_and(|id| id.starts_with("da637")))
        );
        assert!(
            data.machines
                .iter()
                .all(|m| m["id"].as_str().is_some_and(|id| id.len() == 40))
        );
        assert_eq!(data.graph_alerts[1]["status"], "inProgress");
    }
}
