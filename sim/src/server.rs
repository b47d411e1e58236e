//! One simulated API server as its handlers see it: its API and root, the caller the token check let in, and
//! errors in the API's own shape. Shared by the router (`defender`) and the handlers of every endpoint.

use std::sync::Arc;

pub(super) use super::api_error::error;
use super::token::{AccessClaims, Api};
use crate::state::SimState;

/// One simulated API server.
#[derive(Debug)]
pub(super) struct ApiServer {
    pub(super) api: Api,
    /// "http://127.0.0.1:PORT", the root absolute links are built on.
    pub(super) root: String,
    pub(super) sim: Arc<SimState>,
}

/// Who a request authenticated as; the token check puts it in the request's extensions.
#[derive(Debug, Clone)]
pub(super) enum Caller {
    /// An Entra access token (app or user).
    Bearer(Box<AccessClaims>),
    /// A legacy MDCA API token.
    ApiToken,
}
