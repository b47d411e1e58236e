//! The refresh tokens the user grants hand out, in families: one redemption each, the next one
//! issued with it, and a reused one revoking its family.

use std::collections::HashMap;
use std::sync::Mutex;
#[cfg(any(test, feature = "test-hooks"))]
use std::sync::atomic::{AtomicU64, Ordering};

use crate::entra_error::EntraError;
use crate::random::random_string;
use crate::sync::lock;

/// Every refresh token issued, with its family.
#[derive(Debug, Default)]
pub(crate) struct RefreshTokens {
    inner: Mutex<Inner>,
    /// How often a rotated-out token was presented (only tests read it).
    #[cfg(any(test, feature = "test-hooks"))]
    reuses: AtomicU64,
}

#[derive(Debug, Default)]
struct Inner {
    /// Token -> (family, still the family's newest token).
    tokens: HashMap<String, (usize, bool)>,
    families: Vec<Family>,
    /// Families issued before this revocation epoch answer AADSTS50173.
    epoch: u64,
}

#[derive(Debug)]
struct Family {
    /// Lower-cased: Entra compares client ids case-insensitively.
    client_key: String,
    username: String,
    /// The scope of the sign-in, used when a refresh request names none.
    scope: String,
    epoch: u64,
    /// Set when a rotated-out token of the family was presented.
    reused: bool,
}

/// What a redeemed refresh token stands for.
pub(crate) struct Grant {
    pub(crate) username: String,
    pub(crate) scope: String,
    /// The token that replaces the one presented.
    pub(crate) next: String,
}

impl RefreshTokens {
    /// Starts a family for one sign-in; returns its first token.
    pub(super) fn issue(&self, client_id: &str, username: &str, scope: &str) -> String {
        let mut inner = lock(&self.inner);
        let family = inner.families.len();
        let epoch = inner.epoch;
        inner.families.push(Family {
            client_key: client_id.to_ascii_lowercase(),
            username: username.to_owned(),
            scope: scope.to_owned(),
            epoch,
            reused: false,
        });
        let token = random_string(48);
        inner.tokens.insert(token.clone(), (family, true));
        token
    }

    /// Makes every token issued so far answer AADSTS50173, as after a password reset.
    #[cfg(any(test, feature = "test-hooks"))]
    pub(super) fn revoke_all(&self) {
        lock(&self.inner).epoch += 1;
    }

    /// How often a rotated-out token was presented.
    #[cfg(any(test, feature = "test-hooks"))]
    pub(super) fn reuses(&self) -> u64 {
        self.reuses.load(Ordering::SeqCst)
    }

    /// Redeems `token` for `client_id`: checks it and rotates it.
    pub(crate) fn redeem(&self, token: &str, client_id: &str) -> Result<Grant, EntraError> {
        let mut inner = lock(&self.inner);
        let invalid = |why: &str| {
            EntraError::user_grant(
                "invalid_grant",
                70000,
                format!("Provided grant is invalid or malformed. {why}"),
            )
        };
        let (family_index, newest) = inner
            .tokens
            .get(token)
            .copied()
            .ok_or_else(|| invalid("The refresh token is not known."))?;
        let current_epoch = inner.epoch;
        let family = &mut inner.families[family_index];
        if family.client_key != client_id.to_ascii_lowercase() {
            return Err(invalid("The refresh token was issued to another client."));
        }
        if family.epoch < current_epoch {
            return Err(EntraError::grant_revoked());
        }
        if !newest {
            family.reused = true;
            #[cfg(any(test, feature = "test-hooks"))]
            self.reuses.fetch_add(1, Ordering::SeqCst);
        }
        if family.reused {
            return Err(invalid(
                "The refresh token was already used; every token of its grant is revoked.",
            ));
        }
        let grant = Grant {
            username: family.username.clone(),
            scope: family.scope.clone(),
            next: random_string(48),
        };
        inner.tokens.insert(token.to_owned(), (family_index, false));
        inner
            .tokens
            .insert(grant.next.clone(), (family_index, true));
        Ok(grant)
    }
}
