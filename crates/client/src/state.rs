//! The connection's life as an application can watch it.

use std::time::Duration;

/// Where the client stands, published through
/// [`Client::state_changes`](crate::Client::state_changes).
///
/// A connection that drops goes `Reconnecting { attempt: 1, .. }` →
/// `Connecting` → `Connected`, or on a failed attempt back to
/// `Reconnecting { attempt: 2, .. }`, and so on. `Closed` is final.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectionState {
    /// Opening the socket and waiting for the `connect` reply.
    Connecting,
    /// Connected; `client_id` is the id the server gave this connection.
    Connected { client_id: String },
    /// Waiting `delay` before reconnect attempt `attempt` (1 for the first).
    Reconnecting { attempt: u32, delay: Duration },
    /// Stopped for good: by the application (code 1000), by a server close
    /// code in 4000–4499, or by the server refusing a reconnect (4001).
    Closed { code: u16, reason: String },
}
