//! One server per name, enforced with an OS file lock on `server.lock`. The kernel drops
//! the lock when the holding process dies, however it dies, so a server killed with
//! `kill -9` can be restarted at once. The holder writes its pid into the file.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

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

#[cfg(test)]
mod tests {
    use super::*;

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
