//! The process's limit on open file descriptors (`RLIMIT_NOFILE`): raised to its hard limit once,
//! so that the connection caps can fit under it, and the reserve kept for everything else.

use std::sync::OnceLock;

/// Descriptors kept for everything that is not a client connection or a request's upstream
/// connection: the listeners, Entra connections, the config, secret, state and certificate files,
/// the standard streams. The connection caps must leave this much free, so that the main listener
/// can always accept up to its cap.
pub(crate) const RESERVE: u64 = 64;

/// The soft limit on open descriptors, after raising it to the hard limit (the soft limit is often
/// 1024 while the hard limit is far higher); `None` where there is no limit or no way to read it.
pub(crate) fn limit() -> Option<u64> {
    static LIMIT: OnceLock<Option<u64>> = OnceLock::new();
    *LIMIT.get_or_init(raise)
}

#[cfg(unix)]
fn raise() -> Option<u64> {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current == limit.maximum {
        return limit.current;
    }
    let raised = Rlimit {
        current: limit.maximum,
        maximum: limit.maximum,
    };
    match setrlimit(Resource::Nofile, raised) {
        Ok(()) => getrlimit(Resource::Nofile).current,
        // macOS refuses an unlimited soft limit for descriptors; keep what there is.
        Err(error) => {
            tracing::debug!(%error, "cannot raise the open-file limit");
            limit.current
        }
    }
}

#[cfg(not(unix))]
fn raise() -> Option<u64> {
    None
}
