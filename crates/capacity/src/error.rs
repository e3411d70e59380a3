//! The one error of capacity planning: input that cannot describe a
//! workload, or a benchmark file that gives no figure.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum CapacityError {
    /// A flag's value is out of its range, or flags contradict each other.
    #[error("--{flag}: {reason}")]
    Invalid { flag: &'static str, reason: String },

    /// Neither way of giving the traffic, or both.
    #[error("{0}")]
    Traffic(&'static str),

    #[error("reading {path}: {source}")]
    BenchRead { path: PathBuf, source: std::io::Error },

    #[error("{path} is not the JSON of `fanfare bench --json`: {source}")]
    BenchJson { path: PathBuf, source: serde_json::Error },

    #[error("{path}: {reason}")]
    BenchUnusable { path: PathBuf, reason: String },
}
