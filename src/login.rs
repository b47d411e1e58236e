//! Interactive sign-in for user-context credentials: the device code flow (RFC 8628;
//! <https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-device-code>)
//! and the authorization code flow with PKCE and a loopback redirect (RFC 7636 and RFC 8252;
//! <https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-auth-code-flow>).
//! Either way the refresh token goes to the state directory, from where the proxy gets user tokens
//! silently.

use std::collections::HashMap;
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant, SystemTime};

use axum::extract::Query;
use axum::http::StatusCode;
use axum::response::Html;
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::credential::Credential;
use crate::secret::Secret;
use crate::state::TokenFile;
use crate::token::{AccessToken, EntraClient, TokenError, TokenResponse, user_scope};

/// RFC 8628 section 3.5: on `slow_down` "the interval MUST be increased by 5 seconds".
const SLOW_DOWN_STEP: Duration = Duration::from_secs(5);
/// How often `login` says it is still waiting for the device code sign-in.
const STATUS_EVERY: Duration = Duration::from_secs(30);
/// How long the browser sign-in may take before `login` gives up.
const BROWSER_TIMEOUT: Duration = Duration::from_secs(5 * 60);

/// Why a sign-in did not complete.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// Entra refused or failed a request.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// The user declined the sign-in.
    #[error("the sign-in was declined")]
    Declined,
    /// The code expired before the user signed in.
    #[error("the code expired before the sign-in completed; run login again")]
    Expired,
    /// Entra issued no refresh token, so the proxy could not get tokens later.
    #[error(
        "Entra returned no refresh token: the app registration must allow the offline_access scope"
    )]
    NoRefreshToken,
    /// The sign-in could not be stored.
    #[error("cannot store the sign-in in {}", .path.display())]
    State {
        /// The state file.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The loopback listener for the browser's redirect could not be used.
    #[error("cannot receive the browser's redirect")]
    Redirect(#[source] std::io::Error),
    /// The redirect carried an error, or no code.
    #[error("the browser sign-in failed: {0}")]
    Authorization(String),
}

/// Who signed in.
#[derive(Debug)]
pub struct SignedIn {
    /// The account, when the token names it.
    pub account: Option<String>,
}

/// Signs in with the device code flow: prints where to go and the code to enter to `out`, polls as
/// Entra asks, and stores the refresh token in `file`.
pub async fn device_code(
    entra: &EntraClient,
    credential: &Credential,
    file: &TokenFile,
    scope: &str,
    out: &mut (impl Write + Send),
) -> Result<SignedIn, LoginError> {
    let code = entra.device_code(credential, scope).await?;
    // Entra's own message says the same, localised; the two fixed lines are for scripts.
    let message = code.message.clone().unwrap_or_else(|| {
        format!(
            "To sign in, use a web browser to open the page {} and enter the code {} to authenticate.",
            code.verification_uri, code.user_code
        )
    });
    // Failing to print is not a reason to stop: the sign-in can still complete.
    drop(writeln!(
        out,
        "{message}\nverification_uri: {}\nuser_code: {}",
        code.verification_uri, code.user_code
    ));
    drop(out.flush());
    // Both numbers come from Entra: saturate rather than overflow the clock.
    let deadline = Instant::now().checked_add(code.expires_in);
    let mut interval = code.interval;
    let mut next_status = Instant::now();
    loop {
        // So that a person at the terminal sees the command is alive and how long the code lasts.
        if Instant::now() >= next_status {
            next_status = Instant::now() + STATUS_EVERY;
            let left = deadline.map_or(code.expires_in, |deadline| {
                deadline.saturating_duration_since(Instant::now())
            });
            drop(writeln!(
                out,
                "waiting for the sign-in: enter {} at {} ({} left)",
                code.user_code,
                code.verification_uri,
                humantime::format_duration(Duration::from_secs(left.as_secs()))
            ));
            drop(out.flush());
        }
        // RFC 8628 section 3.4: the client waits `interval` between polls.
        tokio::time::sleep(interval).await;
        if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
            return Err(LoginError::Expired);
        }
        match entra.poll_device_code(credential, &code).await {
            Ok(response) => {
                drop(writeln!(out, "sign-in approved; storing it"));
                return store(file, response).await;
            }
            Err(TokenError::Rejected(rejection)) => match rejection.error.as_str() {
                "authorization_pending" => {}
                "slow_down" => interval = interval.saturating_add(SLOW_DOWN_STEP),
                "expired_token" | "code_expired" => return Err(LoginError::Expired),
                "authorization_declined" | "access_denied" => return Err(LoginError::Declined),
                _ => return Err(TokenError::Rejected(rejection).into()),
            },
            Err(error) => return Err(error.into()),
        }
    }
}

