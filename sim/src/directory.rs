//! The directory of the simulated Entra: which tenants exist (the home tenant and a partner's customers:
//! <https://learn.microsoft.com/en-us/defender-endpoint/api/exposed-apis-create-app-partners>) and which users can sign
//! in.

use super::data::stable_uuid;
use super::options::{SimOptions, SimTenant, SimUser};

/// Tenants and users, fixed when the `Sim` starts.
#[derive(Debug)]
pub(super) struct Directory {
    /// The home tenant first, then the customer tenants; never empty.
    tenants: Vec<SimTenant>,
    users: Vec<DirectoryUser>,
}

/// A user and the ids Entra gives it.
#[derive(Debug)]
pub(super) struct DirectoryUser {
    pub(super) user: SimUser,
    /// Stable object id (the `oid` claim): the same user gets the same id in every run.
    pub(super) oid: String,
}

impl Directory {
    pub(super) fn new(options: &SimOptions) -> Self {
        let home = SimTenant {
            id: options.tenant_id.clone(),
            domain: options.tenant_domain.clone(),
        };
        let users = options
            .users
            .iter()
            .map(|user| DirectoryUser {
                oid: stable_uuid(&format!("user-{}", user.username.to_ascii_lowercase())),
                user: user.clone(),
            })
            .collect();
        Self {
            tenants: std::iter::once(home)
                .chain(options.customer_tenants.iter().cloned())
                .collect(),
            users,
        }
    }

    /// The home tenant (`SimOptions::tenant_id`), where managed identities live.
    pub(super) fn home(&self) -> &SimTenant {
        &self.tenants[0]
    }

    /// The tenant a path segment names, by GUID or domain; Entra matches both case-insensitively.
    pub(super) fn tenant(&self, name: &str) -> Option<&SimTenant> {
        self.tenants
            .iter()
            .find(|t| t.id.eq_ignore_ascii_case(name) || t.domain.eq_ignore_ascii_case(name))
    }

    /// The key per-tenant counters and switches use: the canonical GUID of a known tenant, else the lower-cased
    /// name (so requests to an unknown tenant are still counted under the name they used).
    #[cfg(any(test, feature = "test-hooks"))]
    pub(super) fn tenant_key(&self, name: &str) -> String {
        self.tenant(name)
            .map_or_else(|| name.to_ascii_lowercase(), |t| t.id.to_ascii_lowercase())
    }

    /// The user signing in as `username` (case-insensitive, as Entra compares UPNs).
    pub(super) fn user(&self, username: &str) -> Option<&DirectoryUser> {
        self.users
            .iter()
            .find(|u| u.user.username.eq_ignore_ascii_case(username))
    }

    /// The first user: who signs in at the authorize endpoint when there is no `login_hint`.
    pub(super) fn first_user(&self) -> Option<&DirectoryUser> {
        self.users.first()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Sim;
    use crate::test_support::{CLIENT_ID, MDE_SCOPE, SECRET, get_json, token_request_for};

    const CUSTOMER_ID: &str = "0c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f";

    fn partner_options() -> SimOptions {
        SimOptions {
            customer_tenants: vec![SimTenant {
                id: CUSTOMER_ID.to_owned(),
                domain: "fabrikam.onmicrosoft.com".to_owned(),
            }],
            ..SimOptions::default()
        }
    }

    const FIELDS: [(&str, &str); 4] = [
        ("grant_type", "client_credentials"),
        ("client_id", CLIENT_ID),
        ("client_secret", SECRET),
        ("scope", MDE_SCOPE),
    ];

    #[tokio::test]
    async fn tokens_requested_in_a_customer_tenant_carry_its_id_and_are_counted_there() {
        let sim = Sim::start(partner_options()).await.expect("sim");
        let (status, body) = token_request_for(&sim, "Fabrikam.onmicrosoft.com", &FIELDS).await;
        assert_eq!(status, 200, "{body}");
        let token = body["access_token"].as_str().expect("access_token");
        let (status, me) = get_json(&format!("{}/_sim/whoami", sim.mde()), token).await;
        assert_eq!((status, me["tid"].as_str()), (200, Some(CUSTOMER_ID)));
        assert_eq!(token_request_for(&sim, CUSTOMER_ID, &FIELDS).await.0, 200);
        assert_eq!(
            token_request_for(&sim, "nowhere.example", &FIELDS).await.0,
            400
        );
        let control = sim.control();
        assert_eq!(control.token_requests_in("FABRIKAM.onmicrosoft.com"), 2);
        assert_eq!(control.token_requests_in(CUSTOMER_ID), 2);
        assert_eq!(control.token_requests_in("contoso.onmicrosoft.com"), 0);
        assert_eq!(control.token_requests_in("nowhere.example"), 1);
        assert_eq!(control.grant_requests("client_credentials"), 3);
        assert_eq!(control.grant_requests("password"), 0);
        assert_eq!(control.token_requests(), 3);
    }

    #[tokio::test]
    async fn a_refused_tenant_answers_the_given_aadsts_error_until_refusal_stops() {
        let sim = Sim::start(partner_options()).await.expect("sim");
        let control = sim.control();
        control.refuse_tenant("fabrikam.onmicrosoft.com", Some(65001));
        let (status, body) = token_request_for(&sim, CUSTOMER_ID, &FIELDS).await;
        assert_eq!(
            (
                status,
                body["error"].as_str(),
                body["error_codes"][0].as_u64()
            ),
            (400, Some("invalid_grant"), Some(65001))
        );
        let description = body["error_description"].as_str().unwrap_or_default();
        assert!(
            description.starts_with("AADSTS65001: The user or administrator has not consented")
        );
        let home = SimOptions::default().tenant_id;
        assert_eq!(token_request_for(&sim, &home, &FIELDS).await.0, 200);
        control.refuse_tenant(CUSTOMER_ID, None);
        assert_eq!(token_request_for(&sim, CUSTOMER_ID, &FIELDS).await.0, 200);
    }

    #[test]
    fn tenants_are_found_by_id_or_domain_in_any_case_and_keyed_by_id() {
        let options = SimOptions {
            customer_tenants: vec![SimTenant {
                id: "AAAAAAAA-0000-0000-0000-000000000001".to_owned(),
                domain: "fabrikam.onmicrosoft.com".to_owned(),
            }],
            ..SimOptions::default()
        };
        let directory = Directory::new(&options);
        assert_eq!(
            directory
                .tenant("Fabrikam.OnMicrosoft.com")
                .map(|t| &t.id[..8]),
            Some("AAAAAAAA")
        );
        assert_eq!(
            directory.tenant_key("fabrikam.onmicrosoft.com"),
            "aaaaaaaa-0000-0000-0000-000000000001"
        );
        assert_eq!(
            directory.tenant_key("CONTOSO.onmicrosoft.com"),
            options.tenant_id
        );
        assert!(directory.tenant("common").is_none());
        assert_eq!(directory.tenant_key("Nowhere"), "nowhere");
    }

    #[test]
    fn users_are_found_case_insensitively_with_a_stable_object_id() {
        let directory = Directory::new(&SimOptions::default());
        let user = directory
            .user("ANALYST@contoso.onmicrosoft.com")
            .expect("default user");
        let again = Directory::new(&SimOptions::default());
        assert_eq!(Some(&user.oid), again.first_user().map(|u| &u.oid));
        assert!(directory.user("nobody@contoso.onmicrosoft.com").is_none());
    }
}
