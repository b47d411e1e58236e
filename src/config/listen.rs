//! Where the main listener binds (`server.listen`, `--listen`): an address, or `localhost:PORT`,
//! which stands for every loopback address (IPv4 and IPv6), as a user typing it expects.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

/// Where the proxy listens unless told otherwise.
pub(crate) const DEFAULT_LISTEN: Listen =
    Listen::Addr(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8080));

/// A listen address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listen {
    /// One address, such as `127.0.0.1:8080` or `[::1]:8080`.
    Addr(SocketAddr),
    /// `localhost:PORT`: 127.0.0.1 and ::1, each where the machine has it. RFC 6761 section 6.3
    /// lets an application resolve localhost names to loopback itself, which keeps a resolver
    /// (or an /etc/hosts without `::1 localhost`) from moving the listener elsewhere.
    Localhost(u16),
}

impl Listen {
    /// The addresses to bind, in order (the first must succeed; the others may be missing).
    pub fn addresses(&self) -> Vec<SocketAddr> {
        match *self {
            Self::Addr(address) => vec![address],
            Self::Localhost(port) => vec![
                SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port),
                SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), port),
            ],
        }
    }

    /// Whether only this machine can connect.
    pub fn is_loopback(&self) -> bool {
        match self {
            Self::Addr(address) => address.ip().is_loopback(),
            Self::Localhost(_) => true,
        }
    }
}

impl fmt::Display for Listen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Addr(address) => address.fmt(f),
            Self::Localhost(port) => write!(f, "localhost:{port}"),
        }
    }
}

impl FromStr for Listen {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        if let Ok(address) = text.parse() {
            return Ok(Self::Addr(address));
        }
        match text.rsplit_once(':') {
            Some((host, port)) if host.eq_ignore_ascii_case("localhost") => port
                .parse()
                .map(Self::Localhost)
                .map_err(|_| format!("{text:?}: the port must be a number from 0 to 65535")),
            _ => Err(format!(
                "{text:?} is not a listen address: give IP:PORT (127.0.0.1:8080, [::1]:8080) or \
                 localhost:PORT"
            )),
        }
    }
}

impl<'de> serde::Deserialize<'de> for Listen {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_localhost_parse_and_localhost_means_both_loopbacks() {
        let v4: Listen = "127.0.0.1:8080".parse().unwrap();
        assert_eq!(v4.addresses(), vec!["127.0.0.1:8080".parse().unwrap()]);
        let localhost: Listen = "LocalHost:9000".parse().unwrap();
        assert_eq!(localhost, Listen::Localhost(9000));
        assert!(localhost.is_loopback());
        assert_eq!(
            localhost.addresses(),
            vec![
                "127.0.0.1:9000".parse::<SocketAddr>().unwrap(),
                "[::1]:9000".parse().unwrap()
            ]
        );
        assert_eq!(localhost.to_string(), "localhost:9000");
        assert!(!"0.0.0.0:80".parse::<Listen>().unwrap().is_loopback());
        for bad in [
            "localhost",
            "localhost:http",
            "example.com:80",
            "localhost:70000",
        ] {
            let error = bad.parse::<Listen>().unwrap_err();
            assert!(error.contains(bad), "{error}");
        }
    }
}
