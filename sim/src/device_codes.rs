//! The device codes the device code flow hands out (RFC 8628 section 3.2), until redeemed, expired
//! or declined, and the user's side: approving or declining a code.

use std::sync::Mutex;
#[cfg(any(test, feature = "test-hooks"))]
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

use crate::entra_error::EntraError;
use crate::sync::lock;
use crate::token::now_ms;

/// Letters of user codes: consonants only, so no word is spelled by accident (RFC 8628 §6.1).
const USER_CODE_LETTERS: &[u8; 20] = b"BCDFGHJKLMNPQRSTVWXZ";

/// Every device code issued, and the switches tests use on them.
#[derive(Debug, Default)]
pub(crate) struct DeviceCodes {
    codes: Mutex<Vec<DeviceCode>>,
    issued: Notify,
    /// Polls still to answer `slow_down` (a test switch).
    #[cfg(any(test, feature = "test-hooks"))]
    slow_down: AtomicU32,
}

#[derive(Debug)]
pub(crate) struct DeviceCode {
    pub(crate) device_code: String,
    pub(crate) user_code: String,
    pub(crate) client_key: String,
    pub(crate) tenant_id: String,
    pub(crate) scope: String,
    pub(crate) expires_ms: u64,
    pub(crate) state: CodeState,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CodeState {
    Pending,
    Approved {
        username: String,
    },
    Declined,
    /// `SimControl::expire_device_codes` (the lifetime passing is checked against `expires_ms`).
    #[cfg(any(test, feature = "test-hooks"))]
    Expired,
    Redeemed,
}

impl DeviceCode {
    fn awaits_user(&self, now: u64) -> bool {
        self.state == CodeState::Pending && now < self.expires_ms
    }
}

impl DeviceCodes {
    /// The user code of the newest code still waiting for the user, waiting until `deadline` for one to be issued.
    pub(super) async fn wait_for_pending(&self, deadline: Duration) -> Option<String> {
        let found = async {
            loop {
                // Register interest before looking, so a code issued in between is not missed.
                let issued = self.issued.notified();
                tokio::pin!(issued);
                issued.as_mut().enable();
                let now = now_ms();
                let newest = lock(&self.codes)
                    .iter()
                    .rev()
                    .find(|code| code.awaits_user(now))
                    .map(|code| code.user_code.clone());
                if let Some(user_code) = newest {
                    return user_code;
                }
                issued.await;
            }
        };
        tokio::time::timeout(deadline, found).await.ok()
    }

    /// Moves a code still waiting for the user (matched case-insensitively) to `state`; false if there is none.
    pub(super) fn decide(&self, user_code: &str, username: Option<String>) -> bool {
        let now = now_ms();
        let mut codes = lock(&self.codes);
        let Some(code) = codes
            .iter_mut()
            .find(|c| c.user_code.eq_ignore_ascii_case(user_code.trim()) && c.awaits_user(now))
        else {
            return false;
        };
        code.state = match username {
            Some(username) => CodeState::Approved { username },
            None => CodeState::Declined,
        };
        true
    }

    /// Every code not redeemed yet answers `expired_token` from now on.
    #[cfg(any(test, feature = "test-hooks"))]
    pub(super) fn expire_all(&self) {
        for code in lock(&self.codes).iter_mut() {
            if matches!(code.state, CodeState::Pending | CodeState::Approved { .. }) {
                code.state = CodeState::Expired;
            }
        }
    }

    /// The next `polls` polls answer `slow_down`.
    #[cfg(any(test, feature = "test-hooks"))]
    pub(super) fn set_slow_down(&self, polls: u32) {
        self.slow_down.store(polls, Ordering::SeqCst);
    }

    #[cfg(any(test, feature = "test-hooks"))]
    pub(crate) fn take_slow_down(&self) -> bool {
        self.slow_down
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    }

    pub(crate) fn issue(&self, code: DeviceCode) {
        lock(&self.codes).push(code);
        self.issued.notify_waiters();
    }

    pub(crate) fn unique_user_code(&self) -> String {
        let codes = lock(&self.codes);
        loop {
            let random = uuid::Uuid::new_v4();
            let letters: String = random.as_bytes()[..8]
                .iter()
                .map(|b| char::from(USER_CODE_LETTERS[usize::from(*b) % USER_CODE_LETTERS.len()]))
                .collect();
            let user_code = format!("{}-{}", &letters[..4], &letters[4..]);
            if !codes.iter().any(|c| c.user_code == user_code) {
                return user_code;
            }
        }
    }

    /// One poll: the approving user's name and the scope once approved (the code is then spent), else the RFC 8628
    /// error the client acts on.
    /// `client_key` is the polling client's lower-case id, `tenant_id` the tenant of the path.
    pub(crate) fn poll(
        &self,
        client_key: &str,
        tenant_id: &str,
        device_code: &str,
    ) -> Result<(String, String), EntraError> {
        let now = now_ms();
        let mut codes = lock(&self.codes);
        let bad_code = || {
            EntraError::user_grant(
                "bad_verification_code",
                70000,
                "The provided value for the input parameter 'device_code' is not valid.",
            )
        };
        let code = codes
            .iter_mut()
            .find(|c| c.device_code == device_code)
            .filter(|c| c.client_key == client_key && c.tenant_id == tenant_id)
            .ok_or_else(bad_code)?;
        let expired = || {
            EntraError::user_grant(
                "expired_token",
                70020,
                "The provided value for the input parameter 'device_code' is not valid. This device code has expired.",
            )
        };
        match &code.state {
            CodeState::Redeemed => Err(EntraError::user_grant(
                "invalid_grant",
                54005,
                "The device code was already redeemed, please retry with a new valid code or use an existing refresh token.",
            )),
            #[cfg(any(test, feature = "test-hooks"))]
            CodeState::Expired => Err(expired()),
            _ if now >= code.expires_ms => Err(expired()),
            CodeState::Declined => Err(EntraError::user_grant(
                "authorization_declined",
                70000,
                "The end user declined the authorization request.",
            )),
            CodeState::Pending => Err(EntraError::user_grant(
                "authorization_pending",
                70016,
                "OAuth 2.0 device flow error. Authorization is pending. Continue polling.",
            )),
            CodeState::Approved { username } => {
                let approved = (username.clone(), code.scope.clone());
                code.state = CodeState::Redeemed;
                Ok(approved)
            }
        }
    }
}
