//! A TCP link a test can cut or stall: a loopback proxy in front of a
//! server.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A proxy from a free loopback port to `target`. While cut, every
/// connection through it is closed and new ones are refused (accepted and
/// closed at once); once healed, new connections go through again. While
/// stalled, nothing is closed but no byte goes through either way (a
/// silent partition: what was sent meanwhile arrives after the heal).
pub struct CutLink {
    port: u16,
    cut: Arc<AtomicBool>,
    generation: watch::Sender<u64>,
    stalled: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl CutLink {
    /// Starts the proxy on the current Tokio runtime.
    pub async fn start(target: std::net::SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the proxy");
        let port = listener.local_addr().expect("bound").port();
        let cut = Arc::new(AtomicBool::new(false));
        let (generation, _) = watch::channel(0u64);
        let (stalled, _) = watch::channel(false);
        let task =
            tokio::spawn(accept_loop(listener, target, cut.clone(), generation.clone(), stalled.clone()));
        Self { port, cut, generation, stalled, task }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:<port>`: the proxied address as a Redis URL.
    pub fn redis_url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Closes every connection through the link and refuses new ones.
    pub fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        self.generation.send_modify(|g| *g += 1);
    }

    /// Stops forwarding bytes, closing nothing: connections through the
    /// link, old and new, go silent until [`heal`](Self::heal).
    pub fn stall(&self) {
        self.stalled.send_replace(true);
    }

    /// Lets connections through again (after a cut or a stall).
    pub fn heal(&self) {
        self.cut.store(false, Ordering::SeqCst);
        self.stalled.send_replace(false);
    }
}

impl Drop for CutLink {
    fn drop(&mut self) {
        self.task.abort();
        self.generation.send_modify(|g| *g += 1);
    }
}

async fn accept_loop(
    listener: TcpListener,
    target: std::net::SocketAddr,
    cut: Arc<AtomicBool>,
    generation: watch::Sender<u64>,
    stalled: watch::Sender<bool>,
) {
    while let Ok((inbound, _)) = listener.accept().await {
        if cut.load(Ordering::SeqCst) {
            drop(inbound);
            continue;
        }
        let mut cuts = generation.subscribe();
        let (up, down) = (stalled.subscribe(), stalled.subscribe());
        tokio::spawn(async move {
            let Ok(outbound) = TcpStream::connect(target).await else { return };
            let (from_client, to_client) = inbound.into_split();
            let (from_server, to_server) = outbound.into_split();
            // Either side closing (or a cut) ends both directions.
            tokio::select! {
                () = pump(from_client, to_server, up) => {}
                () = pump(from_server, to_client, down) => {}
                _ = cuts.changed() => {}
            }
        });
    }
}

/// Copies bytes one way, holding each read while the link is stalled.
async fn pump(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, mut stalled: watch::Receiver<bool>) {
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        let read = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(read) => read,
        };
        if stalled.wait_for(|stalled| !*stalled).await.is_err()
            || to.write_all(&buffer[..read]).await.is_err()
        {
            return;
        }
    }
}
