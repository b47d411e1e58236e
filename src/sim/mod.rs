//! In-process simulator of Microsoft Entra ID (client-credentials token endpoint) and the Defender APIs (MDE, XDR,
//! Graph security, MDCA), so that `demo` runs without an Azure account and the integration tests drive the real
//! proxy against realistic peers.
//!
//! # Layout
//! - `entra`, `entra_error`, `assertion`: the token endpoint, its error bodies, certificate client assertions.
//! - `token`: the resources the simulator knows; issuing and checking access tokens.
//! - `defender`: one API server per resource, with the token check, OData paging and data endpoints.
//! - `testing`: `/_sim/*` endpoints (echo, streaming, status codes, headers) for proxy behaviour tests.
//! - `data`: the generated records. `control`: counters and switches shared by all servers.
//!
//! Every server listens on `127.0.0.1:0`; nothing here talks to the network beyond loopback.

mod assertion;
mod control;
mod data;
mod defender;
mod entra;
mod entra_error;
mod export;
mod testing;
mod token;

use std::collections::HashMap;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub use control::{EntraFault, SimControl};

use assertion::{RegisteredCertificate, ReplayGuard};
use data::Dataset;
use token::{Api, TokenKeys};

/// How a `Sim` behaves: its tenant, registered clients, and what the token endpoint issues.
#[derive(Debug, Clone)]
pub struct SimOptions {
    /// Tenant GUID; the token endpoint also accepts `tenant_domain` in its path.
    pub tenant_id: String,
    /// Tenant domain, e.g. "contoso.onmicrosoft.com" (matched case-insensitively).
    pub tenant_domain: String,
    /// The app registrations allowed to request tokens.
    pub clients: Vec<SimClient>,
    /// Lifetime of issued tokens; `expires_in` is this in whole seconds, rounded down, at least 1.
    pub token_lifetime: Duration,
    /// When set, token responses carry `refresh_in` (whole seconds).
    pub refresh_in: Option<Duration>,
    /// When true, `expires_in`, `ext_expires_in` and `refresh_in` are JSON strings ("3599"), as v1 endpoints send.
    pub numbers_as_strings: bool,
    /// The `roles` claim of issued tokens.
    pub roles: Vec<String>,
    /// Page size of OData lists when the request has no `$top`.
    pub page_size: usize,
}

impl Default for SimOptions {
    fn default() -> Self {
        Self {
            tenant_id: "6f1d0a52-8e2b-4c7a-9d3e-2a5b7c9e1f04".to_owned(),
            tenant_domain: "contoso.onmicrosoft.com".to_owned(),
            clients: vec![SimClient::secret(
                "11111111-2222-3333-4444-555555555555",
                "demo-secret",
            )],
            token_lifetime: Duration::from_secs(3599),
            refresh_in: None,
            numbers_as_strings: false,
            roles: [
                "Alert.Read.All",
                "Machine.Read.All",
                "Incident.Read.All",
                "SecurityAlert.Read.All",
            ]
            .map(str::to_owned)
            .to_vec(),
            page_size: 5,
        }
    }
}

/// One app registration known to the simulated Entra.
#[derive(Debug, Clone)]
pub struct SimClient {
    /// Application (client) id.
    pub client_id: String,
    /// The credential the client must present.
    pub auth: SimClientAuth,
}

/// A client's credential.
#[derive(Clone)]
pub enum SimClientAuth {
    /// A client secret (sent as `client_secret` or with HTTP Basic).
    Secret(String),
    /// A certificate in PEM; only its CERTIFICATE block is used (the private key, if present, is ignored).
    Certificate(Vec<u8>),
}

impl std::fmt::Debug for SimClientAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Secret(_) => f.write_str("Secret([redacted])"),
            Self::Certificate(pem) => write!(f, "Certificate({} bytes of PEM)", pem.len()),
        }
    }
}

