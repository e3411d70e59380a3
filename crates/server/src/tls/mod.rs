//! Built-in TLS: `https://` and `wss://` on the one port, with no proxy.
//!
//! [`Certificates`] holds the server's certificate as a rustls
//! configuration, swapped whole when SIGHUP reloads the files: a handshake
//! uses the one current when it starts, so connections already open keep
//! theirs. [`TlsListener`] is the axum listener: the accept loop only
//! accepts, each handshake runs in its own task under the handshake
//! timeout, and at most [`MAX_HANDSHAKES`] run at once (beyond them the
//! accept loop waits and the kernel's queue holds the rest).

mod certificates;
mod listener;

pub use certificates::{Certificates, TlsError};
pub use listener::TlsListener;

/// TLS handshakes in progress at once.
pub const MAX_HANDSHAKES: usize = 1024;
