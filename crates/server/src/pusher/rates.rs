//! Per-app rate limits of the Pusher HTTP API: events triggered per
//! second (an event to N channels counts N, as Soketi and Pusher's message
//! count have it) and read (`GET`) requests per second, in bursts of one
//! second's worth, "take N at once" for multi-channel triggers.
//!
//! The buckets are in the [`RateLimits`] engine, so on a cluster the limit
//! is the app's across every node (`Bucket::App`), and in memory on a
//! single node. If the engine cannot answer, the request goes ahead.

use std::fmt;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use fanfare_cluster::{Admission, Bucket, Rate, RateLimits};

use crate::config::AppSettings;

/// Why the HTTP API refused a request for its app's rate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RateLimited {
    #[error("this app may trigger {limit} events per second; slow down")]
    BackendEvents { limit: u32, retry_after: Duration },
    #[error("this request triggers {events} events, more than the {limit} per second this app may trigger")]
    MoreThanASecondsWorth { events: usize, limit: u32 },
    #[error("this app may make {limit} read requests per second; slow down")]
    ReadRequests { limit: u32, retry_after: Duration },
}

impl RateLimited {
    /// How long until the same request can pass (`None`: never).
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::BackendEvents { retry_after, .. } | Self::ReadRequests { retry_after, .. } => {
                Some(*retry_after)
            }
            Self::MoreThanASecondsWorth { .. } => None,
        }
    }
}

/// The limits of one app; `None` where the app sets no limit.
pub struct AppRates {
    app: String,
    engine: Arc<dyn RateLimits>,
    backend_events: Option<Rate>,
    read_requests: Option<Rate>,
}

fn per_second(limit: usize) -> Option<Rate> {
    let count = NonZeroU32::new(u32::try_from(limit).unwrap_or(u32::MAX))?;
    Some(Rate { count, period: Duration::from_secs(1) })
}

impl AppRates {
    pub fn new(settings: &AppSettings, engine: Arc<dyn RateLimits>) -> Self {
        Self {
            app: settings.id.clone(),
            engine,
            backend_events: per_second(settings.max_backend_events_per_second),
            read_requests: per_second(settings.max_read_requests_per_second),
        }
    }

    /// Counts `events` triggered events (events × channels), all or none.
    pub async fn take_backend_events(&self, events: usize) -> Result<(), RateLimited> {
        let Some(rate) = self.backend_events else { return Ok(()) };
        let limit = rate.count.get();
        let Some(tokens) = NonZeroU32::new(u32::try_from(events).unwrap_or(u32::MAX)) else { return Ok(()) };
        if tokens > rate.count {
            crate::gateway::rate::count_refusal("pusher_api_events");
            return Err(RateLimited::MoreThanASecondsWorth { events, limit });
        }
        let Some(retry_after) = self.take("events", rate, tokens).await else { return Ok(()) };
        crate::gateway::rate::count_refusal("pusher_api_events");
        Err(RateLimited::BackendEvents { limit, retry_after })
    }

    /// Counts one `GET` request.
    pub async fn take_read_request(&self) -> Result<(), RateLimited> {
        let Some(rate) = self.read_requests else { return Ok(()) };
        let Some(retry_after) = self.take("reads", rate, NonZeroU32::MIN).await else { return Ok(()) };
        crate::gateway::rate::count_refusal("pusher_api_reads");
        Err(RateLimited::ReadRequests { limit: rate.count.get(), retry_after })
    }

    /// The wait when refused; `None` when admitted (or the engine failed).
    async fn take(&self, limit: &'static str, rate: Rate, tokens: NonZeroU32) -> Option<Duration> {
        let bucket = Bucket::App { app: &self.app, limit };
        match self.engine.take(bucket, rate, tokens).await {
            Ok(Admission::Admitted) => None,
            Ok(Admission::Refused { retry_after }) => Some(retry_after),
            Err(error) => {
                metrics::counter!("fanfare_rate_limit_errors_total").increment(1);
                tracing::warn!(%error, app = %self.app, "the app's rate limit could not be checked; the request goes ahead");
                None
            }
        }
    }
}

impl fmt::Debug for AppRates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let limit = |rate: &Option<Rate>| rate.map(|r| r.count);
        f.debug_struct("AppRates")
            .field("backend_events_per_second", &limit(&self.backend_events))
            .field("read_requests_per_second", &limit(&self.read_requests))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::local::LocalRateLimits;

    fn rates(backend: usize, reads: usize) -> AppRates {
        let settings = AppSettings {
            max_backend_events_per_second: backend,
            max_read_requests_per_second: reads,
            ..AppSettings::new("a", "k", "s")
        };
        AppRates::new(&settings, Arc::new(LocalRateLimits::in_memory()))
    }

    #[tokio::test]
    async fn a_seconds_worth_passes_then_the_rest_is_refused() {
        let rates = rates(5, 2);
        rates.take_backend_events(3).await.unwrap();
        rates.take_backend_events(2).await.unwrap();
        let refused = rates.take_backend_events(1).await.unwrap_err();
        assert!(matches!(refused, RateLimited::BackendEvents { limit: 5, .. }), "{refused:?}");
        assert!(refused.retry_after().unwrap() <= Duration::from_millis(200));
        rates.take_read_request().await.unwrap();
        rates.take_read_request().await.unwrap();
        let refused = rates.take_read_request().await.unwrap_err();
        assert!(matches!(refused, RateLimited::ReadRequests { limit: 2, .. }), "{refused:?}");
    }

    #[tokio::test]
    async fn more_than_a_seconds_worth_at_once_can_never_pass() {
        let rates = rates(5, 0);
        let refused = rates.take_backend_events(6).await.unwrap_err();
        assert_eq!(refused, RateLimited::MoreThanASecondsWorth { events: 6, limit: 5 });
        assert_eq!(refused.retry_after(), None);
        rates.take_backend_events(5).await.unwrap();
    }

    #[tokio::test]
    async fn zero_is_unlimited() {
        let rates = rates(0, 0);
        for _ in 0..1000 {
            rates.take_backend_events(100).await.unwrap();
            rates.take_read_request().await.unwrap();
        }
    }
}
