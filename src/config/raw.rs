//! The TOML file model as serde reads it: closed (`deny_unknown_fields`), every value still
//! unchecked. `validate` is the one step that turns it into a `Config`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::{Listen, identity};
use crate::cloud::{Api, Cloud};
use crate::credential::AssertionAlgorithm;
use crate::secret::SecretSource;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    #[serde(default)]
    pub(super) server: RawServer,
    #[serde(default)]
    pub(super) cloud: RawCloud,
    #[serde(default)]
    pub(super) credentials: BTreeMap<String, RawCredential>,
    #[serde(default)]
    pub(super) routes: Vec<RawRoute>,
    pub(super) admin: Option<RawAdmin>,
    pub(super) state: Option<RawState>,
    pub(super) identity_endpoint: Option<identity::RawIdentityEndpoint>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawState {
    pub(super) dir: PathBuf,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAdmin {
    pub(super) listen: SocketAddr,
    pub(super) max_connections: Option<usize>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawServer {
    pub(super) listen: Option<Listen>,
    #[serde(default)]
    pub(super) allow_remote: bool,
    #[serde(default, with = "humantime_serde")]
    pub(super) upstream_connect_timeout: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub(super) upstream_timeout: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub(super) token_timeout: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub(super) shutdown_grace: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub(super) watch_interval: Option<Duration>,
    #[serde(default)]
    pub(super) api_keys: Vec<SecretSource>,
    pub(super) replay_max_body_bytes: Option<usize>,
    pub(super) max_header_bytes: Option<usize>,
    #[serde(default, with = "humantime_serde")]
    pub(super) header_read_timeout: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub(super) body_read_timeout: Option<Duration>,
    pub(super) max_connections: Option<usize>,
    pub(super) max_concurrent_requests: Option<usize>,
    pub(super) token_request_concurrency: Option<usize>,
    #[serde(default, with = "humantime_serde")]
    pub(super) rate_limit_max_wait: Option<Duration>,
    pub(super) rate_limit_max_queue: Option<usize>,
    #[serde(default, with = "humantime_serde")]
    pub(super) retry_after_max: Option<Duration>,
    pub(super) rate_limit_store: Option<SecretSource>,
    pub(super) rate_limit_prefix: Option<String>,
    pub(super) tls: Option<RawTls>,
    #[serde(default)]
    pub(super) allowed_hosts: Vec<String>,
    #[serde(default)]
    pub(super) allowed_origins: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTls {
    pub(super) cert: PathBuf,
    pub(super) key: PathBuf,
    pub(super) client_ca: Option<PathBuf>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCloud {
    #[serde(default)]
    pub(super) name: Cloud,
    pub(super) authority_host: Option<String>,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub(super) enum RawCredential {
    ClientSecret {
        tenant: Option<String>,
        tenants: Option<Vec<String>>,
        client_id: String,
        client_secret: SecretSource,
    },
    ClientCertificate {
        tenant: Option<String>,
        tenants: Option<Vec<String>>,
        client_id: String,
        certificate: FileRef,
        #[serde(default)]
        algorithm: AssertionAlgorithm,
    },
    DeviceCode {
        tenant: String,
        client_id: String,
    },
    Password {
        tenant: String,
        client_id: String,
        username: String,
        password: SecretSource,
    },
    ApiToken {
        token: SecretSource,
    },
    WorkloadIdentity {
        tenant: Option<String>,
        client_id: Option<String>,
        token_file: Option<PathBuf>,
        authority_host: Option<String>,
    },
    ManagedIdentity {
        client_id: Option<String>,
        endpoint: Option<String>,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileRef {
    pub(super) file: PathBuf,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRoute {
    pub(super) prefix: String,
    pub(super) api: Option<Api>,
    pub(super) credential: String,
    pub(super) upstream: Option<String>,
    pub(super) scope: Option<String>,
    pub(super) methods: Option<Vec<String>>,
    pub(super) paths: Option<Vec<String>>,
    pub(super) rewrite_links: Option<bool>,
    pub(super) max_body_bytes: Option<u64>,
    pub(super) rate_limit: Option<crate::ratelimit::RateLimitSpec>,
    #[serde(default)]
    pub(super) tenant_header: bool,
}
