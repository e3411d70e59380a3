//! Per-app rate limits of the Pusher HTTP API, held on this node: events
//! triggered per second (an event to N channels counts N, as Soketi and
//! Pusher's message count have it) and read (`GET`) requests per second.
//!
//! Requests of one app run concurrently on every worker thread, so the
//! limiters are shared: `governor`'s GCRA, lock-free, with bursts of one
//! second's worth and "take N at once" for multi-channel triggers. (The
//! per-connection limits of the gateway are a plain token bucket owned by
//! the connection's task: nothing to share there.)

use std::fmt;
use std::num::NonZeroU32;

use governor::{DefaultDirectRateLimiter, Quota};

use crate::config::AppSettings;

/// Why the HTTP API refused a request for its app's rate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RateLimited {
    #[error("this app may trigger {limit} events per second (on this node); slow down")]
    BackendEvents { limit: u32 },
    #[error("this request triggers {events} events, more than the {limit} per second this app may trigger")]
    MoreThanASecondsWorth { events: usize, limit: u32 },
    #[error("this app may make {limit} read requests per second (on this node); slow down")]
    ReadRequests { limit: u32 },
}

/// The limiters of one app; `None` where the app sets no limit.
pub struct AppRates {
    backend_events: Option<Limiter>,
    read_requests: Option<Limiter>,
}

struct Limiter {
    per_second: NonZeroU32,
    cells: DefaultDirectRateLimiter,
}

impl Limiter {
    /// `None` for 0 (unlimited).
    fn new(per_second: usize) -> Option<Self> {
        let per_second = NonZeroU32::new(u32::try_from(per_second).unwrap_or(u32::MAX))?;
        Some(Self { per_second, cells: governor::RateLimiter::direct(Quota::per_second(per_second)) })
    }
}

impl AppRates {
    pub fn new(settings: &AppSettings) -> Self {
        Self {
            backend_events: Limiter::new(settings.max_backend_events_per_second),
            read_requests: Limiter::new(settings.max_read_requests_per_second),
        }
    }

    /// Counts `events` triggered events (events × channels), all or none.
    pub fn take_backend_events(&self, events: usize) -> Result<(), RateLimited> {
        let Some(limiter) = &self.backend_events else { return Ok(()) };
        let limit = limiter.per_second.get();
        let Some(n) = NonZeroU32::new(u32::try_from(events).unwrap_or(u32::MAX)) else { return Ok(()) };
        let refused = match limiter.cells.check_n(n) {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(_)) => RateLimited::BackendEvents { limit },
            Err(_) => RateLimited::MoreThanASecondsWorth { events, limit },
        };
        crate::gateway::rate::count_refusal("pusher_api_events");
        Err(refused)
    }

    /// Counts one `GET` request.
    pub fn take_read_request(&self) -> Result<(), RateLimited> {
        let Some(limiter) = &self.read_requests else { return Ok(()) };
        limiter.cells.check().map_err(|_| {
            crate::gateway::rate::count_refusal("pusher_api_reads");
            RateLimited::ReadRequests { limit: limiter.per_second.get() }
        })
    }
}

impl fmt::Debug for AppRates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let limit = |limiter: &Option<Limiter>| limiter.as_ref().map(|l| l.per_second);
        f.debug_struct("AppRates")
            .field("backend_events_per_second", &limit(&self.backend_events))
            .field("read_requests_per_second", &limit(&self.read_requests))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rates(backend: usize, reads: usize) -> AppRates {
        let settings = AppSettings {
            max_backend_events_per_second: backend,
            max_read_requests_per_second: reads,
            ..AppSettings::new("a", "k", "s")
        };
        AppRates::new(&settings)
    }

    #[test]
    fn a_seconds_worth_passes_then_the_rest_is_refused() {
        let rates = rates(5, 2);
        rates.take_backend_events(3).unwrap();
        rates.take_backend_events(2).unwrap();
        assert_eq!(rates.take_backend_events(1), Err(RateLimited::BackendEvents { limit: 5 }));
        rates.take_read_request().unwrap();
        rates.take_read_request().unwrap();
        assert_eq!(rates.take_read_request(), Err(RateLimited::ReadRequests { limit: 2 }));
    }

    #[test]
    fn more_than_a_seconds_worth_at_once_can_never_pass() {
        let rates = rates(5, 0);
        assert_eq!(
            rates.take_backend_events(6),
            Err(RateLimited::MoreThanASecondsWorth { events: 6, limit: 5 })
        );
        rates.take_backend_events(5).unwrap();
    }

    #[test]
    fn zero_is_unlimited() {
        let rates = rates(0, 0);
        for _ in 0..1000 {
            rates.take_backend_events(100).unwrap();
            rates.take_read_request().unwrap();
        }
    }
}
