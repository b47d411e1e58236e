//! The connection caps against the process's limit on open descriptors: the main listener must be
//! able to accept up to `server.max_connections` whatever the admin listener and the upstream
//! connections hold.

use super::validator::Validator;
use super::{ConfigError, Server};
use crate::descriptors;

impl Validator<'_> {
    /// `server`, checked (with the admin listener's cap) against the descriptor limit. A
    /// `max_connections` left at its default is lowered to fit, with a warning; one that was set
    /// and does not fit is an error.
    pub(super) fn descriptors(
        &self,
        mut server: Server,
        explicit: bool,
        admin_max_connections: usize,
        warnings: &mut Vec<String>,
    ) -> Result<Server, ConfigError> {
        let Some(limit) = descriptors::limit() else {
            return Ok(server);
        };
        let wanted = server.limits.max_connections as u64;
        let in_flight = server.max_concurrent_requests as u64;
        let admin = admin_max_connections as u64;
        let Some((available, fits)) = shortfall(limit, admin, in_flight, wanted) else {
            return Ok(server);
        };
        let explain = format!(
            "this process may open {limit} files (RLIMIT_NOFILE, `ulimit -n`), less \
             admin.max_connections ({admin_max_connections}) and {} for its own files, leaves \
             {available} for connections and their upstream connections (one per request in \
             flight, server.max_concurrent_requests = {in_flight})",
            descriptors::RESERVE,
        );
        match usize::try_from(fits) {
            Ok(fits) if fits > 0 && !explicit => {
                warnings.push(format!(
                    "server.max_connections lowered from its default {wanted} to {fits}: {explain}"
                ));
                server.limits.max_connections = fits;
                Ok(server)
            }
            _ => Err(self.invalid(
                "server.max_connections",
                format!(
                    "{wanted} connections do not fit: {explain}; lower it (at most {fits}) or \
                     raise the limit"
                ),
            )),
        }
    }
}

/// `None` if `wanted` connections fit under `limit` descriptors beside `admin` admin connections,
/// the upstream connections and the reserve; otherwise what is available to connections and
/// their upstream connections, and the most connections that fit.
pub(super) fn shortfall(limit: u64, admin: u64, in_flight: u64, wanted: u64) -> Option<(u64, u64)> {
    let available = limit
        .saturating_sub(admin)
        .saturating_sub(descriptors::RESERVE);
    // Each request in flight may hold one upstream connection, and each came in over a
    // connection: at most min(connections, requests in flight) upstream connections.
    if wanted.saturating_add(wanted.min(in_flight)) <= available {
        return None;
    }
    let fits = match available.checked_sub(in_flight) {
        Some(rest) if rest >= in_flight => rest,
        _ => available / 2,
    };
    Some((available, fits))
}
