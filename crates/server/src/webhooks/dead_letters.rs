//! Dead letters: webhook batches that were never accepted.
//!
//! [`DeadLetter`] is one letter as JSON; where it is kept is a
//! [`DeadLetterLog`]: for a single node [`DeadLetterFile`], one JSON line
//! each in `data_dir/webhooks/dead_letters.jsonl` (owner-readable only: it
//! holds event data); for a cluster node the cluster's log in Redis
//! (`fanfare_cluster::redis::RedisDeadLetters`), so that
//! `GET /api/webhooks/dead_letters` on any node lists them all.
//!
//! The file is rotated to `dead_letters.jsonl.1` when it would grow past
//! its limit, so the two files together stay under twice the limit.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use fanfare_cluster::{ClusterError, DeadLetterLog};
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;

use super::event_id;

/// One batch of events `E` given up on.
#[derive(Serialize)]
pub(super) struct DeadLetter<'a, E> {
    pub time_ms: u64,
    /// The Pusher app's id; none for a `[[webhooks]]` endpoint.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_id: Option<&'a str>,
    pub url: &'a str,
    pub attempts: u32,
    /// The last attempt's failure.
    pub error: &'a str,
    pub events: &'a [Arc<E>],
}

/// A letter as kept: its own `id` (a UUID v4, what
/// `POST /api/webhooks/dead_letters/{id}/replay` names) first.
#[derive(Serialize)]
struct Kept<'a, E> {
    id: &'a str,
    #[serde(flatten)]
    letter: &'a DeadLetter<'a, E>,
}

/// What a replay reads back of a kept letter's events, once it found the
/// letter and its endpoint (`replay.rs`).
#[derive(Deserialize)]
pub(super) struct KeptLetter<E> {
    pub events: Vec<E>,
}

/// Writes `letter` to `log` under a new id; false (and logged) when it
/// could not be kept.
pub(super) async fn keep<E: Serialize>(log: &dyn DeadLetterLog, letter: &DeadLetter<'_, E>) -> bool {
    let id = event_id();
    let line = match serde_json::to_vec(&Kept { id: &id, letter }) {
        Ok(line) => line,
        Err(error) => {
            tracing::error!(%error, "cannot encode a dead letter");
            return false;
        }
    };
    match log.append(Bytes::from(line)).await {
        Ok(()) => true,
        Err(error) => {
            let error = anyhow::Error::from(error);
            tracing::error!(error = format!("{error:#}"), "cannot keep a webhook dead letter");
            false
        }
    }
}

/// The dead letters of a single node, in its data directory.
pub struct DeadLetterFile {
    path: PathBuf,
    max_bytes: u64,
    /// One writer at a time, so lines never interleave and rotation is
    /// not raced.
    writing: tokio::sync::Mutex<()>,
}

impl DeadLetterFile {
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

    /// An I/O error, naming the file.
    fn error(&self, error: io::Error) -> ClusterError {
        let named = io::Error::new(error.kind(), format!("{}: {error}", self.path.display()));
        ClusterError::Unavailable { backend: "file", source: Arc::new(named) }
    }

    async fn read_recent(&self, limit: usize) -> io::Result<Vec<Bytes>> {
        let mut letters = Vec::new();
        for path in [self.path.clone(), self.rotated()] {
            if letters.len() >= limit {
                break;
            }
            let text = match tokio::fs::read(&path).await {
                Ok(text) => Bytes::from(text),
                Err(error) if error.kind() == io::ErrorKind::NotFound => continue,
                Err(error) => return Err(error),
            };
            // A line cut short by a crash is skipped, not an error.
            let lines = text
                .split(|&b| b == b'\n')
                .rev()
                .filter(|line| serde_json::from_slice::<serde::de::IgnoredAny>(line).is_ok())
                .map(|line| text.slice_ref(line));
            letters.extend(lines.take(limit - letters.len()));
        }
        Ok(letters)
    }
}

#[async_trait::async_trait]
impl DeadLetterLog for DeadLetterFile {
    async fn append(&self, letter: Bytes) -> Result<(), ClusterError> {
        if letter.contains(&b'\n') {
            return Err(ClusterError::Corrupt { what: "dead letter", reason: "it holds a newline".into() });
        }
        let mut line = Vec::with_capacity(letter.len() + 1);
        line.extend_from_slice(&letter);
        line.push(b'\n');
        self.write(&line).await.map_err(|error| self.error(error))
    }

