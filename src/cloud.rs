//! Cloud and API presets: which Entra authority and which Defender hosts and token scopes each
//! cloud (public, GCC, GCC High, DoD) uses. Sources:
//! <https://learn.microsoft.com/en-us/defender-endpoint/gov>,
//! <https://learn.microsoft.com/en-us/defender-xdr/usgov> and
//! <https://learn.microsoft.com/en-us/graph/deployments>.

use serde::Deserialize;

/// A Microsoft cloud; picks the authority host and the API hosts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Cloud {
    /// The commercial cloud.
    #[default]
    Public,
    /// US Government Community Cloud (commercial authority, `*.microsoft.us` Defender hosts).
    Gcc,
    /// US Government Community Cloud High.
    GccHigh,
    /// US Department of Defense.
    Dod,
}

/// An API preset for a route: it sets the upstream and the token scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Api {
    /// Microsoft Defender for Endpoint (resource WindowsDefenderATP).
    Mde,
    /// Microsoft Defender XDR (resource Microsoft Threat Protection); `m365d` is its former name.
    #[serde(alias = "m365d")]
    #[value(alias = "m365d")]
    Xdr,
    /// Microsoft Defender for Cloud Apps; the upstream is the tenant's own portal URL.
    Mdca,
    /// Microsoft Graph (the security API lives under `/v1.0/security` and `/beta/security`).
    Graph,
}

/// Defender for Cloud Apps' first-party resource application id
/// (<https://learn.microsoft.com/en-us/defender-cloud-apps/api-authentication-application>).
/// Its use in the government clouds is UNCONFIRMED, hence overridable through `scope`.
const MDCA_RESOURCE: &str = "05a65629-4c1b-48c1-a78b-804c4abdd4af";

impl Cloud {
    /// The Entra authority host (<https://learn.microsoft.com/en-us/defender-endpoint/gov>).
    pub fn authority_host(self) -> &'static str {
        match self {
            Self::Public | Self::Gcc => "https://login.microsoftonline.com",
            Self::GccHigh | Self::Dod => "https://login.microsoftonline.us",
        }
    }

    /// The default upstream for `api`, or `None` when it must be configured (Cloud Apps is per tenant).
    pub fn upstream(self, api: Api) -> Option<&'static str> {
        Some(match (self, api) {
            (_, Api::Mdca) => return None,
            // Every MDE sample in Microsoft's API pages uses this host, with a token for the same
            // resource; `api.security.microsoft.com` also serves MDE paths and can be set as `upstream`.
            (Self::Public, Api::Mde) => "https://api.securitycenter.microsoft.com",
            (Self::Public, Api::Xdr) => "https://api.security.microsoft.com",
            (Self::Public | Self::Gcc, Api::Graph) => "https://graph.microsoft.com",
            (Self::Gcc, Api::Mde) => "https://api-gcc.securitycenter.microsoft.us",
            (Self::Gcc, Api::Xdr) => "https://api-gcc.security.microsoft.us",
            (Self::GccHigh | Self::Dod, Api::Mde) => "https://api-gov.securitycenter.microsoft.us",
            (Self::GccHigh | Self::Dod, Api::Xdr) => "https://api-gov.security.microsoft.us",
            (Self::GccHigh, Api::Graph) => "https://graph.microsoft.us",
            (Self::Dod, Api::Graph) => "https://dod-graph.microsoft.us",
        })
    }

    /// The default token scope for `api`. Government-cloud Defender scopes are UNCONFIRMED in
    /// Microsoft's documentation; like msticpy we derive them from the API host (`<host>/.default`),
    /// and `scope` on the route overrides them.
    pub fn scope(self, api: Api) -> String {
        match (self, api) {
            (_, Api::Mdca) => format!("{MDCA_RESOURCE}/.default"),
            (Self::Public, Api::Mde) => "https://api.securitycenter.microsoft.com/.default".into(),
            (cloud, api) => format!(
                "{}/.default",
                cloud
                    .upstream(api)
                    .expect("every API but Cloud Apps has a default upstream")
            ),
        }
    }
}

impl Api {
    /// The route prefix used when the proxy is configured from environment variables alone.
    pub fn default_prefix(self) -> &'static str {
        match self {
            Self::Mde => "/mde",
            Self::Xdr => "/xdr",
            Self::Mdca => "/mdca",
            Self::Graph => "/graph",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_cloud_presets_match_microsofts_samples() {
        let c = Cloud::Public;
        assert_eq!(c.authority_host(), "https://login.microsoftonline.com");
        assert_eq!(
            c.scope(Api::Mde),
            "https://api.securitycenter.microsoft.com/.default"
        );
        assert_eq!(
            c.scope(Api::Xdr),
            "https://api.security.microsoft.com/.default"
        );
        assert_eq!(c.scope(Api::Graph), "https://graph.microsoft.com/.default");
        assert_eq!(
            c.scope(Api::Mdca),
            "05a65629-4c1b-48c1-a78b-804c4abdd4af/.default"
        );
        assert_eq!(c.upstream(Api::Mdca), None);
    }

    #[test]
    fn government_clouds_use_their_own_authority_and_hosts() {
        assert_eq!(
            Cloud::Gcc.authority_host(),
            "https://login.microsoftonline.com"
        );
        assert_eq!(
            Cloud::GccHigh.authority_host(),
            "https://login.microsoftonline.us"
        );
        assert_eq!(
            Cloud::Dod.upstream(Api::Graph),
            Some("https://dod-graph.microsoft.us")
        );
        assert_eq!(
            Cloud::Gcc.scope(Api::Mde),
            "https://api-gcc.securitycenter.microsoft.us/.default"
        );
    }
}
