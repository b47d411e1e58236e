//! The stored sign-in shared by several processes: concurrent `token` runs serialise their
//! redemptions on the file's OS lock (the simulator, like Entra may, revokes the whole grant when a
//! rotated-out refresh token is presented), a corrupt file does not hold a new `login` back, and
//! the browser sign-in's redirect listener ignores redirects that are not its own.

use std::sync::Arc;
use std::time::Duration;

use defender_sim::EntraFault;
use defender_token_proxy::config::{ConfigSource, Env, Overrides};

use crate::login::{browser_login, run, sign_in, sim, state_file, workspace};
use crate::support::{SECRET, TestProxy};

fn env() -> Env {
    Arc::new(|name: &str| (name == "SECRET").then(|| SECRET.to_owned()))
}

#[tokio::test]
async fn six_concurrent_token_runs_never_present_a_rotated_out_refresh_token() {
    let sim = sim().await;
    let (_dir, config) = workspace(&sim);
    sign_in(&sim, &config).await.unwrap();
    let control = sim.control();
    // Each redemption takes a while, so that runs that were not serialised would overlap.
    control.set_fault(Some(EntraFault::Delay(Duration::from_millis(300))));
    let runs: Vec<_> = (0..6)
        .map(|_| {
            let config = config.clone();
            tokio::spawn(async move { run(&config, &["token", "user"]).await })
        })
        .collect();
    for run in runs {
        let (code, stdout, stderr) = run.await.unwrap();
        assert_eq!(code, 0, "{stderr}");
        assert!(!stdout.trim().is_empty());
    }
    assert_eq!(control.grant_requests("refresh_token"), 6);
    assert_eq!(
        control.refresh_token_reuses(),
        0,
        "every run presented the newest refresh token"
    );
}

#[tokio::test]
async fn after_a_corrupt_sign_in_file_a_new_login_takes_effect_at_once() {
    let sim = sim().await;
    let (dir, config) = workspace(&sim);
    let control = sim.control();
    let proxy = TestProxy::start_from(
        sim,
        ConfigSource::file(&config, Overrides::default(), env()),
    )
    .await;
    sign_in(&proxy.sim, &config).await.unwrap();
    assert_eq!(proxy.get("/mde/api/alerts").await.status(), 200);

    std::fs::write(state_file(&dir), "{ not a sign-in").unwrap();
    // The upstream refuses the cached token: the proxy needs a new one, from the corrupt file.
    control.revoke_all_tokens();
    let failed = proxy.get("/mde/api/alerts").await;
    assert_ne!(failed.status(), 200);
    let refreshes = control.grant_requests("refresh_token");

    // No backoff stands between the new sign-in and the next request.
    sign_in(&proxy.sim, &config).await.unwrap();
    let served = proxy.get("/mde/api/alerts").await;
    assert_eq!(
        served.status(),
        200,
        "{:?}",
        served.headers().get("x-token-proxy-error")
    );
    assert_eq!(control.grant_requests("refresh_token"), refreshes + 1);
}

#[tokio::test]
async fn a_redirect_with_a_wrong_state_gets_an_error_page_and_the_sign_in_waits_for_the_real_one() {
    let sim = sim().await;
    let (dir, config) = workspace(&sim);
    let (mut login, mut stdout, url) = browser_login(&config).await;
    let waiting = stdout.next_line().await.unwrap().unwrap();
    let redirect_uri = waiting
        .strip_prefix("waiting for the browser to come back to ")
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("{waiting}"))
        .to_owned();

    // A page the user visits sends the browser to the listener with its own code and state, or
    // with a made-up error.
    let browser = reqwest::Client::new();
    for forged in [
        "?code=forged&state=guessed",
        "?error=access_denied&state=x",
        "?code=c",
    ] {
        let answer = browser
            .get(format!("{redirect_uri}{forged}"))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 400, "{forged}");
        let page = answer.text().await.unwrap();
        assert!(page.contains("not the redirect"), "{page}");
    }
    assert!(
        login.try_wait().unwrap().is_none(),
        "the sign-in still waits"
    );

    // The real redirect ends it.
    let landed = browser.get(&url).send().await.unwrap();
    assert_eq!(landed.status(), 200);
    let output = tokio::time::timeout(Duration::from_secs(10), login.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(state_file(&dir).exists());
    assert_eq!(sim.control().grant_requests("authorization_code"), 1);
}
