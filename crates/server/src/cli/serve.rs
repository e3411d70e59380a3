//! `fanfare serve`: load the settings, open the store, listen, and drain
//! on SIGTERM or Ctrl-C (SIGINT).

use std::sync::Arc;

use anyhow::Context;
use tokio::net::{TcpListener, TcpSocket};

use crate::tls::Certificates;

use crate::config::{self, ServeArgs, Settings};
use crate::{data_dir, engines, server};

pub fn serve(args: &ServeArgs) -> anyhow::Result<()> {
    let settings = config::load(args)?;
    crate::logging::init(&settings.log_filter, settings.log_format);
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if settings.worker_threads > 0 {
        runtime.worker_threads(settings.worker_threads);
    }
    let runtime = runtime.enable_all().build().context("starting the runtime")?;
    runtime.block_on(serve_async(settings, args.clone()))
}

async fn serve_async(mut settings: Settings, args: ServeArgs) -> anyhow::Result<()> {
    // First: from here on a SIGTERM waits for us instead of killing the
    // process with no drain and no store close (opening the store, or a
    // script that signals the moment it reads the listening line).
    let shutdown = ShutdownSignals::install().context("installing the SIGTERM and SIGINT handlers")?;
    // Caught from here (a SIGHUP would otherwise end the process); acted
    // on once the server is built.
    let hangups = Hangups::install().context("installing the SIGHUP handler")?;
    std::fs::create_dir_all(&settings.data_dir)
        .with_context(|| format!("creating the data directory {}", settings.data_dir.display()))?;
    let api_key = resolve_api_key(&settings)?;
    // A cluster node generates nothing: every node must accept the same
    // credentials, so Pusher apps are served only where configured.
    if settings.pusher.apps.is_empty() && settings.cluster.is_none() {
        settings.pusher.apps.push(default_pusher_app(&settings)?);
    }
    let open_files = crate::gateway::capacity::raise_open_file_limit();
    crate::gateway::capacity::warn_if_files_run_short(&settings.limits, open_files);
    let engines = engines::open(&settings).await?;
    let listener = listen(settings.listen).with_context(|| format!("listening on {}", settings.listen))?;
    let app = server::build(settings, api_key, engines)?;
    hangups.reload_on_each(args, app.tls.clone());
    // Listed by /api/nodes before the first client arrives.
    app.hub.heartbeat().await;
    // One line on stdout that scripts (and the tests) can wait for.
    println!("fanfare listening on {}", listener.local_addr()?);
    if app.settings.demo {
        println!("Demo pages (made-up users, loopback only): http://{}/demo/", listener.local_addr()?);
    }
    server::run(app, listener, shutdown.received()).await
}

/// SIGHUP: read the configuration again and apply what can change while
/// running.
#[cfg(unix)]
struct Hangups(tokio::signal::unix::Signal);

#[cfg(unix)]
impl Hangups {
    fn install() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self(signal(SignalKind::hangup())?))
    }

    /// At each SIGHUP, reads the configuration again (file, environment
    /// and flags, as at start) and applies `log.level` and the TLS
    /// certificate files. A configuration that no longer loads changes
    /// nothing; a certificate that does not load leaves the current one.
    fn reload_on_each(mut self, args: ServeArgs, tls: Option<Arc<Certificates>>) {
        tokio::spawn(async move {
            while self.0.recv().await.is_some() {
                match config::load(&args) {
                    Ok(settings) => apply_reloaded(&settings, tls.as_deref()),
                    Err(error) => {
                        tracing::warn!(%error, "SIGHUP: the configuration does not load; nothing changed")
                    }
                }
            }
        });
    }
}

#[cfg(unix)]
fn apply_reloaded(settings: &Settings, tls: Option<&Certificates>) {
    if let Err(error) = crate::logging::set_filter(&settings.log_filter) {
        tracing::warn!(%error, "SIGHUP: log.level not applied");
    }
    match (tls, &settings.tls.certificate) {
        (Some(certificates), Some(files)) => match certificates.reload(files) {
            Ok(()) => {
                tracing::info!(cert_file = %files.cert_file.display(), "SIGHUP: TLS certificate reloaded")
            }
            Err(error) => {
                tracing::warn!(%error, "SIGHUP: TLS certificate not reloaded; the current one stays")
            }
        },
        (None, None) => {}
        _ => tracing::warn!("SIGHUP: turning TLS on or off needs a restart; unchanged"),
    }
}

#[cfg(not(unix))]
struct Hangups;

#[cfg(not(unix))]
impl Hangups {
    fn install() -> std::io::Result<Self> {
        Ok(Self)
    }

    fn reload_on_each(self, _: ServeArgs, _: Option<Arc<Certificates>>) {}
}

/// Binds with a deep accept queue: a reconnect storm opens thousands of
/// connections at once, and every SYN dropped from a full queue costs the
/// client a one-second retransmit.
fn listen(address: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    let socket = match address {
        std::net::SocketAddr::V4(_) => TcpSocket::new_v4()?,
        std::net::SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Accept queue length (the kernel caps it at `net.core.somaxconn`).
const LISTEN_BACKLOG: u32 = 4096;

/// The configured key, or the one stored in the data directory (generated
/// and printed once, on the first start).
fn resolve_api_key(settings: &Settings) -> anyhow::Result<String> {
    if let Some(key) = &settings.api_key {
        return Ok(key.clone());
    }
    let (key, created) =
        data_dir::load_or_create_api_key(&settings.data_dir).context("reading the API key")?;
    if created {
        let path = data_dir::api_key_file(&settings.data_dir);
        println!("Generated an HTTP API key (stored in {}; shown only this once):", path.display());
        println!("  {key}");
    }
    Ok(key)
}

/// With no Pusher app configured: the one generated on the first start
/// (printed once) and kept in the data directory.
fn default_pusher_app(settings: &Settings) -> anyhow::Result<config::AppSettings> {
    let (app, created) =
        data_dir::load_or_create_default_app(&settings.data_dir).context("reading the default Pusher app")?;
    if created {
        let path = data_dir::pusher_app_file(&settings.data_dir);
        println!("Generated a Pusher app (stored in {}; shown only this once):", path.display());
        println!("  app_id = {}\n  key    = {}\n  secret = {}", app.id, app.key, app.secret);
    }
    Ok(app)
}

/// The signals that start a graceful shutdown, caught from the moment
/// they are installed: one that arrives before anyone awaits
/// [`received`](Self::received) is kept until then.
#[cfg(unix)]
struct ShutdownSignals {
    terminate: tokio::signal::unix::Signal,
    interrupt: tokio::signal::unix::Signal,
}

#[cfg(unix)]
impl ShutdownSignals {
    fn install() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self { terminate: signal(SignalKind::terminate())?, interrupt: signal(SignalKind::interrupt())? })
    }

    async fn received(mut self) {
        tokio::select! {
            _ = self.terminate.recv() => {}
            _ = self.interrupt.recv() => {}
        }
    }
}

#[cfg(not(unix))]
struct ShutdownSignals(tokio::signal::windows::CtrlC);

#[cfg(not(unix))]
impl ShutdownSignals {
    fn install() -> std::io::Result<Self> {
        Ok(Self(tokio::signal::windows::ctrl_c()?))
    }

    async fn received(mut self) {
        self.0.recv().await;
    }
}
