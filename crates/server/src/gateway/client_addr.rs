//! Who a connection is from, for the per-address limits.
//!
//! 1. The socket's peer is the client, unless it is a trusted proxy
//!    (`limits.trusted_proxies`).
//! 2. From a trusted proxy, walk `X-Forwarded-For` from the right (each
//!    proxy appends the address it got the request from): skip the
//!    trusted hops; the first untrusted address is the client. Entries
//!    left of it were written by the client and are never believed.
//! 3. The limits count an IPv4 address as itself and an IPv6 address by
//!    its /64 (one subscriber's network: a host there can pick any of
//!    2^64 addresses).

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use axum::extract::connect_info::Connected;
use axum::http::HeaderMap;
use axum::serve::IncomingStream;

use crate::plain_listener::PlainListener;
use crate::tls::TlsListener;

use crate::config::TrustedProxies;

const X_FORWARDED_FOR: &str = "x-forwarded-for";

/// The socket's peer, which the server hands every request (plain or TLS
/// listener alike) as `ConnectInfo<PeerAddr>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerAddr(pub SocketAddr);

impl Connected<IncomingStream<'_, PlainListener>> for PeerAddr {
    fn connect_info(stream: IncomingStream<'_, PlainListener>) -> Self {
        Self(*stream.remote_addr())
    }
}

impl Connected<IncomingStream<'_, TlsListener>> for PeerAddr {
    fn connect_info(stream: IncomingStream<'_, TlsListener>) -> Self {
        Self(*stream.remote_addr())
    }
}

/// The client's address (steps 1 and 2).
pub(crate) fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &TrustedProxies) -> IpAddr {
    let mut client = peer.to_canonical();
    if trusted.is_empty() || !trusted.contains(client) {
        return client;
    }
    // Several headers are one list, in order (RFC 9110 §5.3).
    let values: Vec<&str> =
        headers.get_all(X_FORWARDED_FOR).iter().filter_map(|value| value.to_str().ok()).collect();
    for entry in values.iter().rev().flat_map(|value| value.rsplit(',')) {
        // An entry that is no address: the hop that wrote it is the last
        // one we can vouch for.
        let Some(hop) = parse_hop(entry) else { return client };
        client = hop;
        if !trusted.contains(hop) {
            return hop;
        }
    }
    client
}

/// `192.0.2.1`, `2001:db8::1`, or either with a port (`192.0.2.1:4711`,
/// `[2001:db8::1]:4711`), as some proxies write them.
fn parse_hop(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    let ip = entry.parse::<IpAddr>().or_else(|_| entry.parse::<SocketAddr>().map(|addr| addr.ip())).ok()?;
    Some(ip.to_canonical())
}

/// What the per-address limits count by (step 3).
pub(crate) fn limit_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let network = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(Ipv6Addr::from(network))
        }
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn trusted(entries: &[&str]) -> TrustedProxies {
        TrustedProxies::new(entries.iter().map(|e| e.parse().unwrap()).collect())
    }

    fn forwarded(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(X_FORWARDED_FOR, HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    #[test]
    fn without_trusted_proxies_the_peer_is_the_client_whatever_the_header_says() {
        let headers = forwarded(&["203.0.113.9"]);
        assert_eq!(client_ip(ip("10.0.0.2"), &headers, &TrustedProxies::default()), ip("10.0.0.2"));
    }

    #[test]
    fn an_untrusted_peer_is_the_client_even_when_it_sends_the_header() {
        let headers = forwarded(&["203.0.113.9"]);
        let proxies = trusted(&["10.0.0.0/8"]);
        assert_eq!(client_ip(ip("198.51.100.4"), &headers, &proxies), ip("198.51.100.4"));
    }

    #[test]
    fn behind_trusted_proxies_the_first_untrusted_hop_from_the_right_is_the_client() {
        let proxies = trusted(&["10.0.0.0/8", "192.0.2.1/32"]);
        // client (spoofs 1.2.3.4) → CDN 192.0.2.1 → balancer 10.0.0.2 → us.
        let headers = forwarded(&["1.2.3.4, 203.0.113.9, 192.0.2.1"]);
        assert_eq!(client_ip(ip("10.0.0.2"), &headers, &proxies), ip("203.0.113.9"));
    }

    #[test]
    fn several_headers_are_one_list_in_order() {
        let proxies = trusted(&["10.0.0.0/8"]);
        let headers = forwarded(&["1.2.3.4, 203.0.113.9", "10.1.1.1"]);
        assert_eq!(client_ip(ip("10.0.0.2"), &headers, &proxies), ip("203.0.113.9"));
    }

    #[test]
    fn a_chain_of_only_trusted_hops_ends_at_its_leftmost_address() {
        let proxies = trusted(&["10.0.0.0/8"]);
        let headers = forwarded(&["10.9.9.9, 10.1.1.1"]);
        assert_eq!(client_ip(ip("10.0.0.2"), &headers, &proxies), ip("10.9.9.9"));
        assert_eq!(client_ip(ip("10.0.0.2"), &HeaderMap::new(), &proxies), ip("10.0.0.2"), "no header");
    }

    #[test]
    fn garbage_in_the_chain_stops_at_the_last_hop_that_can_be_vouched_for() {
        let proxies = trusted(&["10.0.0.0/8"]);
        let headers = forwarded(&["203.0.113.9, not-an-address, 10.1.1.1"]);
        assert_eq!(client_ip(ip("10.0.0.2"), &headers, &proxies), ip("10.1.1.1"));
    }

    #[test]
    fn hops_with_ports_and_ipv6_and_mapped_addresses_are_read() {
        let proxies = trusted(&["10.0.0.0/8", "fd00::/8"]);
        let headers = forwarded(&["[2001:db8::7]:4711, 10.1.1.1:80"]);
        assert_eq!(client_ip(ip("fd00::1"), &headers, &proxies), ip("2001:db8::7"));
        let headers = forwarded(&["::ffff:203.0.113.9"]);
        assert_eq!(client_ip(ip("::ffff:10.0.0.2"), &headers, &proxies), ip("203.0.113.9"));
    }

    #[test]
    fn ipv6_clients_are_counted_by_their_64_and_ipv4_by_their_address() {
        assert_eq!(limit_key(ip("2001:db8:1:2:aaaa::1")), ip("2001:db8:1:2::"));
        assert_eq!(limit_key(ip("2001:db8:1:2:ffff:ffff:ffff:ffff")), ip("2001:db8:1:2::"));
        assert_ne!(limit_key(ip("2001:db8:1:3::1")), limit_key(ip("2001:db8:1:2::1")));
        assert_eq!(limit_key(ip("203.0.113.9")), ip("203.0.113.9"));
        assert_ne!(limit_key(ip("203.0.113.9")), limit_key(ip("203.0.113.10")));
        assert_eq!(limit_key(ip("::ffff:203.0.113.9")), ip("203.0.113.9"));
    }
}
