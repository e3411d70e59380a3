//! The axum listener of a plain (`ws://`, `http://`) server: accepts
//! with axum's own loop (which backs off on errors such as EMFILE) and
//! sets `TCP_NODELAY` on each connection. A type of our own, rather than
//! axum's `tap_io`, so that requests can get the peer's address as
//! `ConnectInfo<PeerAddr>` from either listener.

use std::io;
use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpStream};

pub struct PlainListener {
    tcp: TcpListener,
    nodelay: bool,
}

impl PlainListener {
    pub fn new(tcp: TcpListener, nodelay: bool) -> Self {
        Self { tcp, nodelay }
    }
}

impl axum::serve::Listener for PlainListener {
    type Io = TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (TcpStream, SocketAddr) {
        let (stream, peer) = axum::serve::Listener::accept(&mut self.tcp).await;
        let _ = stream.set_nodelay(self.nodelay);
        (stream, peer)
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.tcp.local_addr()
    }
}
