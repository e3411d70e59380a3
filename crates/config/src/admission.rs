//! Who may open a connection, and how fast: the handshake rates of the
//! node and of one client address, the connections one address and one
//! user may hold, and which proxies' `X-Forwarded-For` names the client.
//! Written as `[limits]` keys; validated in `validate/admission.rs`.

use std::net::IpAddr;

use ipnet::IpNet;

/// The admission limits of one node (every count is node-local; 0 turns a
/// limit off).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admission {
    /// WebSocket handshakes this node accepts per second, in bursts of as
    /// many; more are answered 503 `unavailable` with `Retry-After`.
    pub max_handshakes_per_second: u32,
    /// Handshakes one client address (an IPv6 /64) may make per second;
    /// more are answered 429 `rate_limited` with `Retry-After`.
    pub max_handshakes_per_ip_per_second: u32,
    /// Connections one client address (an IPv6 /64) may hold; more are
    /// answered 429 `too_many_connections`.
    pub max_connections_per_ip: usize,
    /// Connections one user may hold on this node; more are refused at
    /// `connect` (native) or `pusher:signin` (Pusher).
    pub max_connections_per_user: usize,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: TrustedProxies,
}

impl Default for Admission {
    fn default() -> Self {
        Self {
            max_handshakes_per_second: 1000,
            max_handshakes_per_ip_per_second: 0,
            max_connections_per_ip: 0,
            max_connections_per_user: 0,
            trusted_proxies: TrustedProxies::default(),
        }
    }
}

/// Addresses and networks of the proxies in front of the server (a load
/// balancer, a CDN): a connection from one of them is from the client its
/// `X-Forwarded-For` names. Empty: the socket's peer is the client.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    pub fn new(networks: Vec<IpNet>) -> Self {
        Self(networks)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `ip` is one of the proxies (an IPv4-mapped IPv6 address
    /// counts as its IPv4 address).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|network| network.contains(&ip))
    }

    /// As written back by `fanfare config check`: an address alone when
    /// the network is one address.
    pub fn to_strings(&self) -> Vec<String> {
        self.0
            .iter()
            .map(|network| match network.prefix_len() == network.max_prefix_len() {
                true => network.addr().to_string(),
                false => network.to_string(),
            })
            .collect()
    }
}
