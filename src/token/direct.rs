//! Which token requests bypass the HTTP proxy the environment names (`HTTPS_PROXY`, `ALL_PROXY`,
//! `HTTP_PROXY`): a proxy sees in full any plain-HTTP request it forwards (RFC 9112 section 3.2.2,
//! the absolute form), secrets in its form body included, and one for this host or the link-local
//! network is not where the authority is (a proxy elsewhere would reach itself, or another host).

use std::net::IpAddr;

use url::{Host, Url};

/// Whether a request to `endpoint` must go direct: anything but `https`, and any host that is
/// loopback or link-local (`localhost` and names under it are loopback, RFC 6761 section 6.3).
/// An endpoint that does not parse goes direct too; its request then fails on its own.
pub(super) fn goes_direct(endpoint: &str) -> bool {
    let Ok(url) = Url::parse(endpoint) else {
        return true;
    };
    if url.scheme() != "https" {
        return true;
    }
    match url.host() {
        Some(Host::Ipv4(ip)) => is_local(ip.into()),
        Some(Host::Ipv6(ip)) => is_local(ip.into()),
        Some(Host::Domain(name)) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            name == "localhost" || name.ends_with(".localhost")
        }
        None => true,
    }
}

/// Loopback, or link-local (169.254.0.0/16, fe80::/10: IMDS and the like).
fn is_local(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => ip.is_loopback() || ip.is_link_local(),
        IpAddr::V6(ip) => {
            ip.is_loopback()
                || ip.is_unicast_link_local()
                || ip.to_ipv4_mapped().is_some_and(|v4| is_local(v4.into()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::goes_direct;

    #[test]
    fn only_https_authorities_off_this_host_may_use_a_proxy() {
        for endpoint in [
            "https://login.microsoftonline.com/t/oauth2/v2.0/token",
            "https://login.microsoftonline.us/t/oauth2/v2.0/token",
            "https://10.0.0.5/t/oauth2/v2.0/token",
        ] {
            assert!(!goes_direct(endpoint), "{endpoint}");
        }
        for endpoint in [
            "http://127.0.0.1:8400/t/oauth2/v2.0/token",
            "http://login.example/t/oauth2/v2.0/token",
            "https://127.0.0.1:8400/t/oauth2/v2.0/token",
            "https://[::1]:8400/t",
            "https://[::ffff:127.0.0.1]:8400/t",
            "https://localhost/t",
            "https://LOCALHOST./t",
            "https://sim.localhost/t",
            "https://169.254.169.254/metadata/identity/oauth2/token",
            "https://[fe80::1]/t",
            "not a url",
        ] {
            assert!(goes_direct(endpoint), "{endpoint}");
        }
    }
}
