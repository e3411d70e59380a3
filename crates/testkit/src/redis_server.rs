//! A private `redis-server` for one test.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{free_port, in_ci};

/// How the server keeps data on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Persistence {
    /// Nothing on disk: a restart starts empty.
    None,
    /// RDB snapshots only when the test asks (`SAVE`, `BGSAVE`), never on
    /// a schedule or at exit: a restart after [`RedisServer::kill`] loads
    /// the last snapshot taken, however old.
    Rdb,
    /// Append-only file, fsync once a second.
    AofEverySec,
    /// Append-only file, fsync before every reply.
    AofAlways,
}

impl Persistence {
    fn args(self) -> Vec<&'static str> {
        match self {
            Self::None => vec!["--save", "", "--appendonly", "no"],
            Self::Rdb => vec!["--save", "", "--appendonly", "no", "--dbfilename", "dump.rdb"],
            Self::AofEverySec => vec!["--save", "", "--appendonly", "yes", "--appendfsync", "everysec"],
            Self::AofAlways => vec!["--save", "", "--appendonly", "yes", "--appendfsync", "always"],
        }
    }
}

/// A `redis-server` process of this test, killed when dropped.
pub struct RedisServer {
    port: u16,
    dir: tempfile::TempDir,
    persistence: Persistence,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts one without persistence, or fails the test.
    pub fn start() -> Self {
        Self::start_with(Persistence::None)
    }

    /// Starts one with the given persistence, or fails the test.
    pub fn start_with(persistence: Persistence) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory for redis-server");
        let mut server = Self { port: free_port(), dir, persistence, child: None };
        server.spawn().unwrap_or_else(|e| panic!("redis-server did not start: {e}"));
        server
    }

    /// Starts one, or — outside CI, when `redis-server` is not installed —
    /// prints why and returns `None` so the test can skip.
    pub fn start_or_skip() -> Option<Self> {
        Self::start_with_or_skip(Persistence::None)
    }

    /// [`RedisServer::start_or_skip`] with the given persistence.
    pub fn start_with_or_skip(persistence: Persistence) -> Option<Self> {
        if !binary_present() {
            assert!(!in_ci(), "redis-server is not installed, and CI must run the Redis tests");
            eprintln!("skipped: redis-server is not installed (CI=true makes this a failure)");
            return None;
        }
        Some(Self::start_with(persistence))
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Where it keeps its files.
    pub fn dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    /// `SIGKILL`: no shutdown, no final save.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port and directory (after [`kill`](Self::kill)).
    pub fn restart(&mut self) {
        self.kill();
        self.spawn().unwrap_or_else(|e| panic!("redis-server did not restart: {e}"));
    }

    /// Runs `redis-cli` against it with `args`; returns its output.
    pub fn cli(&self, args: &[&str]) -> String {
        let port = self.port.to_string();
        let output = Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", &port])
            .args(args)
            .output()
            .expect("redis-cli runs");
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    }

    fn spawn(&mut self) -> std::io::Result<()> {
        let port = self.port.to_string();
        let dir = self.dir.path().to_string_lossy().to_string();
        let child = Command::new("redis-server")
            .args(["--port", &port, "--bind", "127.0.0.1", "--dir", &dir, "--daemonize", "no"])
            .args(["--protected-mode", "no", "--loglevel", "warning"])
            .args(self.persistence.args())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        self.child = Some(child);
        wait_for_port(self.port, Duration::from_secs(10))
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

fn binary_present() -> bool {
    Command::new("redis-server").arg("--version").stdout(Stdio::null()).status().is_ok_and(|s| s.success())
}

fn wait_for_port(port: u16, timeout: Duration) -> std::io::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(_) => return Ok(()),
            Err(e) if Instant::now() >= deadline => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}
