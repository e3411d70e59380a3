//! What can go wrong while loading the configuration. Every message names
//! the key (as written in the TOML file) and, when known, where its value
//! came from, so the operator knows which line to change.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// Where a configuration value was set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The TOML file given with `--config` or `FANFARE_CONFIG`.
    File(PathBuf),
    /// A `FANFARE_*` environment variable.
    Env(&'static str),
    /// A command-line flag such as `--listen`.
    Flag(&'static str),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File(path) => write!(f, "config file {}", path.display()),
            Origin::Env(var) => write!(f, "environment variable {var}"),
            Origin::Flag(flag) => write!(f, "flag {flag}"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the config file {}: {source}", path.display())]
    File {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// The file is not valid TOML (the message shows the line).
    #[error("config file {} is not valid TOML: {message}", path.display())]
    Syntax { path: PathBuf, message: String },

    #[error("unknown key `{key}`{} (known keys here: {expected})", within(.origin))]
    UnknownKey { key: String, expected: String, origin: Option<Origin> },

    /// A value of the wrong type, out of range, or inconsistent with another key.
    #[error("{}{}", key_and_reason(.key, .reason), from(.origin))]
    Invalid { key: String, reason: String, origin: Option<Origin> },

    #[error("environment variable {var} is not valid UTF-8")]
    EnvNotUnicode { var: &'static str },

    /// A file named by a key (e.g. `auth.jwt_public_key_file`) cannot be read.
    #[error("{key}: cannot read {}: {source}{}", path.display(), from(.origin))]
    KeyFile {
        key: &'static str,
        path: PathBuf,
        origin: Option<Origin>,
        #[source]
        source: io::Error,
    },
}

impl ConfigError {
    pub(crate) fn invalid(key: impl Into<String>, reason: impl Into<String>) -> Self {
        ConfigError::Invalid { key: key.into(), reason: reason.into(), origin: None }
    }

    /// The key the error is about, if it is about one.
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::UnknownKey { key, .. } | ConfigError::Invalid { key, .. } => Some(key),
            ConfigError::KeyFile { key, .. } => Some(key),
            _ => None,
        }
    }
}

fn from(origin: &Option<Origin>) -> String {
    origin.as_ref().map(|origin| format!(" (set by {origin})")).unwrap_or_default()
}

fn within(origin: &Option<Origin>) -> String {
    origin.as_ref().map(|origin| format!(" in {origin}")).unwrap_or_default()
}

/// `key: reason`, or `key = value reason` when the reason starts by
/// quoting the value (`auth.jwt_algorithm = RS256 needs ...`).
fn key_and_reason(key: &str, reason: &str) -> String {
    if reason.starts_with("= ") { format!("{key} {reason}") } else { format!("{key}: {reason}") }
}

/// Tells where the value of a key came from (for error messages).
pub(crate) type Origins<'a> = &'a dyn Fn(&str) -> Option<Origin>;
