//! Checks of single values: URLs that receive tokens or secrets, tenants, route prefixes and names.

use url::Url;

/// Accepts `login.microsoftonline.us`, `https://login.microsoftonline.us/` and the like, as
/// azure-identity's `normalize_authority` does for AZURE_AUTHORITY_HOST.
pub(super) fn normalize_authority(host: &str) -> String {
    let host = host.trim().trim_end_matches('/');
    if host.contains("://") {
        host.to_owned()
    } else {
        format!("https://{host}")
    }
}

pub(super) fn check_url(url: &Url) -> Result<(), String> {
    match url.scheme() {
        "https" => {}
        "http" if is_loopback_host(url) => {}
        "http" => {
            return Err(
                "http:// is allowed only for loopback hosts (local testing); use https://".into(),
            );
        }
        other => return Err(format!("unsupported scheme {other:?}")),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("credentials in the URL are not allowed".into());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("a query or fragment is not allowed here".into());
    }
    Ok(())
}

/// Checks a managed identity endpoint: `https`, or plain `http` on the host itself or the
/// link-local network, where IMDS and App Service's identity endpoint live
/// (<https://learn.microsoft.com/en-us/entra/identity/managed-identities-azure-resources/how-to-use-vm-token>,
/// <https://learn.microsoft.com/en-us/azure/app-service/overview-managed-identity>).
pub(super) fn check_local_url(url: &Url) -> Result<(), String> {
    let link_local = matches!(url.host(), Some(url::Host::Ipv4(ip)) if ip.is_link_local());
    match url.scheme() {
        "https" => Ok(()),
        "http" if is_loopback_host(url) || link_local => Ok(()),
        _ => Err(
            "a managed identity endpoint is https, or http on a loopback or link-local address"
                .into(),
        ),
    }
}

fn is_loopback_host(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// A tenant is a GUID or a domain name; the multi-tenant aliases make no sense for the client
/// credentials grant
/// (<https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-client-creds-grant-flow>).
pub(super) fn check_tenant(tenant: &str) -> Result<(), String> {
    if uuid::Uuid::parse_str(tenant).is_ok() {
        return Ok(());
    }
    if matches!(
        tenant.to_ascii_lowercase().as_str(),
        "common" | "organizations" | "consumers"
    ) {
        return Err(format!(
            "{tenant:?} cannot be used with the client credentials grant: give the tenant ID (a GUID) \
             or its domain, such as contoso.onmicrosoft.com"
        ));
    }
    let valid_domain = tenant.contains('.')
        && tenant.len() <= 253
        && tenant.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    if valid_domain {
        Ok(())
    } else {
        Err(format!(
            "{tenant:?} is neither a GUID nor a domain name such as contoso.onmicrosoft.com"
        ))
    }
}

/// Whether `tenant` is a tenant ID or domain (for tenants given on the command line).
pub(crate) fn valid_tenant(tenant: &str) -> Result<(), String> {
    check_tenant(tenant)
}

pub(super) fn check_prefix(prefix: &str) -> Result<(), String> {
    if !prefix.starts_with('/') || prefix.len() < 2 {
        return Err(format!(
            "{prefix:?}: a prefix starts with '/' and names at least one path segment, such as \"/mde\""
        ));
    }
    if prefix.starts_with("/-") {
        return Err(format!(
            "{prefix:?}: prefixes starting with \"/-\" are reserved for the proxy's own endpoints"
        ));
    }
    let placeholder = super::TENANT_PLACEHOLDER;
    let segments_ok = prefix[1..].split('/').all(|s| {
        s == placeholder
            || !s.is_empty()
                && s != "."
                && s != ".."
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-._~".contains(c))
    });
    if !segments_ok {
        return Err(format!(
            "{prefix:?}: segments use only letters, digits and - . _ ~, or are {placeholder} as a whole"
        ));
    }
    if prefix.matches(placeholder).count() > 1 {
        return Err(format!("{prefix:?}: {placeholder} may appear once"));
    }
    Ok(())
}

pub(super) fn is_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}
