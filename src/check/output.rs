//! How `check` prints its findings: lines for people, or one JSON document for scripts. Neither
//! ever holds a token.

use std::io::Write;

use serde_json::{Value, json};

use super::{Finding, State, describe};
use crate::config::Config;

/// Lines for people: `ok` or `FAIL`, then what was found.
pub(super) fn text(config: &Config, offline: bool, findings: &[Finding], out: &mut impl Write) {
    if offline {
        let source = config
            .source
            .as_ref()
            .map_or_else(|| "the configuration".to_owned(), |s| s.describe());
        drop(writeln!(
            out,
            "ok    {source}: valid ({} routes, {} credentials); no token requested (--offline)",
            config.routes.len(),
            config.credentials.len()
        ));
    }
    for finding in findings {
        let name = &finding.credential;
        let head = match &finding.tenant {
            Some(tenant) => format!(
                "{name}  {}  tenant {tenant}  scope {}",
                finding.kind, finding.scope
            ),
            None if finding.kind == "managed_identity" => format!(
                "{name}  {}  tenant (managed identity)  scope {}",
                finding.kind, finding.scope
            ),
            None => name.to_string(),
        };
        let line = match &finding.state {
            State::Static => format!(
                "ok    {name}  api_token: sent as it is (Authorization: Token …); Entra is not involved"
            ),
            State::NotRequested => format!("ok    {head}\n      not requested"),
            State::Valid(token) => {
                let permissions = if token.permissions.is_empty() {
                    "(none in the token)".to_owned()
                } else {
                    token.permissions.join(", ")
                };
                let account = token
                    .account
                    .as_ref()
                    .map(|a| format!("\n      signed in as {a}"))
                    .unwrap_or_default();
                format!(
                    "ok    {head}\n      expires {} (in {}){account}\n      permissions: {permissions}",
                    humantime::format_rfc3339_seconds(token.expires_at_wall),
                    humantime::format_duration(std::time::Duration::from_secs(
                        token.expires_in().as_secs()
                    )),
                )
            }
            State::Failing(error) => format!("FAIL  {head}\n      {}", describe(name, error)),
        };
        drop(writeln!(out, "{line}"));
    }
}

/// One JSON document: `ok`, `offline`, the config's source, and one entry per finding.
pub(super) fn json(
    config: &Config,
    offline: bool,
    ok: bool,
    findings: &[Finding],
    out: &mut impl Write,
) {
    let tokens: Vec<Value> = findings.iter().map(entry).collect();
    let document = json!({
        "ok": ok,
        "offline": offline,
        "config": config.source.as_ref().map(|s| s.describe()),
        "tokens": tokens,
    });
    let text = serde_json::to_string_pretty(&document).unwrap_or_default();
    drop(writeln!(out, "{text}"));
}

fn entry(finding: &Finding) -> Value {
    let mut entry = json!({
        "credential": &*finding.credential,
        "type": finding.kind,
        "tenant": finding.tenant.as_deref(),
        "scope": &*finding.scope,
    });
    match &finding.state {
        State::Static => entry["state"] = json!("static"),
        State::NotRequested => entry["state"] = json!("not_requested"),
        State::Valid(token) => {
            entry["state"] = json!("valid");
            entry["audience"] = json!(token.audience);
            let claim = if token.delegated { "scopes" } else { "roles" };
            entry[claim] = json!(token.permissions);
            entry["expires_at"] =
                json!(humantime::format_rfc3339_seconds(token.expires_at_wall).to_string());
            entry["expires_in_s"] = json!(token.expires_in().as_secs());
            if let Some(account) = &token.account {
                entry["account"] = json!(account);
            }
        }
        State::Failing(error) => {
            entry["state"] = json!("failing");
            entry["error"] = json!(crate::report::error_chain(error));
            if let Some(hint) = error.hint(&finding.credential) {
                entry["hint"] = json!(hint);
            }
            if let Some(rejection) = error.rejection() {
                entry["aadsts"] = json!(rejection.codes);
            }
        }
    }
    entry
}
