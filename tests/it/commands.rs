//! The one-off commands `check`, `token` and `consent-url`, run as the real binary against the
//! simulator, with the credentials of the login tests' workspace.

use crate::login::{ANALYST, run, sign_in, sim, workspace};
use crate::support::{CLIENT_ID, SECRET, client};

#[tokio::test]
async fn check_reports_every_credential_and_tenant_and_names_the_aadsts_code_of_a_failure() {
    let sim = sim().await;
    let (_dir, config) = workspace(&sim);
    sign_in(&sim, &config).await.unwrap();
    let (code, stdout, stderr) = run(&config, &["check"]).await;
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(
        stdout.contains(&format!("signed in as {ANALYST}")),
        "{stdout}"
    );
    assert!(stdout.contains("permissions: Alert.Read.All"), "{stdout}");
    assert!(
        stdout.contains("tenant fabrikam.onmicrosoft.com"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("eyJ") && !stderr.contains("eyJ"),
        "no token is printed"
    );

    sim.control()
        .refuse_tenant("fabrikam.onmicrosoft.com", Some(65001));
    let (code, stdout, _) = run(&config, &["check"]).await;
    assert_eq!(code, 1, "{stdout}");
    let failure = stdout
        .lines()
        .skip_while(|l| !l.starts_with("FAIL"))
        .take(3)
        .collect::<Vec<_>>()
        .join("\n");
    assert!(failure.contains("fabrikam.onmicrosoft.com"), "{stdout}");
    assert!(failure.contains("AADSTS65001"), "{stdout}");
    assert!(failure.contains("hint: consent"), "{stdout}");
}

#[tokio::test]
async fn token_prints_one_access_token_and_consent_url_the_admin_consent_link() {
    let sim = sim().await;
    let (_dir, config) = workspace(&sim);
    let (code, stdout, stderr) = run(&config, &["token", "app", "--api", "graph"]).await;
    assert_eq!(code, 0, "{stderr}");
    let token = stdout.trim();
    assert_eq!(token.split('.').count(), 3, "{stdout}");
    let graph = client()
        .get(format!("{}/_sim/whoami", sim.graph()))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(graph.status(), 200, "the token is for Graph");

    let (code, _, stderr) = run(&config, &["token", "partner"]).await;
    assert_eq!(code, 1);
    assert!(stderr.contains("--tenant"), "{stderr}");

    let (code, stdout, stderr) = run(
        &config,
        &[
            "consent-url",
            "partner",
            "--tenant",
            "woodgrove.onmicrosoft.com",
        ],
    )
    .await;
    assert_eq!(code, 0, "{stderr}");
    let url = url::Url::parse(stdout.trim()).unwrap();
    assert_eq!(url.path(), "/woodgrove.onmicrosoft.com/v2.0/adminconsent");
    let query: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(query["client_id"], CLIENT_ID);
    assert_eq!(
        query["scope"],
        "https://api.security.microsoft.com/.default"
    );
    assert_eq!(query["redirect_uri"], "https://portal.azure.com");
}

#[tokio::test]
async fn check_works_from_the_azure_variables_alone() {
    let sim = sim().await;
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_defender-token-proxy"))
        .arg("check")
        .env_clear()
        .env("AZURE_TENANT_ID", "contoso.onmicrosoft.com")
        .env("AZURE_CLIENT_ID", CLIENT_ID)
        .env("AZURE_CLIENT_SECRET", SECRET)
        .env("AZURE_AUTHORITY_HOST", sim.authority())
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // One token per preset route: /mde, /xdr and /graph.
    let ok = stdout
        .lines()
        .filter(|l| l.starts_with("ok    env "))
        .count();
    assert_eq!(ok, 3, "{stdout}");
    assert!(
        stdout.contains("scope https://graph.microsoft.com/.default"),
        "{stdout}"
    );
}
