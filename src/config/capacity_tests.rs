//! Unit tests of the limits on slow and idle clients: the body read timeout, the admin listener's
//! connection cap, and the connection caps against the descriptor limit.

use super::tests::{MINIMAL, error, parse};
use super::*;

#[test]
fn the_body_read_timeout_and_admin_cap_have_defaults_and_bounds_naming_their_keys() {
    let config = parse(MINIMAL).unwrap();
    assert_eq!(config.server.body_read_timeout, DEFAULT_BODY_READ_TIMEOUT);
    assert_eq!(config.admin_max_connections, DEFAULT_ADMIN_MAX_CONNECTIONS);
    for value in ["\"0s\"", "\"2days\""] {
        let message = error(&format!(
            "{MINIMAL}\n[server]\nbody_read_timeout = {value}\n"
        ));
        assert!(message.contains("server.body_read_timeout"), "{message}");
    }
    let admin = "\n[admin]\nlisten = \"127.0.0.1:9901\"\n";
    for value in ["0", "9223372036854775807"] {
        let message = error(&format!("{MINIMAL}{admin}max_connections = {value}\n"));
        assert!(message.contains("admin.max_connections"), "{message}");
    }
    let config = parse(&format!(
        "{MINIMAL}\n[server]\nbody_read_timeout = \"5s\"\n{admin}max_connections = 3\n"
    ))
    .unwrap();
    assert_eq!(config.server.body_read_timeout, Duration::from_secs(5));
    assert_eq!(config.admin_max_connections, 3);
}

#[test]
fn a_connection_cap_beyond_the_descriptor_limit_is_refused_naming_the_key() {
    let Some(limit) = crate::descriptors::limit() else {
        return;
    };
    let message = error(&format!("{MINIMAL}\n[server]\nmax_connections = {limit}\n"));
    assert!(
        message.contains("server.max_connections") && message.contains("RLIMIT_NOFILE"),
        "{message}"
    );
}

#[test]
fn connections_fit_beside_the_admin_cap_upstream_connections_and_the_reserve() {
    use super::capacity::shortfall;
    let reserve = crate::descriptors::RESERVE;
    // 1024 descriptors, 64 admin: 10,000 connections with 1,024 requests in flight do not fit.
    let available = 1024 - 64 - reserve;
    assert_eq!(
        shortfall(1024, 64, 1024, 10_000),
        Some((available, available / 2))
    );
    // Few requests in flight: the rest is for connections.
    assert_eq!(
        shortfall(1024, 64, 100, 10_000),
        Some((available, available - 100))
    );
    assert_eq!(shortfall(1024, 64, 100, available - 100), None);
    assert_eq!(shortfall(1 << 20, 64, 1024, 10_000), None);
    assert_eq!(shortfall(0, 64, 1024, 1), Some((0, 0)));
}
