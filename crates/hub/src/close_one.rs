//! Closing one connection, wherever it is (a moderator's kick of a single
//! connection).

use fanfare_protocol::CloseCode;

use crate::HubError;
use crate::cluster::{self, DisconnectReport};
use crate::hub::Hub;
use crate::outbox::CloseReason;
use crate::registry::ConnId;

impl Hub {
    /// Closes the connection `conn` with `code`: on this node, or in a
    /// cluster on whichever node holds it (every node is asked; the report
    /// names those that did not answer in time). `disconnected` is 0 when
    /// no node knows the connection.
    pub async fn close_connection(
        &self,
        conn: ConnId,
        code: CloseCode,
    ) -> Result<DisconnectReport, HubError> {
        if self.shared.cluster.is_some() {
            return Ok(cluster::close_connection(&self.shared, conn, code).await?);
        }
        let disconnected = self.shared.connections.close_connection(conn, CloseReason::new(code));
        Ok(DisconnectReport { disconnected, unreached: Vec::new() })
    }
}
