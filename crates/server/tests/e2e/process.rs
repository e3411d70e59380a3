//! The real binary as a child process: `fanfare serve` with a config
//! file, its listening address, its stderr a line at a time, signals.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::support::listening_addr;

const WAIT: Duration = Duration::from_secs(15);

/// The server's stderr, a line at a time as it comes.
pub struct LogLines {
    lines: tokio::sync::mpsc::UnboundedReceiver<String>,
    seen: String,
}

impl LogLines {
    /// Waits for a line containing `text`.
    pub async fn until(&mut self, text: &str) {
        let wait = async {
            while let Some(line) = self.lines.recv().await {
                let found = line.contains(text);
                self.seen.push_str(&line);
                self.seen.push('\n');
                if found {
                    return;
                }
            }
            panic!("the log ended without {text:?}:\n{}", self.seen);
        };
        tokio::time::timeout(WAIT, wait)
            .await
            .unwrap_or_else(|_| panic!("no {text:?} in time:\n{}", self.seen));
    }

    /// Everything logged, once the process has ended.
    pub async fn all(mut self) -> String {
        let rest = async {
            while let Some(line) = self.lines.recv().await {
                self.seen.push_str(&line);
                self.seen.push('\n');
            }
            self.seen
        };
        tokio::time::timeout(WAIT, rest).await.expect("the log ends with the process")
    }
}

pub async fn spawn(config: &Path, data_dir: &Path) -> (Child, SocketAddr, LogLines) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_fanfare"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .arg("--config")
        .arg(config)
        .env_remove("FANFARE_LOG")
        .env_remove("FANFARE_LOG_FORMAT")
        .env_remove("FANFARE_API_KEY")
        .env_remove("FANFARE_CONFIG")
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
    let (sender, lines) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok(Some(line)) = stderr.next_line().await {
            let _ = sender.send(line);
        }
    });
    let log = LogLines { lines, seen: String::new() };
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let addr = listening_addr(&mut lines, drop).await;
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, addr, log)
}

/// Sends signal `name` (`-HUP`, `-TERM` …) to `child`.
pub fn signal(child: &Child, name: &str) {
    let pid = child.id().unwrap().to_string();
    assert!(std::process::Command::new("kill").args([name, &pid]).status().unwrap().success());
}

/// Writes `text` to `path` whole or not at all (a file beside it, renamed
/// into place): a SIGHUP must never read a half-written file.
pub fn write_whole(path: &Path, text: &str) {
    let partial = path.with_extension("partial");
    std::fs::write(&partial, text).unwrap();
    std::fs::rename(&partial, path).unwrap();
}
