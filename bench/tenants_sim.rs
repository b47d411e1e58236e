//! The simulator for `bench/tenants-memory.sh`: a `defender-sim` with N customer tenants on
//! loopback, and the proxy configuration that lists them all behind one partner credential.
//!
//!   cargo run --locked --example tenants_sim -- N CONFIG_PATH PROXY_PORT
//!
//! With N = 0 the configuration has the single-tenant `/mde` route only, the baseline the per-tenant
//! cost is measured against. The client secret is `{ env = "BENCH_CLIENT_SECRET" }` (the
//! simulator's `demo-secret`). Prints `ready` once the configuration is written, then serves until
//! SIGINT.

use std::io::Write;

use defender_sim::{Sim, SimOptions, SimTenant};

/// The `n`th customer tenant's id: a GUID, as partner configurations list them.
fn tenant(n: usize) -> String {
    format!("{n:08x}-0000-4000-8000-{n:012x}")
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let usage = || std::io::Error::other("usage: tenants_sim N CONFIG_PATH PROXY_PORT");
    let n: usize = args.next().and_then(|a| a.parse().ok()).ok_or_else(usage)?;
    let config = args.next().ok_or_else(usage)?;
    let port: u16 = args.next().and_then(|a| a.parse().ok()).ok_or_else(usage)?;
    let customers: Vec<String> = (0..n).map(tenant).collect();
    let options = SimOptions {
        customer_tenants: customers
            .iter()
            .map(|id| SimTenant {
                id: id.clone(),
                domain: format!("{id}.onmicrosoft.com"),
            })
            .collect(),
        ..SimOptions::default()
    };
    let home = options.tenant_id.clone();
    let sim = Sim::start(options).await?;
    let mut text = format!(
        r#"[server]
listen = "127.0.0.1:{port}"

[cloud]
authority_host = "{authority}"

[credentials.app]
type = "client_secret"
tenant = "{home}"
client_id = "11111111-2222-3333-4444-555555555555"
client_secret = {{ env = "BENCH_CLIENT_SECRET" }}

[[routes]]
prefix = "/mde"
api = "mde"
credential = "app"
upstream = "{mde}"
"#,
        authority = sim.authority(),
        mde = sim.mde(),
    );
    if n > 0 {
        let listed: Vec<String> = customers.iter().map(|t| format!("\"{t}\"")).collect();
        text.push_str(&format!(
            r#"
[credentials.partner]
type = "client_secret"
tenants = [{listed}]
client_id = "11111111-2222-3333-4444-555555555555"
client_secret = {{ env = "BENCH_CLIENT_SECRET" }}

[[routes]]
prefix = "/customers/{{tenant}}/mde"
api = "mde"
credential = "partner"
upstream = "{mde}"
"#,
            listed = listed.join(", "),
            mde = sim.mde(),
        ));
    }
    std::fs::write(&config, text)?;
    println!("ready");
    std::io::stdout().flush()?;
    tokio::signal::ctrl_c().await?;
    drop(sim);
    Ok(())
}
