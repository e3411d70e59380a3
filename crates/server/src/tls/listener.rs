//! The axum listener of a TLS server: handshakes off the accept loop.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use super::{Certificates, MAX_HANDSHAKES};

type Handshaken = (TlsStream<TcpStream>, SocketAddr);

/// Yields connections whose TLS handshake completed. Dropping it stops the
/// accept loop (and closes the listening socket).
pub struct TlsListener {
    handshaken: mpsc::Receiver<Handshaken>,
    local_addr: SocketAddr,
    accepting: JoinHandle<()>,
}

impl TlsListener {
    /// Accepts on `tcp` (with `TCP_NODELAY` set to `nodelay`); a handshake
    /// not done within `timeout` is dropped.
    pub fn new(
        tcp: TcpListener,
        certificates: Arc<Certificates>,
        nodelay: bool,
        timeout: Duration,
    ) -> io::Result<Self> {
        let local_addr = tcp.local_addr()?;
        let (done, handshaken) = mpsc::channel(MAX_HANDSHAKES);
        let accepting = tokio::spawn(accept_loop(tcp, certificates, nodelay, timeout, done));
        Ok(Self { handshaken, local_addr, accepting })
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> Handshaken {
        match self.handshaken.recv().await {
            Some(connection) => connection,
            // The accept loop never ends on its own.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local_addr)
    }
}

async fn accept_loop(
    mut tcp: TcpListener,
    certificates: Arc<Certificates>,
    nodelay: bool,
    timeout: Duration,
    done: mpsc::Sender<Handshaken>,
) {
    let handshakes = Arc::new(Semaphore::new(MAX_HANDSHAKES));
    loop {
        let Ok(permit) = handshakes.clone().acquire_owned().await else { return };
        // axum's accept: retries, and backs off on errors such as EMFILE.
        let (stream, peer) = axum::serve::Listener::accept(&mut tcp).await;
        let _ = stream.set_nodelay(nodelay);
        let acceptor = TlsAcceptor::from(certificates.current());
        let done = done.clone();
        tokio::spawn(async move {
            let outcome = tokio::time::timeout(timeout, acceptor.accept(stream)).await;
            drop(permit);
            match outcome {
                Ok(Ok(tls)) => {
                    let _ = done.send((tls, peer)).await;
                }
                Ok(Err(error)) => {
                    tracing::debug!(%peer, %error, "TLS handshake failed");
                    crate::gateway::upgrade::refused("tls_handshake");
                }
                Err(_) => {
                    tracing::debug!(%peer, "TLS handshake timed out");
                    crate::gateway::upgrade::refused("tls_timeout");
                }
            }
        });
    }
}
