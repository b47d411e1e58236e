//! In-process simulator of Microsoft Entra ID (app and user grants, home and customer tenants) and the
//! Defender APIs (MDE, XDR, Graph security, MDCA), so that `demo` runs without an Azure account and the integration
//! tests drive the real proxy against realistic peers.
//!
//! # Layout
//! - `options`: the public `SimOptions` and what it lists (tenants, clients, users). `directory`: tenants and users
//!   as the servers look them up.
//! - `entra`, `entra_error`: the token endpoint with the checks every grant shares and client credentials; its
//!   error bodies. `request`: the token request each grant gets, and form parsing. `assertion`: certificate client
//!   assertions. `federated`: workload identity assertions.
//! - User grants: `user` (scopes, the user-token answer, the password grant), `device` (device code flow),
//!   `authcode` (authorize endpoint, authorization code with PKCE), `refresh` (rotating refresh tokens); the
//!   codes and tokens they hand out are kept in `device_codes` and `refresh_tokens`, made with `random`.
//! - `issue`: what goes into an access token and the success body. `token`: the resources the simulator knows;
//!   signing and checking access tokens.
//! - `defender`: one API server per resource, with the token check, OData paging, data endpoints and gzip for clients
//!   that ask. `server`: the API server as its handlers see it, and the APIs' error shape. `mdca`: what only the
//!   MDCA server does (body paging, legacy API token). `export`: MDE's "via files" export answer.
//! - `throttle`: the APIs' quotas per app and tenant, and the 429 past them.
//! - `identity`: the managed-identity server (IMDS and App Service shapes).
//! - `state`: what the servers of one simulator share (clients, identities, codes, keys, data). `data`: the
//!   generated records. `control`: the switches and counters shared by all servers. `sync`: the locking rule.
//!
//! Every module imports only modules below it: the servers and grants import `state`, `request` and the stores,
//! never the other way round.
//!
//! # Test hooks
//! The `test-hooks` feature (always on in this crate's own tests) adds what tests drive the simulator with:
//! `testing`, the `/_sim/*` endpoints (echo, streaming, status codes, headers, broken gzip, whoami) for proxy behaviour
//! tests; `fault`, request counting and the injected `EntraFault` in front of the token endpoint and the
//! managed-identity server; and on `SimControl` the counters only tests read (and the last API request's
//! `Accept-Encoding`) and the switches (faults, revocation, refused tenants, device code expiry and `slow_down`).
//!
//! Every server listens on `127.0.0.1:0`; nothing here talks to the network beyond loopback.

mod api_error;
mod assertion;
mod authcode;
mod control;
mod data;
mod defender;
mod device;
mod device_codes;
mod directory;
mod entra;
mod entra_error;
mod export;
#[cfg(any(test, feature = "test-hooks"))]
mod fault;
mod federated;
mod identity;
mod issue;
mod mdca;
mod options;
mod random;
mod refresh;
mod refresh_tokens;
mod request;
mod server;
mod state;
mod sync;
#[cfg(any(test, feature = "test-hooks"))]
mod testing;
mod throttle;
mod token;
mod user;

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use axum::Router;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

#[cfg(any(test, feature = "test-hooks"))]
pub use control::EntraFault;
pub use control::SimControl;
pub use options::{SimClient, SimClientAuth, SimOptions, SimTenant, SimUser};
pub use throttle::{SimQuota, SimQuotas};

use assertion::ReplayGuard;
use data::Dataset;
use directory::Directory;
use state::{AuthCodes, SimState, register};
use token::{Api, TokenKeys};

/// A running simulator. Dropping it stops every server it started.
#[derive(Debug)]
pub struct Sim {
    authority: String,
    mde: String,
    xdr: String,
    graph: String,
    mdca: String,
    identity: String,
    control: Arc<SimControl>,
    tasks: Vec<JoinHandle<()>>,
}

