//! The last requests through the proxy, for the console: method, path (never the query), status
//! and latency, in a bounded ring filled beside the audit line. No bodies, no headers.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use http::Method;

/// How many requests the console shows.
pub(super) const CAPACITY: usize = 100;
/// The longest path kept, in bytes: enough to recognise a request, bounded whatever clients send.
const MAX_PATH_BYTES: usize = 256;

/// One request as the console lists it.
#[derive(Debug, Clone)]
pub(super) struct Entry {
    pub(super) at: SystemTime,
    pub(super) method: Method,
    pub(super) path: Box<str>,
    pub(super) status: u16,
    pub(super) latency: Duration,
}

/// The ring of the last [`CAPACITY`] requests. Shared by the recording layer and the console's
/// API; the lock is held for a push or a copy, never across an await.
#[derive(Debug, Clone, Default)]
pub(crate) struct Recent(Arc<Mutex<VecDeque<Entry>>>);

impl Recent {
    fn push(&self, entry: Entry) {
        let mut ring = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if ring.len() == CAPACITY {
            ring.pop_front();
        }
        ring.push_back(entry);
    }

    /// The requests kept, newest first.
    pub(super) fn newest_first(&self) -> Vec<Entry> {
        let ring = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        ring.iter().rev().cloned().collect()
    }
}

impl Recent {
    /// Records a request for the APIs once its response headers are ready, as the audit line
    /// does. The proxy's own `/-/` endpoints (the console's polling among them) are not recorded:
    /// they would only crowd the others out.
    pub(crate) fn note(
        &self,
        method: &Method,
        path: &str,
        status: u16,
        at: SystemTime,
        latency: Duration,
    ) {
        if path.starts_with("/-/") {
            return;
        }
        self.push(Entry {
            at,
            method: method.clone(),
            path: truncate(path).into(),
            status,
            latency,
        });
    }
}

/// `path` cut to at most [`MAX_PATH_BYTES`], at a character boundary.
fn truncate(path: &str) -> &str {
    if path.len() <= MAX_PATH_BYTES {
        return path;
    }
    let mut end = MAX_PATH_BYTES;
    while !path.is_char_boundary(end) {
        end -= 1;
    }
    &path[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(status: u16) -> Entry {
        Entry {
            at: SystemTime::now(),
            method: Method::GET,
            path: "/mde/api/alerts".into(),
            status,
            latency: Duration::ZERO,
        }
    }

    #[test]
    fn the_ring_keeps_the_last_hundred_newest_first() {
        let recent = Recent::default();
        for status in 0..(CAPACITY as u16 + 5) {
            recent.push(entry(status));
        }
        let kept = recent.newest_first();
        assert_eq!(kept.len(), CAPACITY);
        assert_eq!(kept[0].status, CAPACITY as u16 + 4);
        assert_eq!(kept[CAPACITY - 1].status, 5);
    }

    #[test]
    fn long_paths_are_cut_at_a_character_boundary() {
        let long = format!("/{}", "é".repeat(200));
        let cut = truncate(&long);
        assert!(cut.len() <= MAX_PATH_BYTES);
        assert!(long.starts_with(cut));
        assert_eq!(truncate("/short"), "/short");
    }
}
