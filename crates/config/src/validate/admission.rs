//! The admission keys of `[limits]`: handshake rates, connections per IP
//! and per user, and the trusted proxies (addresses or CIDR networks).

use ipnet::IpNet;

use super::Check;
use crate::admission::{Admission, TrustedProxies};
use crate::error::ConfigError;
use crate::raw::RawLimits;

/// Above this a "per second" limit is no limit at all on one node, and is
/// most likely a typo for 0 or a per-minute figure.
const MAX_PER_SECOND: u32 = 1_000_000;

impl Check<'_> {
    pub(super) fn admission(&self, raw: &RawLimits) -> Result<Admission, ConfigError> {
        let defaults = Admission::default();
        let admission = Admission {
            max_handshakes_per_second: self.per_second(
                "limits.max_handshakes_per_second",
                raw.max_handshakes_per_second,
                defaults.max_handshakes_per_second,
            )?,
            max_handshakes_per_ip_per_second: self.per_second(
                "limits.max_handshakes_per_ip_per_second",
                raw.max_handshakes_per_ip_per_second,
                defaults.max_handshakes_per_ip_per_second,
            )?,
            max_connections_per_ip: raw.max_connections_per_ip.unwrap_or(defaults.max_connections_per_ip),
            max_connections_per_user: raw
                .max_connections_per_user
                .unwrap_or(defaults.max_connections_per_user),
            trusted_proxies: match &raw.trusted_proxies {
                Some(entries) => self.trusted_proxies(entries)?,
                None => defaults.trusted_proxies,
            },
        };
        let (node, ip) = (admission.max_handshakes_per_second, admission.max_handshakes_per_ip_per_second);
        if node > 0 && ip > node {
            return Err(self.invalid(
                "limits.max_handshakes_per_ip_per_second",
                format!(
                    "{ip} is more than limits.max_handshakes_per_second ({node}): one address could take \
                     the whole node's handshakes; lower it, or set 0 for no per-address limit"
                ),
            ));
        }
        Ok(admission)
    }

    /// A rate per second: 0 (no limit) or 1 to [`MAX_PER_SECOND`].
    fn per_second(&self, key: &str, value: Option<u32>, default: u32) -> Result<u32, ConfigError> {
        match value {
            Some(n) if n > MAX_PER_SECOND => Err(self
                .invalid(key, format!("{n} per second is more than {MAX_PER_SECOND}; use 0 for no limit"))),
            Some(n) => Ok(n),
            None => Ok(default),
        }
    }

    fn trusted_proxies(&self, entries: &[String]) -> Result<TrustedProxies, ConfigError> {
        let key = "limits.trusted_proxies";
        let mut networks = Vec::with_capacity(entries.len());
        for entry in entries {
            networks.push(parse_network(entry).map_err(|reason| self.invalid(key, reason))?);
        }
        Ok(TrustedProxies::new(networks))
    }
}

/// `10.0.0.1`, `10.0.0.0/8`, `::1` or `fd00::/8`. A network with host bits
/// set (`10.0.0.1/8`) is refused: it is most likely a mistyped prefix.
fn parse_network(entry: &str) -> Result<IpNet, String> {
    let text = entry.trim();
    if let Ok(ip) = text.parse::<std::net::IpAddr>() {
        return Ok(IpNet::from(ip.to_canonical()));
    }
    let network: IpNet = text.parse().map_err(|_| {
        format!("`{entry}` is not an IP address or a CIDR network (e.g. 10.0.0.1, 10.0.0.0/8, fd00::/8)")
    })?;
    if network.trunc() != network {
        return Err(format!(
            "`{entry}` has bits set after its /{} prefix; did you mean {}?",
            network.prefix_len(),
            network.trunc()
        ));
    }
    Ok(network)
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::*;
    use crate::from_toml;

    fn admission(limits: &str) -> Result<Admission, ConfigError> {
        from_toml(&format!("[limits]\n{limits}")).map(|settings| settings.admission)
    }

    fn reason(error: ConfigError) -> (String, String) {
        match error {
            ConfigError::Invalid { key, reason, .. } => (key, reason),
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn nothing_configured_limits_the_node_to_1000_handshakes_a_second_and_nothing_else() {
        let admission = admission("").unwrap();
        assert_eq!(admission, Admission::default());
        assert_eq!(admission.max_handshakes_per_second, 1000);
        assert_eq!(admission.max_handshakes_per_ip_per_second, 0);
        assert_eq!((admission.max_connections_per_ip, admission.max_connections_per_user), (0, 0));
        assert!(admission.trusted_proxies.is_empty());
    }

    #[test]
    fn zero_turns_a_rate_off_and_an_absurd_rate_is_refused_by_key() {
        let off = admission("max_handshakes_per_second = 0\nmax_handshakes_per_ip_per_second = 0").unwrap();
        assert_eq!((off.max_handshakes_per_second, off.max_handshakes_per_ip_per_second), (0, 0));
        let (key, why) = reason(admission("max_handshakes_per_ip_per_second = 5000000").unwrap_err());
        assert_eq!(key, "limits.max_handshakes_per_ip_per_second");
        assert!(why.contains("use 0 for no limit"), "{why}");
    }

    #[test]
    fn a_per_address_rate_above_the_node_rate_is_refused() {
        let (key, why) = reason(
            admission("max_handshakes_per_second = 100\nmax_handshakes_per_ip_per_second = 200").unwrap_err(),
        );
        assert_eq!(key, "limits.max_handshakes_per_ip_per_second");
        assert!(why.contains("more than limits.max_handshakes_per_second (100)"), "{why}");
        assert!(admission("max_handshakes_per_second = 0\nmax_handshakes_per_ip_per_second = 200").is_ok());
    }

    #[test]
    fn trusted_proxies_take_addresses_and_networks_of_both_families() {
        let proxies =
            admission(r#"trusted_proxies = ["10.0.0.0/8", "192.0.2.7", "fd00::/8", "::ffff:198.51.100.1"]"#)
                .unwrap()
                .trusted_proxies;
        assert!(proxies.contains(ip("10.200.3.4")));
        assert!(proxies.contains(ip("192.0.2.7")));
        assert!(!proxies.contains(ip("192.0.2.8")));
        assert!(proxies.contains(ip("fd12::1")));
        assert!(proxies.contains(ip("198.51.100.1")), "a mapped address is its IPv4 address");
        assert!(proxies.contains(ip("::ffff:10.1.1.1")), "and the other way round");
        assert!(!proxies.contains(ip("2001:db8::1")));
        assert_eq!(proxies.to_strings(), ["10.0.0.0/8", "192.0.2.7", "fd00::/8", "198.51.100.1"]);
    }

    #[test]
    fn a_bad_cidr_is_refused_naming_the_key_and_the_entry() {
        for (entry, expected) in [
            ("10.0.0.0/33", "is not an IP address or a CIDR network"),
            ("balancer.internal", "is not an IP address or a CIDR network"),
            ("10.0.0.1/8", "did you mean 10.0.0.0/8?"),
            ("2001:db8::1/32", "did you mean 2001:db8::/32?"),
        ] {
            let error = admission(&format!("trusted_proxies = [\"{entry}\"]")).unwrap_err();
            let (key, why) = reason(error);
            assert_eq!(key, "limits.trusted_proxies");
            assert!(why.contains(entry) && why.contains(expected), "{entry}: {why}");
        }
    }
}
