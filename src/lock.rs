//! One server per data directory (a full-mode `DS_ROOT`, a local-mode name), enforced
//! with an OS file lock on `server.lock` in it. The kernel drops the lock when the holding
//! process dies, however it dies, so a server killed with `kill -9` can be restarted at
//! once. The holder writes its pid into the file.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// The lock file's name inside a data directory.
pub const LOCK_FILE: &str = "server.lock";

/// A held instance lock; released on drop (or by the kernel at process exit).
#[derive(Debug)]
pub struct InstanceLock {
    file: File,
}

/// Outcome of trying to take the lock.
#[derive(Debug)]
pub enum LockError {
    /// Another process holds it; its pid if readable.
    Held(Option<u32>),
    Io(std::io::Error),
}

fn open(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
}

fn read_pid(file: &mut File) -> Option<u32> {
    let mut s = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.read_to_string(&mut s).ok()?;
    s.trim().parse().ok()
}

impl InstanceLock {
    /// Takes the lock at `path` without waiting and records this process's pid in it.
    pub fn acquire(path: &Path) -> Result<InstanceLock, LockError> {
        let mut file = open(path).map_err(LockError::Io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Err(LockError::Held(read_pid(&mut file))),
            Err(TryLockError::Error(e)) => return Err(LockError::Io(e)),
        }
        file.set_len(0).map_err(LockError::Io)?;
        file.seek(SeekFrom::Start(0)).map_err(LockError::Io)?;
        writeln!(file, "{}", std::process::id()).map_err(LockError::Io)?;
        file.flush().map_err(LockError::Io)?;
        Ok(InstanceLock { file })
    }
}

impl Drop for InstanceLock {
    fn drop(&mut self) {
        let _ = self.file.unlock();
    }
}

/// `Some(pid)` (the pid possibly unreadable) while a live process holds the lock at
/// `path`; `None` if nobody does. Takes and releases the lock if it is free.
pub fn holder(path: &Path) -> std::io::Result<Option<Option<u32>>> {
    if !path.exists() {
        return Ok(None);
    }
    let mut file = open(path)?;
    match file.try_lock() {
        Ok(()) => {
            let _ = file.unlock();
            Ok(None)
        }
        Err(TryLockError::WouldBlock) => Ok(Some(read_pid(&mut file))),
        Err(TryLockError::Error(e)) => Err(e),
    }
}

/// The locks that make this process the only one using a data directory and its
/// database: `<root>/server.lock`, and `<db>.lock` too when the database lies outside the
/// root. Held until dropped.
#[derive(Debug)]
pub struct DataDirLock {
    _held: Vec<InstanceLock>,
}

/// Why a data directory could not be locked.
#[derive(Debug, thiserror::Error)]
pub enum DataDirLockError {
    /// Another live process holds one of the locks.
    #[error("{what} is in use by another prisma-streams process{}; stop it first (lock file {})",
        .pid.map(|p| format!(" (pid {p})")).unwrap_or_default(), .lock.display())]
    InUse {
        what: String,
        lock: PathBuf,
        pid: Option<u32>,
    },
    #[error("cannot lock {}: {source}", .lock.display())]
    Io {
        lock: PathBuf,
        source: std::io::Error,
    },
}

impl DataDirLock {
    /// Locks the existing directory `root` and, if `db_path` is not inside it, the
    /// database as well (creating the database's directory if needed).
    pub fn acquire(root: &Path, db_path: &Path) -> Result<DataDirLock, DataDirLockError> {
        let root_lock = root.join(LOCK_FILE);
        let mut held = vec![take(&root_lock, || {
            format!("data directory {}", root.display())
        })?];
        if let Some(db_lock) =
            outside_lock(root, db_path).map_err(|source| DataDirLockError::Io {
                lock: root_lock.clone(),
                source,
            })?
        {
            held.push(take(&db_lock, || {
                format!("database {}", db_path.display())
            })?);
        }
        Ok(DataDirLock { _held: held })
    }
}

fn take(path: &Path, what: impl FnOnce() -> String) -> Result<InstanceLock, DataDirLockError> {
    InstanceLock::acquire(path).map_err(|e| match e {
        LockError::Held(pid) => DataDirLockError::InUse {
            what: what(),
            lock: path.to_path_buf(),
            pid,
        },
        LockError::Io(source) => DataDirLockError::Io {
            lock: path.to_path_buf(),
            source,
        },
    })
}

/// `Some(<db>.lock)` when `db_path` is outside `root` (compared after resolving links).
fn outside_lock(root: &Path, db_path: &Path) -> std::io::Result<Option<PathBuf>> {
    let root = std::fs::canonicalize(root)?;
    let dir = match db_path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir)?;
    if std::fs::canonicalize(dir)?.starts_with(&root) {
        return Ok(None);
    }
    let mut lock = db_path.as_os_str().to_owned();
    lock.push(".lock");
    Ok(Some(PathBuf::from(lock)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_data_dir_is_locked_once_and_an_outside_database_too() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::create_dir_all(&a).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        let inside = DataDirLock::acquire(&a, &a.join("sub/wal.sqlite")).unwrap();
        assert!(!a.join("sub/wal.sqlite.lock").exists());
        match DataDirLock::acquire(&a, &a.join("wal.sqlite")) {
            Err(e @ DataDirLockError::InUse { .. }) => {
                let msg = e.to_string();
                assert!(
                    msg.contains(&format!("pid {}", std::process::id())),
                    "{msg}"
                );
                assert!(msg.contains("data directory"), "{msg}");
            }
            other => panic!("expected InUse, got {other:?}"),
        }
        drop(inside);

        // Two roots sharing one database outside both: the second is refused.
        let shared = dir.path().join("db/shared.sqlite");
        let first = DataDirLock::acquire(&a, &shared).unwrap();
        assert!(dir.path().join("db/shared.sqlite.lock").exists());
        match DataDirLock::acquire(&b, &shared) {
            Err(DataDirLockError::InUse { lock, .. }) => {
                assert_eq!(lock, dir.path().join("db/shared.sqlite.lock"))
            }
            other => panic!("expected InUse, got {other:?}"),
        }
        drop(first);
        // A refused attempt released what it had taken.
        DataDirLock::acquire(&b, &shared).unwrap();
    }

    #[test]
    fn a_second_lock_fails_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.lock");
        assert!(holder(&path).unwrap().is_none());
        let first = InstanceLock::acquire(&path).unwrap();
        match InstanceLock::acquire(&path) {
            Err(LockError::Held(pid)) => assert_eq!(pid, Some(std::process::id())),
            other => panic!("expected Held, got {other:?}"),
        }
        assert_eq!(holder(&path).unwrap(), Some(Some(std::process::id())));
        drop(first);
        assert!(holder(&path).unwrap().is_none());
        InstanceLock::acquire(&path).unwrap();
    }
}
