//! One writer at a time: an exclusive `flock(2)` on `NAME.lock` beside what is written
//! (a bundle, a plan's journal). A second run fails at once and names the holder's PID,
//! which the holder writes into the lock file.
//!
//! The lock file is removed when the lock is released. Removing a lock file races with
//! a process that opened it just before: that process would lock an unlinked inode. So
//! after locking, the path must still name the locked inode; if not, we try again.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("{} is locked by another chatvault run{}; wait for it to finish (or, if no such process exists, remove {})", target.display(), holder.map(|pid| format!(" (PID {pid})")).unwrap_or_default(), lock.display())]
    Held {
        target: PathBuf,
        lock: PathBuf,
        holder: Option<u32>,
    },
    #[error("cannot lock {}: {source}", lock.display())]
    Io {
        lock: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl LockError {
    /// The command's exit code for this error ([`crate::exit`]).
    pub fn exit_code(&self) -> u8 {
        crate::exit::LOCKED
    }
}

/// Held until dropped; dropping removes the lock file and releases the lock.
#[derive(Debug)]
pub struct LockGuard {
    file: File,
    path: PathBuf,
}

impl LockGuard {
    /// The lock file, `NAME.lock`.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        // Unlink while still holding the lock; whoever opened the old inode meanwhile
        // sees that the path no longer names it and starts over.
        let _ = std::fs::remove_file(&self.path);
        let _ = self.file.unlock();
    }
}

/// The lock file that guards `target`: `target` with `.lock` appended.
pub fn lock_path(target: &Path) -> PathBuf {
    let mut name = target.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// Takes the exclusive lock for `target`, or fails at once if another process holds it.
pub fn acquire(target: &Path) -> Result<LockGuard, LockError> {
    let lock = lock_path(target);
    let io = |source| LockError::Io {
        lock: lock.clone(),
        source,
    };
    // A handful of retries covers a holder that releases while we open; more would mean
    // something keeps swapping the file, which is worth an error.
    for _ in 0..8 {
        // Never through a symlink: a link planted at NAME.lock would have us create or
        // write a file elsewhere.
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&lock)
            .map_err(io)?;
        if !file.metadata().map_err(io)?.is_file() {
            return Err(io(std::io::Error::other(
                "the lock file is not a regular file",
            )));
        }
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(LockError::Held {
                    target: target.to_path_buf(),
                    holder: read_pid(&mut file),
                    lock,
                })
            }
            Err(TryLockError::Error(source)) => return Err(io(source)),
        }
        let held = file.metadata().map_err(io)?;
        let still_named = std::fs::symlink_metadata(&lock)
            .is_ok_and(|now| now.dev() == held.dev() && now.ino() == held.ino());
        if !still_named {
            continue;
        }
        file.set_len(0).map_err(io)?;
        file.write_all(format!("{}\n", std::process::id()).as_bytes())
            .map_err(io)?;
        return Ok(LockGuard { file, path: lock });
    }
    Err(io(std::io::Error::other(
        "the lock file kept being replaced while it was being locked",
    )))
}

fn read_pid(file: &mut File) -> Option<u32> {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.take(32).read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_fails_with_the_holders_pid_and_release_removes_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("bundle");
        let first = acquire(&target).unwrap();
        assert_eq!(first.path(), dir.path().join("bundle.lock"));
        let text = std::fs::read_to_string(first.path()).unwrap();
        assert_eq!(text, format!("{}\n", std::process::id()));
        // flock locks belong to the open file description: a second open in the same
        // process conflicts just as another process would.
        match acquire(&target) {
            Err(LockError::Held { holder, .. }) => assert_eq!(holder, Some(std::process::id())),
            other => panic!("expected Held, got {other:?}"),
        }
        drop(first);
        assert!(!dir.path().join("bundle.lock").exists());
        let again = acquire(&target).unwrap();
        drop(again);
    }

    #[test]
    fn a_stale_lock_file_without_a_holder_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("plan.json");
        std::fs::write(lock_path(&target), "99999999\n").unwrap();
        let guard = acquire(&target).unwrap();
        let text = std::fs::read_to_string(guard.path()).unwrap();
        assert_eq!(text.trim(), std::process::id().to_string());
    }
}
