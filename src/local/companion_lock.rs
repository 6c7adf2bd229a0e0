//! The original TypeScript server's lock on a local data directory, held alongside ours
//! so that the two servers never open the same directory at once.
//!
//! The original locks `server.lock` with `proper-lockfile`: it creates the directory
//! `server.lock.lock` (mkdir is atomic), refreshes the directory's modification time
//! every 15 s while it runs, and removes it on exit. A lock directory whose modification
//! time is more than 30 s old is stale (its holder died) and may be taken over. We do the
//! same: [`CompanionLock::acquire`] refuses while a fresh lock directory exists, replaces
//! a stale one, and the returned guard refreshes it every [`REFRESH`] until dropped,
//! when it removes it. The original never touches a fresh lock it does not hold, and a
//! holder whose lock was taken over (after 30 s without a refresh) is compromised.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use crate::clock::SharedClock;

/// Age after which a lock directory is stale (the original's `stale: 30_000`).
pub const STALE_MS: i64 = 30_000;
/// How often a held lock directory's modification time is refreshed (the original
/// refreshes every 15 s).
pub const REFRESH: Duration = Duration::from_secs(5);

/// The lock directory guarding `lock_file` (`server.lock` → `server.lock.lock`).
pub fn dir_for(lock_file: &Path) -> PathBuf {
    let mut s = lock_file.as_os_str().to_owned();
    s.push(".lock");
    PathBuf::from(s)
}

/// Why the lock was not taken.
#[derive(Debug, thiserror::Error)]
pub enum CompanionLockError {
    /// Another server (the original, or ours) holds it: its directory was refreshed
    /// `age_ms` ago.
    #[error("{} is held by another server (refreshed {age_ms} ms ago)", .dir.display())]
    Held { dir: PathBuf, age_ms: i64 },
    #[error("cannot lock {}: {source}", .dir.display())]
    Io {
        dir: PathBuf,
        source: std::io::Error,
    },
}

/// Age of the lock directory in milliseconds, `None` when there is none.
fn age_ms(dir: &Path, now_ms: i64) -> std::io::Result<Option<i64>> {
    let meta = match std::fs::metadata(dir) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let modified = meta.modified()?;
    let ms = modified
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    Ok(Some(now_ms - ms))
}

/// True while a server holds the lock directory of `lock_file` (it exists and is fresh).
pub fn is_held(lock_file: &Path, now_ms: i64) -> bool {
    matches!(age_ms(&dir_for(lock_file), now_ms), Ok(Some(a)) if a <= STALE_MS)
}

fn touch(dir: &Path, now_ms: i64) -> std::io::Result<()> {
    let t = UNIX_EPOCH + Duration::from_millis(now_ms.max(0) as u64);
    let f = std::fs::File::open(dir)?;
    f.set_times(std::fs::FileTimes::new().set_modified(t).set_accessed(t))
}

/// A held lock directory; refreshed by a background task, removed on drop.
#[derive(Debug)]
pub struct CompanionLock {
    dir: PathBuf,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl CompanionLock {
    /// Takes the lock directory of `lock_file`: refused while a fresh one exists, a stale
    /// one is replaced. Within a Tokio runtime a task on it keeps the lock fresh.
    pub fn acquire(
        lock_file: &Path,
        clock: SharedClock,
    ) -> Result<CompanionLock, CompanionLockError> {
        let dir = dir_for(lock_file);
        let io = |source| CompanionLockError::Io {
            dir: dir.clone(),
            source,
        };
        let now = clock.now_ms();
        match std::fs::create_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                match age_ms(&dir, now).map_err(io)? {
                    Some(age) if age <= STALE_MS => {
                        return Err(CompanionLockError::Held {
                            dir: dir.clone(),
                            age_ms: age,
                        })
                    }
                    _ => {
                        tracing::warn!(dir = %dir.display(), "taking over a stale lock");
                        match std::fs::remove_dir_all(&dir) {
                            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                                return Err(io(e))
                            }
                            _ => {}
                        }
                        // Another process may have taken it in the meantime: mkdir decides.
                        std::fs::create_dir(&dir).map_err(|e| {
                            if e.kind() == std::io::ErrorKind::AlreadyExists {
                                CompanionLockError::Held {
                                    dir: dir.clone(),
                                    age_ms: 0,
                                }
                            } else {
                                io(e)
                            }
                        })?;
                    }
                }
            }
            Err(e) => return Err(io(e)),
        }
        touch(&dir, now).map_err(io)?;
        // Outside a runtime (`local reset`, held for a moment) nothing refreshes it.
        let stop = tokio::runtime::Handle::try_current().ok().map(|rt| {
            let (tx, rx) = tokio::sync::oneshot::channel();
            rt.spawn(refresh(dir.clone(), clock, rx));
            tx
        });
        Ok(CompanionLock { dir, stop })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// Keeps the lock directory fresh until told to stop. A refresh that fails (the directory
/// was removed by someone else) is logged; it is never recreated, which could outlive the
/// guard.
async fn refresh(dir: PathBuf, clock: SharedClock, mut stop: tokio::sync::oneshot::Receiver<()>) {
    let dir = Arc::new(dir);
    loop {
        tokio::select! {
            _ = &mut stop => return,
            () = crate::clock::sleep(REFRESH) => {}
        }
        let now = clock.now_ms();
        let d = Arc::clone(&dir);
        let r = tokio::task::spawn_blocking(move || touch(&d, now)).await;
        match r {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::error!(dir = %dir.display(), error = %e, "cannot refresh the lock")
            }
            Err(e) => tracing::error!(dir = %dir.display(), error = %e, "lock refresh task failed"),
        }
    }
}

impl Drop for CompanionLock {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// Modification time of a path as milliseconds since the epoch (tests).
#[cfg(test)]
fn mtime_ms(p: &Path) -> i64 {
    std::fs::metadata(p)
        .and_then(|m| m.modified())
        .map(|t: std::time::SystemTime| {
            t.duration_since(UNIX_EPOCH)
                .map(|d| d.as_millis() as i64)
                .unwrap_or(0)
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock as _, ManualClock};

    #[tokio::test]
    async fn fresh_locks_refuse_stale_ones_are_taken_and_drop_removes() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("server.lock");
        let clock = ManualClock::new(1_800_000_000_000);
        let shared: SharedClock = clock.clone();
        let held = CompanionLock::acquire(&file, shared.clone()).unwrap();
        assert_eq!(held.dir(), dir.path().join("server.lock.lock"));
        assert_eq!(mtime_ms(held.dir()), 1_800_000_000_000);
        assert!(is_held(&file, clock.now_ms()));
        match CompanionLock::acquire(&file, shared.clone()) {
            Err(CompanionLockError::Held { age_ms, .. }) => assert_eq!(age_ms, 0),
            other => panic!("expected Held, got {other:?}"),
        }
        // 30 s without a refresh: stale, and taken over.
        clock.advance_ms(STALE_MS);
        assert!(CompanionLock::acquire(&file, shared.clone()).is_err());
        clock.advance_ms(1);
        assert!(!is_held(&file, clock.now_ms()));
        std::mem::forget(held);
        let second = CompanionLock::acquire(&file, shared.clone()).unwrap();
        assert_eq!(mtime_ms(second.dir()), clock.now_ms());
        drop(second);
        assert!(!dir.path().join("server.lock.lock").exists());
    }
}
