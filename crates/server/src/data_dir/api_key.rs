//! The HTTP API key generated on first start when none is configured.
//!
//! Never a well-known default: a fresh random key is written to
//! `data_dir/api_key` (readable by the owner only) and printed once by the
//! serve command; later starts read the same file back.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

/// Random bytes in a generated key (written as 64 hex characters).
const KEY_BYTES: usize = 32;

pub use crate::config::api_key_file;

/// Reads the key from `data_dir/api_key`, or generates and stores one.
/// Returns the key and whether it was created by this call.
pub fn load_or_create_api_key(data_dir: &Path) -> io::Result<(String, bool)> {
    let path = api_key_file(data_dir);
    if let Some(key) = read_key(&path)? {
        return Ok((key, false));
    }
    fs::create_dir_all(data_dir)?;
    let key = generate_key();
    // Written whole to a private temporary file, then linked into place:
    // a crash never leaves a half-written key, and if another process
    // created the file meanwhile, its key wins and is read back.
    let temp = data_dir.join(format!("api_key.{:016x}.tmp", rand::random::<u64>()));
    let written = write_private(&temp, &key).and_then(|()| put_in_place(&temp, &path));
    let _ = fs::remove_file(&temp);
    match written {
        Ok(()) => {
            sync_dir(data_dir)?;
            Ok((key, true))
        }
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {
            let key = read_key(&path)?.ok_or_else(|| empty_key_error(&path))?;
            Ok((key, false))
        }
        Err(error) => Err(error),
    }
}

/// Links the finished temporary file to `path`, failing with
/// `AlreadyExists` if `path` exists.
pub(super) fn put_in_place(temp: &Path, path: &Path) -> io::Result<()> {
    match fs::hard_link(temp, path) {
        Err(error) if error.kind() != io::ErrorKind::AlreadyExists => {
            // Some filesystems (certain container volumes) have no hard
            // links; a rename is atomic too, only less careful about a
            // second server starting on the same directory at this instant.
            if path.exists() {
                return Err(io::ErrorKind::AlreadyExists.into());
            }
            fs::rename(temp, path)
        }
        linked => linked,
    }
}

fn read_key(path: &Path) -> io::Result<Option<String>> {
    match fs::read_to_string(path) {
        Ok(text) => {
            warn_if_readable_by_others(path);
            let key = text.trim();
            if key.is_empty() {
                return Err(empty_key_error(path));
            }
            Ok(Some(key.to_owned()))
        }
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(error),
    }
}

fn empty_key_error(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("{} is empty: delete it to have a new key generated", path.display()),
    )
}

fn generate_key() -> String {
    let bytes: [u8; KEY_BYTES] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(super) fn write_private(path: &Path, key: &str) -> io::Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(key.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()
}

/// Makes the new directory entry itself durable: a key printed once must
/// survive a power loss.
pub(super) fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    fs::File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

#[cfg(unix)]
pub(super) fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(path = %path.display(), "this file holds a secret and is readable by other users; chmod 600 it");
    }
}

#[cfg(not(unix))]
pub(super) fn warn_if_readable_by_others(_: &Path) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_created_once_then_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().join("data");

        let (key, created) = load_or_create_api_key(&data_dir).unwrap();
        assert!(created);
        assert_eq!(key.len(), 2 * KEY_BYTES);
        assert!(key.bytes().all(|b| b.is_ascii_hexdigit()));

        let (again, created) = load_or_create_api_key(&data_dir).unwrap();
        assert!(!created);
        assert_eq!(again, key);
        assert_eq!(fs::read_dir(&data_dir).unwrap().count(), 1, "no temporary file left behind");
    }

    #[cfg(unix)]
    #[test]
    fn the_key_file_is_readable_by_its_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        load_or_create_api_key(dir.path()).unwrap();
        let mode = fs::metadata(api_key_file(dir.path())).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn two_data_dirs_get_different_keys() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        assert_ne!(load_or_create_api_key(a.path()).unwrap().0, load_or_create_api_key(b.path()).unwrap().0);
    }

    #[test]
    fn an_existing_key_written_by_hand_is_used_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(api_key_file(dir.path()), "my-own-key-0123456789\n").unwrap();
        assert_eq!(load_or_create_api_key(dir.path()).unwrap(), ("my-own-key-0123456789".to_owned(), false));
    }

    #[test]
    fn an_empty_key_file_is_an_error_not_a_silent_new_key() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(api_key_file(dir.path()), "\n").unwrap();
        let error = load_or_create_api_key(dir.path()).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
    }
}