/// Signs in with the authorization code flow and PKCE: prints (and, unless `open` is false, opens)
/// the sign-in page, receives the redirect on a loopback port, redeems the code and stores the
/// refresh token in `file`.
pub(crate) async fn browser(
    entra: &EntraClient,
    credential: &Credential,
    file: &TokenFile,
    scope: &str,
    open: bool,
    out: &mut (impl Write + Send),
) -> Result<SignedIn, LoginError> {
    let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .await
        .map_err(LoginError::Redirect)?;
    let port = listener.local_addr().map_err(LoginError::Redirect)?.port();
    // Entra matches loopback redirect URIs without their port
    // (https://learn.microsoft.com/en-us/entra/identity-platform/reply-url), so one
    // registration of http://localhost serves any free port.
    let redirect_uri = format!("http://localhost:{port}/");
    let verifier = Secret::new(random_token());
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.expose().as_bytes()));
    let state = random_token();
    let mut url = url::Url::parse(&format!(
        "{}/{}/oauth2/v2.0/authorize",
        credential.authority,
        credential.home_tenant()
    ))
    .map_err(|e| LoginError::Authorization(e.to_string()))?;
    url.query_pairs_mut()
        .append_pair("client_id", &credential.client_id)
        .append_pair("response_type", "code")
        .append_pair("redirect_uri", &redirect_uri)
        .append_pair("response_mode", "query")
        .append_pair("scope", &user_scope(scope))
        .append_pair("state", &state)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    drop(writeln!(
        out,
        "To sign in, open this page in a browser:\n{url}"
    ));
    drop(out.flush());
    if open {
        open_browser(url.as_str());
    }
    drop(writeln!(
        out,
        "waiting for the browser to come back to {redirect_uri} ({} left)",
        humantime::format_duration(BROWSER_TIMEOUT)
    ));
    drop(out.flush());
    let (sender, mut receiver) = mpsc::channel::<HashMap<String, String>>(1);
    let expected = state.clone();
    let app = axum::Router::new().route(
        "/",
        get(move |Query(query): Query<HashMap<String, String>>| {
            let (sender, expected) = (sender.clone(), expected.clone());
            async move {
                // Any page on this machine can send the browser here: only the redirect that
                // carries this sign-in's `state` ends it (RFC 6749 section 10.12); another gets
                // an error page, and the listener waits on for the real one.
                if query.get("state") != Some(&expected) {
                    return (
                        StatusCode::BAD_REQUEST,
                        Html("<p>This is not the redirect of the sign-in in progress.</p>"),
                    );
                }
                let failed = query.contains_key("error");
                drop(sender.try_send(query));
                (
                    StatusCode::OK,
                    Html(if failed {
                        "<p>Sign-in failed; see the terminal.</p>"
                    } else {
                        "<p>Signed in. You can close this window.</p>"
                    }),
                )
            }
        }),
    );
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let received = tokio::time::timeout(BROWSER_TIMEOUT, receiver.recv()).await;
    server.abort();
    let query = match received {
        Ok(Some(query)) => query,
        Ok(None) => {
            return Err(LoginError::Authorization(
                "the redirect listener stopped".into(),
            ));
        }
        Err(_) => return Err(LoginError::Expired),
    };
    if let Some(error) = query.get("error") {
        let description = query
            .get("error_description")
            .map(|d| format!(": {d}"))
            .unwrap_or_default();
        return Err(LoginError::Authorization(format!("{error}{description}")));
    }
    let code = query
        .get("code")
        .map(|c| Secret::new(c.as_str()))
        .ok_or_else(|| LoginError::Authorization("the redirect carries no code".into()))?;
    let response = entra
        .redeem_code(credential, &code, &redirect_uri, &verifier, scope)
        .await?;
    store(file, response).await
}

/// Stores a sign-in's refresh token, replacing any earlier one and clearing what the process
/// remembered about it.
async fn store(file: &TokenFile, response: TokenResponse) -> Result<SignedIn, LoginError> {
    let refresh_token = response
        .refresh_token
        .clone()
        .ok_or(LoginError::NoRefreshToken)?;
    let account = AccessToken::new(response, Instant::now(), SystemTime::now())
        .ok()
        .and_then(|token| token.account.clone());
    let state_error = |source| LoginError::State {
        path: file.path().to_owned(),
        source,
    };
    let mut memory = file.lock().await.map_err(state_error)?;
    file.save(&refresh_token, account.as_deref())
        .await
        .map_err(state_error)?;
    *memory = Default::default();
    Ok(SignedIn { account })
}

/// Two version-4 UUIDs (122 random bits each, so 244 in all) as 43 base64url characters: a PKCE
/// verifier (RFC 7636 section 4.1 wants 43 to 128 characters) or a `state` value.
fn random_token() -> String {
    let bytes: Vec<u8> = [uuid::Uuid::new_v4(), uuid::Uuid::new_v4()]
        .iter()
        .flat_map(|u| *u.as_bytes())
        .collect();
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Asks the desktop to open `url`; if that fails the printed URL is still there to copy.
fn open_browser(url: &str) {
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else {
        "xdg-open"
    };
    let spawned = std::process::Command::new(opener)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    if let Err(error) = spawned {
        tracing::debug!(%error, "could not start {opener}; open the printed URL by hand");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_verifiers_are_long_enough_and_unique() {
        let (a, b) = (random_token(), random_token());
        assert_ne!(a, b);
        assert!((43..=128).contains(&a.len()), "{}", a.len());
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        );
    }
}
