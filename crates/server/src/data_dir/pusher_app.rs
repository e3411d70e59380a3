//! The Pusher app generated on first start when none is configured.
//!
//! Like the API key (`api_key.rs`): never a well-known default. A random
//! id, key and secret are written to `data_dir/pusher_app.json` (readable by
//! the owner only) and printed once by the serve command; later starts read
//! the same app back.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::api_key::{put_in_place, sync_dir, warn_if_readable_by_others, write_private};
use crate::config::AppSettings;

/// Random bytes in the generated key (hex, as Pusher keys look) and secret.
const KEY_BYTES: usize = 10;
const SECRET_BYTES: usize = 16;

/// What the file holds.
#[derive(Serialize, Deserialize)]
struct StoredApp {
    id: String,
    key: String,
    secret: String,
}

/// Where the generated app is kept.
pub fn pusher_app_file(data_dir: &Path) -> PathBuf {
    data_dir.join("pusher_app.json")
}

/// Reads the app from `data_dir/pusher_app.json`, or generates and stores
/// one. Returns the app (channel prefix `""`, every other setting at its
/// default) and whether this call created it.
pub fn load_or_create_default_app(data_dir: &Path) -> io::Result<(AppSettings, bool)> {
    let path = pusher_app_file(data_dir);
    if let Some(app) = read_app(&path)? {
        return Ok((app, false));
    }
    fs::create_dir_all(data_dir)?;
    let stored = StoredApp {
        id: rand::random_range(1_000_000..10_000_000u32).to_string(),
        key: hex(&rand::random::<[u8; KEY_BYTES]>()),
        secret: hex(&rand::random::<[u8; SECRET_BYTES]>()),
    };
    let text = serde_json::to_string_pretty(&stored).map_err(io::Error::other)?;
    let temp = data_dir.join(format!("pusher_app.{:016x}.tmp", rand::random::<u64>()));
    let written = write_private(&temp, &text).and_then(|()| put_in_place(&temp, &path));
    let _ = fs::remove_file(&temp);
    match written {
        Ok(()) => {
            sync_dir(data_dir)?;
            Ok((AppSettings::new(stored.id, stored.key, stored.secret), true))
        }
        // Another process created it meanwhile: its app wins.
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {
            let app = read_app(&path)?.ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
            Ok((app, false))
        }
        Err(error) => Err(error),
    }
}

fn read_app(path: &Path) -> io::Result<Option<AppSettings>> {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(error),
    };
    warn_if_readable_by_others(path);
    let invalid = |reason: String| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: {reason}; fix it, or delete it to have a new app generated", path.display()),
        )
    };
    let stored: StoredApp =
        serde_json::from_str(&text).map_err(|error| invalid(format!("not the expected JSON ({error})")))?;
    if stored.id.is_empty() || stored.key.is_empty() || stored.secret.is_empty() {
        return Err(invalid("id, key and secret must not be empty".to_owned()));
    }
    Ok(Some(AppSettings::new(stored.id, stored.key, stored.secret)))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_app_is_created_once_then_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().join("data");
        let (app, created) = load_or_create_default_app(&data_dir).unwrap();
        assert!(created);
        assert_eq!(app.key.len(), 2 * KEY_BYTES);
        assert_eq!(app.secret.len(), 2 * SECRET_BYTES);
        assert!(app.id.bytes().all(|b| b.is_ascii_digit()), "{}", app.id);
        assert_eq!(app.channel_prefix, "");
        assert!(app.enabled && !app.client_events);

        let (again, created) = load_or_create_default_app(&data_dir).unwrap();
        assert!(!created);
        assert_eq!(again, app);
        assert_eq!(fs::read_dir(&data_dir).unwrap().count(), 1, "no temporary file left behind");
    }

    #[cfg(unix)]
    #[test]
    fn the_app_file_is_readable_by_its_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        load_or_create_default_app(dir.path()).unwrap();
        let mode = fs::metadata(pusher_app_file(dir.path())).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn two_data_dirs_get_different_apps() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (a, _) = load_or_create_default_app(a.path()).unwrap();
        let (b, _) = load_or_create_default_app(b.path()).unwrap();
        assert_ne!((a.key, a.secret), (b.key, b.secret));
    }

    #[test]
    fn a_damaged_file_is_an_error_not_a_silent_new_app() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(pusher_app_file(dir.path()), "{\"id\": \"1\"}").unwrap();
        let error = load_or_create_default_app(dir.path()).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
        assert!(error.to_string().contains("pusher_app.json"), "{error}");
    }
}
