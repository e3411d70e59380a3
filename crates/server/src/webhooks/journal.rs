//! Pending webhook batches, kept until delivered or given up on.
//!
//! [`Pending`] is one batch as its journal record: the endpoint it is for
//! (a Pusher app's id and URL, or a `[[webhooks]]` URL) and its events (with their ids), so a batch found after a restart
//! (or adopted from a dead cluster node) is delivered as it was signed to
//! be. Where records are kept is a [`WebhookJournal`]: for a single node
//! [`JournalFile`], one file per batch in `data_dir/webhooks/pending/`
//! (owner-readable only: it holds event data); for a cluster node the
//! cluster's journal in Redis (`fanfare_cluster::redis::RedisWebhookJournal`).

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use fanfare_cluster::{ClusterError, NodeId, WebhookJournal};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// One batch waiting for delivery, of events `E` (a family's).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Pending<E> {
    pub id: String,
    /// The Pusher app it is for; `None` for a `[[webhooks]]` endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_id: Option<String>,
    pub url: String,
    /// When it was first queued (its dead letter, if any, says so).
    pub queued_ms: u64,
    pub events: Vec<Arc<E>>,
}

impl<E: Serialize + DeserializeOwned> Pending<E> {
    pub fn encode(&self) -> Option<Bytes> {
        match serde_json::to_vec(self) {
            Ok(bytes) => Some(Bytes::from(bytes)),
            Err(error) => {
                tracing::error!(%error, "cannot encode a pending webhook batch");
                None
            }
        }
    }

    pub fn decode(id: &str, record: &[u8]) -> Option<Self> {
        match serde_json::from_slice(record) {
            Ok(pending) => Some(pending),
            Err(error) => {
                tracing::error!(id, %error, "a pending webhook batch does not decode; dropped");
                None
            }
        }
    }
}

/// The pending batches of a single node, one file each, named
/// `OWNER.ID.json`: `OWNER` is the handle that keeps it, so adopting is a
/// rename (which one adopter wins), and every file another handle (an
/// earlier run) left is adopted at start.
pub struct JournalFile {
    dir: PathBuf,
    owner: String,
}

impl JournalFile {
    pub fn new(data_dir: &Path) -> Self {
        let owner: u64 = rand::random();
        Self { dir: data_dir.join("webhooks").join("pending"), owner: format!("{owner:016x}") }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, owner: &str, id: &str) -> PathBuf {
        self.dir.join(format!("{owner}.{id}.json"))
    }

    fn error(&self, error: io::Error) -> ClusterError {
        let named = io::Error::new(error.kind(), format!("{}: {error}", self.dir.display()));
        ClusterError::Unavailable { backend: "file", source: Arc::new(named) }
    }

    async fn write(&self, id: &str, record: &[u8]) -> io::Result<()> {
        tokio::fs::create_dir_all(&self.dir).await?;
        let path = self.path(&self.owner, id);
        let partial = path.with_extension("partial");
        let mut options = tokio::fs::OpenOptions::new();
        options.create(true).write(true).truncate(true);
        #[cfg(unix)]
        options.mode(0o600);
        let mut file = options.open(&partial).await?;
        tokio::io::AsyncWriteExt::write_all(&mut file, record).await?;
        drop(file);
        tokio::fs::rename(&partial, &path).await
    }

    async fn adopt_all(&self) -> io::Result<Vec<(String, Bytes)>> {
        let mut entries = match tokio::fs::read_dir(&self.dir).await {
            Ok(entries) => entries,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(error) => return Err(error),
        };
        let mut adopted = Vec::new();
        while let Some(entry) = entries.next_entry().await? {
            let name = entry.file_name();
            let Some((owner, id)) = name.to_str().and_then(|n| n.strip_suffix(".json")?.split_once('.'))
            else {
                continue;
            };
            if owner == self.owner {
                continue;
            }
            let mine = self.path(&self.owner, id);
            match tokio::fs::rename(entry.path(), &mine).await {
                Ok(()) => adopted.push((id.to_owned(), Bytes::from(tokio::fs::read(&mine).await?))),
                // Another adopter was first.
                Err(error) if error.kind() == io::ErrorKind::NotFound => {}
                Err(error) => return Err(error),
            }
        }
        Ok(adopted)
    }
}

/// Ids name files: only what a UUID holds.
fn check_id(id: &str) -> Result<(), ClusterError> {
    if !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return Ok(());
    }
    Err(ClusterError::Corrupt { what: "webhook journal id", reason: format!("{id:?} is not a UUID") })
}

#[async_trait::async_trait]
impl WebhookJournal for JournalFile {
    async fn put(&self, id: &str, record: Bytes) -> Result<(), ClusterError> {
        check_id(id)?;
        self.write(id, &record).await.map_err(|error| self.error(error))
    }

    async fn remove(&self, id: &str) -> Result<(), ClusterError> {
        check_id(id)?;
        match tokio::fs::remove_file(self.path(&self.owner, id)).await {
            Ok(()) => Ok(()),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(error) => Err(self.error(error)),
        }
    }

    /// Nothing to do: the files stay, and the next run adopts them.
    async fn release(&self) -> Result<(), ClusterError> {
        Ok(())
    }

    async fn adopt(&self, _dead: &[NodeId]) -> Result<Vec<(String, Bytes)>, ClusterError> {
        self.adopt_all().await.map_err(|error| self.error(error))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fanfare_cluster::conformance::Subject;

    async fn file_journal() -> Option<Subject<dyn WebhookJournal>> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_owned();
        Some(Subject::new(dir, move || {
            let path = path.clone();
            async move { Arc::new(JournalFile::new(&path)) as Arc<dyn WebhookJournal> }
        }))
    }

    mod file {
        fanfare_cluster::webhook_journal_conformance!(super::file_journal());
    }

    #[tokio::test]
    async fn ids_that_are_not_uuids_are_refused_and_files_are_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let journal = JournalFile::new(dir.path());
        for bad in ["../x", "a/b", "", "a.b"] {
            assert!(journal.put(bad, Bytes::from_static(b"{}")).await.is_err(), "{bad:?}");
        }
        journal.put("0000-abc", Bytes::from_static(b"{}")).await.unwrap();
        let name = std::fs::read_dir(journal.dir()).unwrap().next().unwrap().unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(name.metadata().unwrap().permissions().mode() & 0o777, 0o600);
        }
    }
}
