//! The `demo` command: the simulated Entra ID and Defender APIs, the real proxy in front of them
//! (configured through the same TOML path as production), and curl commands to paste.

use std::io;
use std::net::SocketAddr;
use std::path::Path;

use defender_sim::{Sim, SimClientAuth, SimOptions};
use tokio::net::TcpListener;

use crate::config::{Config, Listen, Overrides};
use crate::{app, signal};

/// The environment variable name the demo config reads its client secret from (served from memory,
/// never from the real environment).
const SECRET_VAR: &str = "DEMO_CLIENT_SECRET";

/// Runs the demo until Ctrl-C.
pub(crate) async fn run(listen: SocketAddr) -> io::Result<()> {
    let options = SimOptions::default();
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
    let env = |name: &str| (name == SECRET_VAR).then(|| secret.clone());
    let overrides = Overrides {
        listen: Some(Listen::Addr(listen)),
    };
    let config = Config::from_toml(&text, "demo", Path::new("."), &overrides, &env)
        .map_err(io::Error::other)?;
    let listener = TcpListener::bind(listen).await.map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot listen on {listen}: {e} (try --listen 127.0.0.1:0)"),
        )
    })?;
    let proxy = format!("http://{}", listener.local_addr()?);
    print_instructions(&proxy, &sim);
    let outcome = app::run(listener, config, signal::shutdown()).await;
    drop(sim);
    outcome
}

fn demo_config(sim: &Sim, tenant: &str, client_id: &str) -> String {
    format!(
        r#"[cloud]
authority_host = "{authority}"

[credentials.demo]
type = "client_secret"
tenant = "{tenant}"
client_id = "{client_id}"
client_secret = {{ env = "{SECRET_VAR}" }}
{routes}"#,
        authority = sim.authority(),
        routes = sim.routes_toml("demo"),
    )
}

fn print_instructions(proxy: &str, sim: &Sim) {
    println!(
        r#"defender-token-proxy demo
  proxy                {proxy}
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

Press Ctrl-C to stop."#,
        authority = sim.authority(),
        mde = sim.mde(),
        xdr = sim.xdr(),
        graph = sim.graph(),
        mdca = sim.mdca(),
    );
}
