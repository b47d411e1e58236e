//! Content digests: noticing that a file or a stored value changed (not a security measure).

use std::hash::{Hash, Hasher};

/// A hash of `content`, to notice changes.
pub(crate) fn content_fingerprint(content: &[u8]) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    content.hash(&mut hasher);
    hasher.finish()
}
