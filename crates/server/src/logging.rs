//! The process's log: written to standard error as text or JSON
//! (`log.format`), through a filter (`log.level`) that can change while the
//! process runs: `PUT /api/log`, or SIGHUP, which reads `log.level` again.

use std::sync::OnceLock;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry, fmt, reload};

use crate::config::LogFormat;

/// The filter in force, replaceable. Set once, by [`init`].
static FILTER: OnceLock<reload::Handle<EnvFilter, Registry>> = OnceLock::new();

#[derive(Debug, thiserror::Error)]
pub enum LogFilterError {
    #[error("`{filter}` is not a log filter: {reason}")]
    Invalid { filter: String, reason: String },
    /// This process logs through something else (an embedding program or
    /// a test), or not at all.
    #[error("this process's log was not set up by fanfare serve")]
    NotOurs,
}

/// Installs the process's logger. An invalid `filter` (validated with the
/// configuration already) falls back to `info`.
pub fn init(filter: &str, format: LogFormat) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let (filter, handle) = reload::Layer::new(filter);
    let output = fmt::layer().with_writer(std::io::stderr);
    let output = match format {
        LogFormat::Text => output.boxed(),
        // Fields at the top level, beside `timestamp`, `level`, `target`
        // and `message`: what collectors index without a parsing rule.
        LogFormat::Json => output.json().flatten_event(true).boxed(),
    };
    if tracing_subscriber::registry().with(filter).with(output).try_init().is_ok() {
        let _ = FILTER.set(handle);
    }
}

/// The filter in force, as its directives.
pub fn filter() -> Result<String, LogFilterError> {
    filter_now(FILTER.get().ok_or(LogFilterError::NotOurs)?)
}

/// Replaces the filter; answers the one now in force.
pub fn set_filter(text: &str) -> Result<String, LogFilterError> {
    let handle = FILTER.get().ok_or(LogFilterError::NotOurs)?;
    let invalid = |reason: String| LogFilterError::Invalid { filter: text.to_owned(), reason };
    if text.trim().is_empty() {
        return Err(invalid("it is empty (e.g. \"info\")".into()));
    }
    let filter = EnvFilter::try_new(text).map_err(|error| invalid(error.to_string()))?;
    handle.reload(filter).map_err(|_| LogFilterError::NotOurs)?;
    let now = filter_now(handle)?;
    tracing::info!(filter = %now, "log filter changed");
    Ok(now)
}

fn filter_now(handle: &reload::Handle<EnvFilter, Registry>) -> Result<String, LogFilterError> {
    handle.with_current(ToString::to_string).map_err(|_| LogFilterError::NotOurs)
}