impl Sim {
    /// Binds every server on `127.0.0.1:0` and starts serving. Fails if a port cannot be bound or a client
    /// certificate cannot be read (`InvalidInput`).
    pub async fn start(options: SimOptions) -> io::Result<Sim> {
        let entra_listener = bind().await?;
        let authority = base_url(&entra_listener)?;
        let directory = Arc::new(Directory::new(&options));
        let clients = register(options.clients)?;
        let control = Arc::new(SimControl::new(
            options.token_lifetime,
            Arc::clone(&directory),
        ));
        let state = Arc::new(SimState {
            data: Dataset::generate(&options.tenant_id, &options.tenant_domain),
            directory,
            clients,
            mdca_api_tokens: options.mdca_api_tokens,
            device_code_interval: options.device_code_interval,
            device_code_lifetime: options.device_code_lifetime,
            auth_codes: AuthCodes::default(),
            managed_identities: state::register_identities(&options.managed_identities),
            identity_header: options.identity_header,
            refresh_in: options.refresh_in,
            numbers_as_strings: options.numbers_as_strings,
            roles: options.roles,
            // A page size of 0 could never make progress through a list.
            page_size: options.page_size.max(1),
            keys: TokenKeys::random(),
            replay: ReplayGuard::default(),
            control: Arc::clone(&control),
            authority: authority.clone(),
            throttle: throttle::Throttle::new(options.quotas),
        });
        let mut tasks = vec![spawn_server(
            entra_listener,
            entra::router(Arc::clone(&state)),
        )];
        let mut roots = Vec::new();
        for api in [Api::Mde, Api::Xdr, Api::Graph, Api::Mdca] {
            let listener = bind().await?;
            let root = base_url(&listener)?;
            tasks.push(spawn_server(
                listener,
                defender::router(api, root.clone(), Arc::clone(&state)),
            ));
            roots.push(root);
        }
        let identity_listener = bind().await?;
        let identity = base_url(&identity_listener)?;
        tasks.push(spawn_server(
            identity_listener,
            identity::router(Arc::clone(&state)),
        ));
        let [mde, xdr, graph, mdca]: [String; 4] = roots
            .try_into()
            .map_err(|_| io::Error::other("simulator started an unexpected number of servers"))?;
        Ok(Sim {
            authority,
            mde,
            xdr,
            graph,
            mdca,
            identity,
            control,
            tasks,
        })
    }

    /// The Entra authority, "http://127.0.0.1:PORT" (no trailing slash).
    pub fn authority(&self) -> String {
        self.authority.clone()
    }

    /// Defender for Endpoint API root.
    pub fn mde(&self) -> String {
        self.mde.clone()
    }

    /// Defender XDR API root.
    pub fn xdr(&self) -> String {
        self.xdr.clone()
    }

    /// Microsoft Graph root.
    pub fn graph(&self) -> String {
        self.graph.clone()
    }

    /// Defender for Cloud Apps API root.
    pub fn mdca(&self) -> String {
        self.mdca.clone()
    }

    /// The managed-identity server, "http://127.0.0.1:PORT": IMDS at `/metadata/identity/oauth2/token` (the
    /// root to use in place of `http://169.254.169.254`) and App Service at `/msi/token` (`IDENTITY_ENDPOINT` is
    /// this root + "/msi/token").
    pub fn identity(&self) -> String {
        self.identity.clone()
    }

    /// The proxy's `[[routes]]` for the four simulated APIs (/mde, /xdr, /graph, /mdca), each with
    /// its preset and `credential`, as a config file would list them.
    pub fn routes_toml(&self, credential: &str) -> String {
        [("/mde", "mde", self.mde()), ("/xdr", "xdr", self.xdr()), ("/graph", "graph", self.graph()), ("/mdca", "mdca", self.mdca())]
            .iter()
            .map(|(prefix, api, upstream)| {
                format!("\n[[routes]]\nprefix = \"{prefix}\"\napi = \"{api}\"\ncredential = \"{credential}\"\nupstream = \"{upstream}\"\n")
            })
            .collect()
    }

    /// The state shared by all servers of this simulator: the user's side of the device code flow and, with the
    /// `test-hooks` feature, counters and switches.
    pub fn control(&self) -> Arc<SimControl> {
        Arc::clone(&self.control)
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        // Aborting the accept loop also tells axum's per-connection tasks to shut down gracefully.
        for task in &self.tasks {
            task.abort();
        }
    }
}

async fn bind() -> io::Result<TcpListener> {
    TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await
}

fn base_url(listener: &TcpListener) -> io::Result<String> {
    Ok(format!("http://{}", listener.local_addr()?))
}

fn spawn_server(listener: TcpListener, router: Router) -> JoinHandle<()> {
    tokio::spawn(async move {
        if let Err(err) = axum::serve(listener, router).await {
            tracing::warn!(error = %err, "simulated server stopped");
        }
    })
}

#[cfg(test)]
mod test_support;
