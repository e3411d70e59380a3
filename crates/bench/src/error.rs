//! The one error of a benchmark run.
//!
//! These are the failures that stop a run. Failures of single connections
//! or requests (a refused connection, a publish answered 503) do not stop
//! it: they are counted in the report (`errors`) with a few samples.

use std::path::PathBuf;
use std::time::Duration;

use crate::options::{Protocol, Scenario};

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("invalid option --{option}: {reason}")]
    InvalidOption { option: &'static str, reason: String },

    #[error(
        "refusing to benchmark {host}: only 127.0.0.0/8 by default (pass --allow-remote to load another host)"
    )]
    RemoteHost { host: String },

    #[error("could not resolve {host}: {source}")]
    Resolve { host: String, source: std::io::Error },

    #[error("the {scenario} scenario does not support the {protocol} protocol: {reason}")]
    Unsupported { scenario: Scenario, protocol: Protocol, reason: &'static str },

    #[error("{needed} connections need more open files than this process may have ({limit}); use --workers")]
    TooManyFiles { needed: usize, limit: u64 },

    #[error("reading {path}: {source}")]
    Proc { path: PathBuf, source: std::io::Error },

    #[error("{path} has no {field} field")]
    ProcFormat { path: PathBuf, field: &'static str },

    #[error("the HTTP client could not be built: {0}")]
    HttpClient(#[source] reqwest::Error),

    #[error("history store: {0}")]
    Store(#[from] fanfare_store::StoreError),

    #[error("starting worker {index}: {source}")]
    WorkerSpawn { index: usize, source: std::io::Error },

    #[error("worker {index} broke the worker protocol: {reason}")]
    WorkerProtocol { index: usize, reason: String },

    #[error("worker {index} exited before it reported its result ({status})")]
    WorkerExited { index: usize, status: String },

    #[error("reading the worker spec from stdin: {0}")]
    WorkerSpec(#[source] std::io::Error),

    #[error("the worker spec is not valid: {0}")]
    WorkerSpecInvalid(#[source] serde_json::Error),

    #[error("no subscriber could connect: {connect_errors} errors, the first: {first}")]
    NothingConnected { connect_errors: u64, first: String },

    #[error("the run did not finish within its hard timeout of {0:?}")]
    TimedOut(Duration),
}
