//! One-line hints for the AADSTS codes people meet most when setting up Defender API access
//! (<https://learn.microsoft.com/en-us/entra/identity-platform/reference-error-codes>),
//! so that `check` and error bodies say what to do.

/// What to do about AADSTS `code`, when it is a common one.
pub(crate) fn hint(code: u32) -> Option<&'static str> {
    Some(match code {
        7000215 => {
            "the client secret is wrong: copy the secret's Value (not its ID) from Certificates & secrets"
        }
        7000222 => "the client secret has expired: create a new one under Certificates & secrets",
        700027 | 700023 => {
            "the certificate is not the one registered: upload its public part under Certificates & secrets"
        }
        700016 => {
            "the application is not known in this tenant: check client_id, or have the tenant's admin consent to it"
        }
        90002 | 90023 => "the tenant does not exist: check the tenant ID or domain",
        65001 => {
            "consent has not been granted: have an admin of this tenant open the consent-url link, or grant admin consent under API permissions"
        }
        500011 => {
            "the API is not available in this tenant: it lacks the Defender product, or the scope names the wrong resource"
        }
        70021 => {
            "no federated credential matches: check the issuer, subject (system:serviceaccount:NS:SA) and audience on the app registration"
        }
        700024 => {
            "the federated token is outside its validity: the projected service account token is stale or the clock is wrong"
        }
        50126 => "the username or password is wrong",
        50076 | 50079 | 50158 => {
            "the user must complete multi-factor authentication: run `login` (the password grant cannot do MFA)"
        }
        70008 | 700082 | 50173 | 700084 => {
            "the user's sign-in has expired or was revoked: run `defender-token-proxy login` again"
        }
        7000218 | 700025 => {
            "the app registration is not a public client: enable 'Allow public client flows' under Authentication"
        }
        53003 => "a Conditional Access policy blocked the sign-in: ask the tenant's admin",
        900144 | 90014 => "a required parameter is missing: check the credential's settings",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_codes_have_a_hint_and_others_none() {
        assert!(hint(7000215).unwrap().contains("client secret"));
        assert!(hint(65001).unwrap().contains("consent"));
        assert!(hint(70008).unwrap().contains("login"));
        assert_eq!(hint(1), None);
    }
}
