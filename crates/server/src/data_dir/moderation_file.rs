//! The moderation state a single node keeps in `data_dir/moderation/`:
//! one JSON file per kind (slow-mode intervals, sanctions), read at start
//! and rewritten whole on each change (moderators' changes are rare), to a
//! partial file renamed over the old one, so a crash leaves one or the
//! other, never half.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use fanfare_cluster::ClusterError;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// One file of `data_dir/moderation/`.
pub struct ModerationFile {
    path: PathBuf,
}

impl ModerationFile {
    pub fn new(data_dir: &Path, name: &str) -> Self {
        Self { path: data_dir.join("moderation").join(name) }
    }

    /// What the file holds; `T::default()` when there is none yet. A file
    /// that does not parse is an error naming it.
    pub fn read<T: DeserializeOwned + Default>(&self) -> anyhow::Result<T> {
        match std::fs::read(&self.path) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes).map_err(|e| anyhow::anyhow!("{}: {e}", self.path.display()))
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(T::default()),
            Err(error) => Err(anyhow::anyhow!("reading {}: {error}", self.path.display())),
        }
    }

    /// Replaces the file with `value`.
    pub async fn write<T: Serialize>(&self, value: &T) -> Result<(), ClusterError> {
        let text = serde_json::to_vec_pretty(value).expect("moderation state serializes");
        let failed = |error: std::io::Error| ClusterError::Unavailable {
            backend: "data_dir",
            source: Arc::new(error),
        };
        let dir = self.path.parent().expect("a file in a directory");
        tokio::fs::create_dir_all(dir).await.map_err(failed)?;
        let partial = self.path.with_extension("json.partial");
        tokio::fs::write(&partial, text).await.map_err(failed)?;
        tokio::fs::rename(&partial, &self.path).await.map_err(failed)
    }
}
