//! The `demo` command: the simulated Entra ID and Defender APIs, the real proxy in front of them
//! (configured through the same TOML path as production), and curl commands to paste. The config
//! it runs with is written to a scratch directory, so that `check`, `token` and `login` can be
//! tried against the demo too.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use defender_sim::{Sim, SimClient, SimClientAuth, SimOptions};
use tokio::net::TcpListener;

use crate::config::{Config, Listen, Overrides};
use crate::{app, signal};

/// The file next to the demo config that holds the simulator's client secret.
const SECRET_FILE: &str = "client-secret";
/// The simulator's public client, for the `user` credential that `login` signs in.
const PUBLIC_CLIENT: &str = "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d";

/// Runs the demo until Ctrl-C.
pub(crate) async fn run(listen: SocketAddr) -> io::Result<()> {
    let mut options = SimOptions::default();
    options.clients.push(SimClient::public(PUBLIC_CLIENT));
    let client = options
        .clients
        .first()
        .cloned()
        .ok_or_else(|| io::Error::other("the simulator has no client"))?;
    let SimClientAuth::Secret(secret) = client.auth else {
        return Err(io::Error::other("the demo client uses a client secret"));
    };
    let tenant = options.tenant_domain.clone();
    let sim = Sim::start(options).await?;
    let text = demo_config(&sim, &tenant, &client.client_id);
    let dir = scratch_dir()?;
    let path = dir.join("demo.toml");
    write_private(&dir.join(SECRET_FILE), &secret)?;
    write_private(&path, &text)?;
    let overrides = Overrides {
        listen: Some(Listen::Addr(listen)),
    };
    let origin = path.display().to_string();
    let config = Config::from_toml(&text, &origin, &dir, &overrides, &|_: &str| None)
        .map_err(io::Error::other)?;
    let listener = TcpListener::bind(listen).await.map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot listen on {listen}: {e} (try --listen 127.0.0.1:0)"),
        )
    })?;
    let proxy = format!("http://{}", listener.local_addr()?);
    print_instructions(&proxy, &sim, &path);
    let outcome = app::run(listener, config, signal::shutdown()).await;
    drop(sim);
    // The simulator is gone, and with it what the files describe.
    if let Err(error) = std::fs::remove_dir_all(&dir) {
        tracing::debug!(%error, dir = %dir.display(), "cannot remove the demo's directory");
    }
    outcome
}

/// A new private directory for the demo's config, its secret and its sign-in state.
fn scratch_dir() -> io::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!(
        "defender-token-proxy-demo-{}",
        uuid::Uuid::new_v4().simple()
    ));
    let mut builder = std::fs::DirBuilder::new();
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(&dir)?;
    Ok(dir)
}

fn write_private(path: &Path, text: &str) -> io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    std::io::Write::write_all(&mut options.open(path)?, text.as_bytes())
}

fn demo_config(sim: &Sim, tenant: &str, client_id: &str) -> String {
    format!(
        r#"# The demo's configuration, against the simulator; removed when the demo stops.
[state]
dir = "state"

[cloud]
authority_host = "{authority}"

[credentials.demo]
type = "client_secret"
tenant = "{tenant}"
client_id = "{client_id}"
client_secret = {{ file = "{SECRET_FILE}" }}

# A user sign-in: `login user --browser` (the simulator signs its analyst in at once).
[credentials.user]
type = "device_code"
tenant = "{tenant}"
client_id = "{PUBLIC_CLIENT}"
{routes}"#,
        authority = sim.authority(),
        routes = sim.routes_toml("demo"),
    )
}

fn print_instructions(proxy: &str, sim: &Sim, config: &Path) {
    println!(
        r#"defender-token-proxy demo
  proxy                {proxy}
  developer console    {proxy}/-/console
  simulated Entra ID   {authority}
  simulated APIs       MDE {mde}, XDR {xdr}, Graph {graph}, Cloud Apps {mdca}

The proxy gets a token from the simulated Entra ID and injects it; the simulated APIs refuse
requests without a valid token. Try (no Authorization header needed):

  curl -s '{proxy}/mde/api/alerts?$top=3'
  curl -s '{proxy}/mde/api/machines'
  curl -s -X POST '{proxy}/mde/api/advancedqueries/run' -H 'Content-Type: application/json' -d '{{"Query":"DeviceProcessEvents | take 3"}}'
  curl -s '{proxy}/xdr/api/incidents'
  curl -s '{proxy}/graph/v1.0/security/alerts_v2?$top=2'
  curl -s '{proxy}/mdca/api/v1/alerts/'
  curl -s '{proxy}/-/ready'

Paging stays behind the proxy: the @odata.nextLink in the first answer points at the proxy, so
fetching it needs no token either:

  curl -s '{proxy}/mde/api/alerts?$top=3&$skiptoken=b2Zmc2V0OjM'

The same call straight to the simulated API, without the proxy, is refused:

  curl -s '{mde}/api/alerts'

The one-off commands work against the demo too, with the config it runs with:

  defender-token-proxy check --config {config}
  defender-token-proxy token demo --api graph --config {config}
  defender-token-proxy login user --browser --no-open --api mde --config {config}

(login prints a sign-in page: open it, and the simulator signs its analyst in.)

Press Ctrl-C to stop."#,
        config = config.display(),
        authority = sim.authority(),
        mde = sim.mde(),
        xdr = sim.xdr(),
        graph = sim.graph(),
        mdca = sim.mdca(),
    );
}
