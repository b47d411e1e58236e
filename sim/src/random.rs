//! Random opaque strings: codes, refresh tokens and user codes.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// An opaque base64url string of `bytes` bytes taken from v4 UUIDs (the OS random source; 122 of
/// each UUID's 128 bits are random).
pub(crate) fn random_string(bytes: usize) -> String {
    let random: Vec<u8> = std::iter::repeat_with(|| *uuid::Uuid::new_v4().as_bytes())
        .flatten()
        .take(bytes)
        .collect();
    URL_SAFE_NO_PAD.encode(random)
}
