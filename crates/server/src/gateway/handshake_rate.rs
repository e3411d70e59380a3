//! How fast WebSocket handshakes may come: per client address
//! (`limits.max_handshakes_per_ip_per_second`, answered 429) and for the
//! whole node (`limits.max_handshakes_per_second`, answered 503), so a
//! reconnect storm after a deploy is let in at a pace the node can take.
//!
//! `governor`'s GCRA: bursts of one second's worth, then the rate. The
//! per-address limiter keeps a cell per address seen; [`HandshakeRates::sweep`]
//! forgets the addresses whose bucket is full again, so memory stays
//! bounded by the addresses of about the last second.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota};

use crate::config::Admission;

/// How often the per-address cells are swept.
pub(crate) const SWEEP_EVERY: Duration = Duration::from_secs(10);

/// The shortest wait a refusal advises for the node's rate: retrying
/// sooner than this only adds to the storm.
const NODE_RETRY_FLOOR: Duration = Duration::from_secs(1);

/// The node's and each address's handshake rate; `None` where off.
pub struct HandshakeRates {
    node: Option<DefaultDirectRateLimiter>,
    per_ip: Option<DefaultKeyedRateLimiter<IpAddr>>,
}

/// Why a handshake was refused, and how long to wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TooFast {
    /// The client's address made its most handshakes this second.
    Address { wait: Duration },
    /// The node took its most handshakes this second.
    Node { wait: Duration },
}

impl HandshakeRates {
    pub fn new(admission: &Admission) -> Self {
        let quota = |per_second: u32| NonZeroU32::new(per_second).map(Quota::per_second);
        Self {
            node: quota(admission.max_handshakes_per_second).map(governor::RateLimiter::direct),
            per_ip: quota(admission.max_handshakes_per_ip_per_second).map(governor::RateLimiter::keyed),
        }
    }

    /// Takes one handshake of `client` (an address from
    /// `client_addr::limit_key`), first from its address's bucket (so one
    /// address's excess does not use up the node's), then from the node's.
    pub(crate) fn take(&self, client: Option<IpAddr>) -> Result<(), TooFast> {
        if let (Some(per_ip), Some(client)) = (&self.per_ip, client) {
            per_ip.check_key(&client).map_err(|not_until| TooFast::Address {
                wait: not_until.wait_time_from(DefaultClock::default().now()),
            })?;
        }
        if let Some(node) = &self.node {
            node.check().map_err(|not_until| {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                TooFast::Node { wait: spread(wait.max(NODE_RETRY_FLOOR)) }
            })?;
        }
        Ok(())
    }

    /// Forgets the addresses whose bucket has refilled.
    pub fn sweep(&self) {
        if let Some(per_ip) = &self.per_ip {
            per_ip.retain_recent();
            per_ip.shrink_to_fit();
        }
    }

    /// Addresses with a cell now.
    #[cfg(test)]
    fn addresses(&self) -> usize {
        self.per_ip.as_ref().map_or(0, |per_ip| per_ip.len())
    }
}

/// `wait` plus up to a second more, at random: the clients refused in
/// one instant of a storm come back spread over a second, not together.
fn spread(wait: Duration) -> Duration {
    wait + Duration::from_millis(rand::random_range(0..1000))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rates(node: u32, per_ip: u32) -> HandshakeRates {
        HandshakeRates::new(&Admission {
            max_handshakes_per_second: node,
            max_handshakes_per_ip_per_second: per_ip,
            ..Admission::default()
        })
    }

    fn ip(last: u8) -> Option<IpAddr> {
        Some(IpAddr::from([192, 0, 2, last]))
    }

    #[test]
    fn an_address_gets_a_seconds_worth_at_once_then_waits_for_its_next_cell() {
        let rates = rates(0, 5);
        for _ in 0..5 {
            rates.take(ip(1)).unwrap();
        }
        let Err(TooFast::Address { wait }) = rates.take(ip(1)) else { panic!("the sixth passed") };
        assert!(wait > Duration::ZERO && wait <= Duration::from_millis(200), "{wait:?}");
        rates.take(ip(2)).expect("another address has its own bucket");
        rates.take(None).expect("an unknown address is not limited by address");
    }

    #[test]
    fn the_node_refuses_past_its_rate_and_spreads_the_retries_over_a_second() {
        let rates = rates(3, 0);
        for last in 0..3 {
            rates.take(ip(last)).unwrap();
        }
        let Err(TooFast::Node { wait }) = rates.take(ip(9)) else { panic!("the fourth passed") };
        assert!(wait >= NODE_RETRY_FLOOR && wait < NODE_RETRY_FLOOR * 2 + Duration::from_millis(400));
    }

    #[test]
    fn an_address_refused_takes_nothing_from_the_node() {
        let rates = rates(2, 1);
        rates.take(ip(1)).unwrap();
        assert!(matches!(rates.take(ip(1)), Err(TooFast::Address { .. })));
        rates.take(ip(2)).expect("the node still has its second cell");
    }

    #[test]
    fn zero_is_no_limit() {
        let rates = rates(0, 0);
        for _ in 0..10_000 {
            rates.take(ip(1)).unwrap();
        }
    }

    #[test]
    fn sweeping_forgets_addresses_whose_bucket_refilled() {
        let rates = rates(0, 1000);
        for last in 0..50 {
            rates.take(ip(last)).unwrap();
        }
        assert_eq!(rates.addresses(), 50);
        // A cell of 1000/s refills in 1 ms.
        std::thread::sleep(Duration::from_millis(20));
        rates.sweep();
        assert_eq!(rates.addresses(), 0);
    }
}
