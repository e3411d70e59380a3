//! Dead letters: webhook batches that were never accepted, one JSON line
//! each in `data_dir/webhooks/dead_letters.jsonl` (owner-readable only: it
//! holds event data), listed by `GET /api/webhooks/dead_letters`.
//!
//! The file is rotated to `dead_letters.jsonl.1` when it would grow past
//! its limit, so the two files together stay under twice the limit.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;
use tokio::io::AsyncWriteExt;

use super::Event;

/// One batch given up on.
#[derive(Serialize)]
pub(super) struct DeadLetter<'a> {
    pub time_ms: u64,
    pub app_id: &'a str,
    pub url: &'a str,
    pub attempts: u32,
    /// The last attempt's failure.
    pub error: &'a str,
    pub events: &'a [Arc<Event>],
}

pub struct DeadLetters {
    path: PathBuf,
    max_bytes: u64,
    /// One writer at a time, so lines never interleave and rotation is
    /// not raced.
    writing: tokio::sync::Mutex<()>,
}

impl DeadLetters {
    pub fn new(data_dir: &Path, max_bytes: u64) -> Self {
        let path = data_dir.join("webhooks").join("dead_letters.jsonl");
        Self { path, max_bytes, writing: tokio::sync::Mutex::new(()) }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn rotated(&self) -> PathBuf {
        self.path.with_extension("jsonl.1")
    }

    /// Appends one line; false (and logged) when it could not be written.
    pub(super) async fn append(&self, letter: &DeadLetter<'_>) -> bool {
        let mut line = match serde_json::to_vec(letter) {
            Ok(line) => line,
            Err(error) => {
                tracing::error!(%error, "cannot encode a dead letter");
                return false;
            }
        };
        line.push(b'\n');
        match self.write(&line).await {
            Ok(()) => true,
            Err(error) => {
                tracing::error!(path = %self.path.display(), %error, "cannot write a webhook dead letter");
                false
            }
        }
    }

    async fn write(&self, line: &[u8]) -> io::Result<()> {
        let _writing = self.writing.lock().await;
        if let Some(dir) = self.path.parent() {
            tokio::fs::create_dir_all(dir).await?;
        }
        let size = match tokio::fs::metadata(&self.path).await {
            Ok(meta) => meta.len(),
            Err(error) if error.kind() == io::ErrorKind::NotFound => 0,
            Err(error) => return Err(error),
        };
        if size > 0 && size + line.len() as u64 > self.max_bytes {
            tokio::fs::rename(&self.path, self.rotated()).await?;
        }
        let mut options = tokio::fs::OpenOptions::new();
        options.create(true).append(true);
        #[cfg(unix)]
        options.mode(0o600);
        let mut file = options.open(&self.path).await?;
        file.write_all(line).await?;
        file.flush().await
    }

    /// The most recent dead letters, newest first, at most `limit`.
    pub async fn recent(&self, limit: usize) -> io::Result<Vec<serde_json::Value>> {
        let mut letters = Vec::new();
        for path in [self.path.clone(), self.rotated()] {
            if letters.len() >= limit {
                break;
            }
            let text = match tokio::fs::read_to_string(&path).await {
                Ok(text) => text,
                Err(error) if error.kind() == io::ErrorKind::NotFound => continue,
                Err(error) => return Err(error),
            };
            // A line cut short by a crash is skipped, not an error.
            let lines = text.lines().rev().filter_map(|line| serde_json::from_str(line).ok());
            letters.extend(lines.take(limit - letters.len()));
        }
        Ok(letters)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::WebhookKind;

    fn letter<'a>(error: &'a str, events: &'a [Arc<Event>]) -> DeadLetter<'a> {
        DeadLetter { time_ms: 1, app_id: "app", url: "http://127.0.0.1:1/", attempts: 3, error, events }
    }

    #[tokio::test]
    async fn letters_are_listed_newest_first_across_the_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let events = [Arc::new(Event::new(WebhookKind::ChannelOccupied, "news"))];
        let size = serde_json::to_vec(&letter("e0", &events)).unwrap().len() as u64 + 1;
        // Room for two lines per file.
        let letters = DeadLetters::new(dir.path(), 2 * size);
        assert!(letters.recent(10).await.unwrap().is_empty(), "no file yet");
        for n in 0..5 {
            assert!(letters.append(&letter(&format!("e{n}"), &events)).await);
        }
        let recent = letters.recent(10).await.unwrap();
        let errors: Vec<&str> = recent.iter().map(|l| l["error"].as_str().unwrap()).collect();
        assert_eq!(errors, ["e4", "e3", "e2"], "e0 and e1 were rotated out");
        assert_eq!(letters.recent(2).await.unwrap().len(), 2);
        assert_eq!(recent[0]["events"][0]["name"], "channel_occupied");
        assert_eq!(recent[0]["app_id"], "app");
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn the_file_is_readable_by_its_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let letters = DeadLetters::new(dir.path(), 1 << 20);
        assert!(letters.append(&letter("x", &[])).await);
        let mode = std::fs::metadata(letters.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(letters.path(), dir.path().join("webhooks/dead_letters.jsonl"));
    }
}