impl SimClient {
    /// A client that authenticates with a secret.
    pub fn secret(id: &str, secret: &str) -> Self {
        Self {
            client_id: id.to_owned(),
            auth: SimClientAuth::Secret(secret.to_owned()),
        }
    }

    /// A client that authenticates with a certificate (PEM with at least the CERTIFICATE block).
    pub fn certificate(id: &str, pem: &[u8]) -> Self {
        Self {
            client_id: id.to_owned(),
            auth: SimClientAuth::Certificate(pem.to_vec()),
        }
    }
}

/// A running simulator. Dropping it stops every server it started.
#[derive(Debug)]
pub struct Sim {
    authority: String,
    mde: String,
    xdr: String,
    graph: String,
    mdca: String,
    control: Arc<SimControl>,
    tasks: Vec<JoinHandle<()>>,
}

impl Sim {
    /// Binds every server on `127.0.0.1:0` and starts serving. Fails if a port cannot be bound or a client
    /// certificate cannot be read (`InvalidInput`).
    pub async fn start(options: SimOptions) -> io::Result<Sim> {
        let entra_listener = bind().await?;
        let authority = base_url(&entra_listener)?;
        let clients = register(options.clients)?;
        let control = Arc::new(SimControl::new(options.token_lifetime));
        let state = Arc::new(SimState {
            data: Dataset::generate(&options.tenant_id, &options.tenant_domain),
            tenant_id: options.tenant_id,
            tenant_domain: options.tenant_domain,
            clients,
            refresh_in: options.refresh_in,
            numbers_as_strings: options.numbers_as_strings,
            roles: options.roles,
            // A page size of 0 could never make progress through a list.
            page_size: options.page_size.max(1),
            keys: TokenKeys::random(),
            replay: ReplayGuard::default(),
            control: Arc::clone(&control),
            authority: authority.clone(),
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
        let [mde, xdr, graph, mdca]: [String; 4] = roots
            .try_into()
            .map_err(|_| io::Error::other("simulator started an unexpected number of servers"))?;
        Ok(Sim {
            authority,
            mde,
            xdr,
            graph,
            mdca,
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

    /// Counters and switches shared by all servers of this simulator.
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

/// Everything the servers of one `Sim` share.
#[derive(Debug)]
struct SimState {
    tenant_id: String,
    tenant_domain: String,
    /// Keyed by lower-case client id: Entra compares application ids case-insensitively.
    clients: HashMap<String, RegisteredClient>,
    refresh_in: Option<Duration>,
    numbers_as_strings: bool,
    roles: Vec<String>,
    page_size: usize,
    keys: TokenKeys,
    replay: ReplayGuard,
    control: Arc<SimControl>,
    authority: String,
    data: Dataset,
}

#[derive(Debug)]
struct RegisteredClient {
    client_id: String,
    /// Stable object id of the client's service principal (the `oid` claim).
    oid: String,
    credential: Credential,
}

enum Credential {
    Secret(String),
    Certificate(RegisteredCertificate),
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Secret(_) => f.write_str("Secret([redacted])"),
            Self::Certificate(cert) => cert.fmt(f),
        }
    }
}

fn register(clients: Vec<SimClient>) -> io::Result<HashMap<String, RegisteredClient>> {
    clients
        .into_iter()
        .map(|client| {
            let credential = match client.auth {
                SimClientAuth::Secret(secret) => Credential::Secret(secret),
                SimClientAuth::Certificate(pem) => Credential::Certificate(
                    RegisteredCertificate::from_pem(&pem)
                        .map_err(|err| io::Error::new(io::ErrorKind::InvalidInput, err))?,
                ),
            };
            let oid = data::stable_uuid(&format!(
                "service-principal-{}",
                client.client_id.to_ascii_lowercase()
            ));
            let registered = RegisteredClient {
                oid,
                client_id: client.client_id,
                credential,
            };
            Ok((registered.client_id.to_ascii_lowercase(), registered))
        })
        .collect()
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
