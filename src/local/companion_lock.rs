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
//!
//! A server of ours killed with `kill -9` leaves a fresh lock directory behind, which
//! would keep the name unusable for 30 s (our own `server.lock` is released by the kernel
//! at once). So a server of ours signs the times it sets: every refresh sets the
//! directory's modification time to the current millisecond plus a random number of
//! nanoseconds (1 to 999,999) chosen when it took the lock, and records that number once
//! in `server.lock.lock.owner` (beside the directory: `proper-lockfile` removes the
//! directory with `rmdir`, which needs it empty). Callers hold our `server.lock`, so no
//! server of ours is running: a lock directory whose time carries the recorded signature
//! was left by a server of ours that died, and is taken over at once. The original sets
//! whole milliseconds (JavaScript dates), so its times never carry one. A refresh writes
//! no data, only the directory's time. On a file system without sub-millisecond times
//! the signature is lost and a dead server's lock is simply waited out (30 s).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use crate::clock::SharedClock;

/// Age after which a lock directory is stale (the original's `stale: 30_000`).
pub const STALE_MS: i64 = 30_000;
/// How often a held lock directory's modification time is refreshed (the original
/// refreshes every 15 s; a third of the stale age leaves room for a slow machine).
pub const REFRESH: Duration = Duration::from_secs(10);

/// Nanoseconds within a millisecond: where a signature lives.
const NANOS_PER_MS: u32 = 1_000_000;

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

/// The file recording the last modification time a server of ours gave the directory.
fn owner_for(dir: &Path) -> PathBuf {
    let mut s = dir.as_os_str().to_owned();
    s.push(".owner");
    PathBuf::from(s)
}

/// The directory's modification time in milliseconds.
#[cfg(test)]
fn mtime_ms(dir: &Path) -> std::io::Result<i64> {
    let modified = std::fs::metadata(dir)?.modified()?;
    Ok(modified
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0))
}

/// The lock directory was last refreshed by a server of ours (which, as the caller holds
/// `server.lock`, is no longer running): its time carries the recorded signature.
fn left_by_us(dir: &Path) -> bool {
    let recorded = std::fs::read_to_string(owner_for(dir))
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
        .filter(|s| (1..NANOS_PER_MS).contains(s));
    let signature = std::fs::metadata(dir)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.subsec_nanos() % NANOS_PER_MS);
    matches!((recorded, signature), (Some(r), Some(s)) if r == s)
}

/// True while another server holds the lock directory of `lock_file`: it exists, is
/// fresh, and was not left by a server of ours. Call only while no server of ours runs on
/// the directory (nobody holds `server.lock`, or the caller does).
pub fn is_held(lock_file: &Path, now_ms: i64) -> bool {
    let dir = dir_for(lock_file);
    matches!(age_ms(&dir, now_ms), Ok(Some(a)) if a <= STALE_MS) && !left_by_us(&dir)
}

/// Sets the directory's modification time to `now_ms` signed with `signature` (ns).
fn touch(dir: &Path, now_ms: i64, signature: u32) -> std::io::Result<()> {
    let t = UNIX_EPOCH
        + Duration::from_millis(now_ms.max(0) as u64)
        + Duration::from_nanos(u64::from(signature));
    let f = std::fs::File::open(dir)?;
    f.set_times(std::fs::FileTimes::new().set_modified(t).set_accessed(t))
}

/// Records the signature of this server's times (once, when it takes the lock).
fn record_signature(dir: &Path, signature: u32) -> std::io::Result<()> {
    let owner = owner_for(dir);
    let mut tmp = owner.as_os_str().to_owned();
    tmp.push(".tmp");
    std::fs::write(&tmp, format!("{signature}\n"))?;
    std::fs::rename(&tmp, &owner)
}

/// A held lock directory; refreshed by a background task, removed on drop.
#[derive(Debug)]
pub struct CompanionLock {
    dir: PathBuf,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl CompanionLock {
    /// Takes the lock directory of `lock_file`: refused while a fresh one exists, a stale
    /// one (or one a server of ours left) is replaced. The caller holds `server.lock`.
    /// Within a Tokio runtime a task on it keeps the lock fresh.
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
                    Some(age) if age <= STALE_MS && !left_by_us(&dir) => {
                        return Err(CompanionLockError::Held {
                            dir: dir.clone(),
                            age_ms: age,
                        })
                    }
                    _ => {
                        tracing::warn!(dir = %dir.display(), "taking over a lock its holder left");
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
        let signature = u32::try_from(clock.random_in(1, u64::from(NANOS_PER_MS) - 1)).unwrap_or(1);
        record_signature(&dir, signature).map_err(io)?;
        touch(&dir, now, signature).map_err(io)?;
        // Outside a runtime (`local reset`, held for a moment) nothing refreshes it.
        let stop = tokio::runtime::Handle::try_current().ok().map(|rt| {
            let (tx, rx) = tokio::sync::oneshot::channel();
            rt.spawn(refresh(dir.clone(), clock, signature, rx));
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
async fn refresh(
    dir: PathBuf,
    clock: SharedClock,
    signature: u32,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) {
    let dir = Arc::new(dir);
    loop {
        tokio::select! {
            _ = &mut stop => return,
            () = crate::clock::sleep(REFRESH) => {}
        }
        let now = clock.now_ms();
        let d = Arc::clone(&dir);
        let r = tokio::task::spawn_blocking(move || touch(&d, now, signature)).await;
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
        let _ = std::fs::remove_file(owner_for(&self.dir));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock as _, ManualClock};

    fn set_mtime(dir: &Path, ms: i64) {
        let t = UNIX_EPOCH + Duration::from_millis(ms as u64);
        std::fs::File::open(dir)
            .unwrap()
            .set_times(std::fs::FileTimes::new().set_modified(t))
            .unwrap();
    }

    #[tokio::test]
    async fn fresh_locks_refuse_stale_ones_are_taken_and_drop_removes() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("server.lock");
        let lock_dir = dir.path().join("server.lock.lock");
        let clock = ManualClock::new(1_800_000_000_000);
        let shared: SharedClock = clock.clone();
        // The original's lock (no owner record), refreshed just now.
        std::fs::create_dir(&lock_dir).unwrap();
        set_mtime(&lock_dir, clock.now_ms());
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
        let held = CompanionLock::acquire(&file, shared.clone()).unwrap();
        assert_eq!(held.dir(), lock_dir);
        assert_eq!(mtime_ms(&lock_dir).unwrap(), clock.now_ms());

        // Ours, left by a server that died (`kill -9`): taken over at once.
        std::mem::forget(held);
        clock.advance_ms(1000);
        assert!(!is_held(&file, clock.now_ms()));
        let again = CompanionLock::acquire(&file, shared.clone()).unwrap();
        // ... unless the original took it over since (it sets its own time).
        std::mem::forget(again);
        set_mtime(&lock_dir, clock.now_ms() - 7);
        assert!(is_held(&file, clock.now_ms()));
        assert!(CompanionLock::acquire(&file, shared.clone()).is_err());

        // Dropping removes the directory and the record.
        clock.advance_ms(STALE_MS + 10);
        let last = CompanionLock::acquire(&file, shared.clone()).unwrap();
        drop(last);
        assert!(!lock_dir.exists());
        assert!(!dir.path().join("server.lock.lock.owner").exists());
    }
}