    async fn recent(&self, limit: usize) -> Result<Vec<Bytes>, ClusterError> {
        self.read_recent(limit).await.map_err(|error| self.error(error))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fanfare_cluster::conformance::Subject;
    use fanfare_cluster::conformance::dead_letters::BOUND;
    use serde_json::{Value, json};

    fn letter<'a>(error: &'a str, events: &'a [Arc<Value>]) -> DeadLetter<'a, Value> {
        DeadLetter { time_ms: 1, app_id: Some("app"), url: "http://127.0.0.1:1/", attempts: 3, error, events }
    }

    fn occupied() -> Arc<Value> {
        Arc::new(json!({"name": "channel_occupied", "channel": "news"}))
    }

    /// Handles on one file, as the conformance suite wants (a file is one
    /// node's, so every handle shares one writer).
    async fn file_log() -> Option<Subject<dyn DeadLetterLog>> {
        let dir = tempfile::tempdir().unwrap();
        let file: Arc<dyn DeadLetterLog> = Arc::new(DeadLetterFile::new(dir.path(), BOUND));
        Some(Subject::new(dir, move || {
            let file = file.clone();
            async move { file }
        }))
    }

    mod file {
        fanfare_cluster::dead_letter_log_conformance!(super::file_log());
    }

    fn as_json(letters: Vec<Bytes>) -> Vec<serde_json::Value> {
        letters.iter().map(|l| serde_json::from_slice(l).unwrap()).collect()
    }

    #[tokio::test]
    async fn letters_are_listed_newest_first_across_the_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let events = [occupied()];
        let kept = Kept { id: &event_id(), letter: &letter("e0", &events) };
        let size = serde_json::to_vec(&kept).unwrap().len() as u64 + 1;
        // Room for two lines per file.
        let letters = DeadLetterFile::new(dir.path(), 2 * size);
        assert!(letters.recent(10).await.unwrap().is_empty(), "no file yet");
        for n in 0..5 {
            assert!(keep(&letters, &letter(&format!("e{n}"), &events)).await);
        }
        let recent = as_json(letters.recent(10).await.unwrap());
        let errors: Vec<&str> = recent.iter().map(|l| l["error"].as_str().unwrap()).collect();
        assert_eq!(errors, ["e4", "e3", "e2"], "e0 and e1 were rotated out");
        assert_eq!(letters.recent(2).await.unwrap().len(), 2);
        assert_eq!(recent[0]["events"][0]["name"], "channel_occupied");
        assert_eq!(recent[0]["app_id"], "app");
    }

    #[tokio::test]
    async fn each_letter_is_kept_under_its_own_id_and_reads_back_whole() {
        let dir = tempfile::tempdir().unwrap();
        let letters = DeadLetterFile::new(dir.path(), 1 << 20);
        let events = [occupied()];
        assert!(keep(&letters, &letter("a", &events)).await);
        assert!(keep(&letters, &letter("b", &events)).await);
        let recent = letters.recent(10).await.unwrap();
        let read = as_json(recent.clone());
        let (first, second) = (read[0]["id"].as_str().unwrap(), read[1]["id"].as_str().unwrap());
        assert_eq!(first.len(), 36);
        assert_ne!(first, second);
        assert!(recent[0].starts_with(b"{\"id\":"), "the id comes first");
        let kept: KeptLetter<Value> = serde_json::from_slice(&recent[0]).unwrap();
        assert_eq!(kept.events, [(*events[0]).clone()]);
        assert_eq!(
            (read[0]["app_id"].as_str(), read[0]["url"].as_str()),
            (Some("app"), Some("http://127.0.0.1:1/"))
        );
    }

    #[tokio::test]
    async fn a_line_cut_short_by_a_crash_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let letters = DeadLetterFile::new(dir.path(), 1 << 20);
        assert!(keep(&letters, &letter("whole", &[] as &[Arc<Value>])).await);
        let mut file = std::fs::OpenOptions::new().append(true).open(letters.path()).unwrap();
        std::io::Write::write_all(&mut file, b"{\"time_ms\":2,\"app").unwrap();
        let recent = as_json(letters.recent(10).await.unwrap());
        assert_eq!(recent.len(), 1);
        assert_eq!(recent[0]["error"], "whole");
    }

    #[tokio::test]
    async fn a_letter_with_a_newline_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let letters = DeadLetterFile::new(dir.path(), 1 << 20);
        let refused = letters.append(Bytes::from_static(b"{}\n{}")).await;
        assert!(matches!(refused, Err(ClusterError::Corrupt { .. })), "{refused:?}");
        assert!(letters.recent(10).await.unwrap().is_empty());
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn the_file_is_readable_by_its_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let letters = DeadLetterFile::new(dir.path(), 1 << 20);
        assert!(keep(&letters, &letter("x", &[] as &[Arc<Value>])).await);
        let mode = std::fs::metadata(letters.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(letters.path(), dir.path().join("webhooks/dead_letters.jsonl"));
    }
}
