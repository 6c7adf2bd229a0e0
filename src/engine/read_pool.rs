//! Where blocking reads run, so that no SQLite query or file read ever runs on an async
//! worker thread.
//!
//! - The **request lane**: a fixed set of threads (`DS_READ_CONNECTIONS`), each owning a
//!   read-only connection, fed by a bounded queue. A request that finds the queue full is
//!   refused at once with [`EngineError::ReadBusy`] (503 with `Retry-After`) instead of
//!   piling up. Page reads, stream lookups that miss the metadata cache, listings and
//!   local segment-file reads go here. A panic in a task is caught: the task's caller gets
//!   an error, the thread drops its connection and carries on.
//! - The **background lane**: segment builds and the uploader's catalog queries run on
//!   tokio's blocking pool with their own connections, so a long segment build never
//!   takes a request thread. Their concurrency is bounded by their callers (one segmenter,
//!   `DS_UPLOAD_CONCURRENCY` uploads).
//!
//! WAL mode lets every reader run beside the writer without blocking it.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crossbeam_channel::{bounded, Receiver, Sender, TrySendError};
use rusqlite::Connection;
use tokio::sync::oneshot;

use super::db;
use super::EngineError;

/// A request-lane thread's connection, opened on first use (and again after a failure).
struct Slot {
    path: Arc<PathBuf>,
    conn: Option<Connection>,
}

impl Slot {
    fn conn(&mut self) -> Result<&Connection, EngineError> {
        if self.conn.is_none() {
            self.conn = Some(db::open_reader(&self.path)?);
        }
        self.conn
            .as_ref()
            .ok_or_else(|| EngineError::Internal("read connection unavailable".into()))
    }
}

type Task = Box<dyn FnOnce(&mut Slot) + Send>;

pub struct ReadPool {
    tx: Sender<Task>,
    path: Arc<PathBuf>,
    /// Idle connections of the background lane.
    idle: Arc<Mutex<Vec<Connection>>>,
    max_idle: usize,
}

impl ReadPool {
    /// Starts `threads` request-lane threads with a queue of `queue` tasks.
    pub fn new(path: PathBuf, threads: usize, queue: usize) -> Result<ReadPool, EngineError> {
        let path = Arc::new(path);
        let (tx, rx) = bounded::<Task>(queue.max(1));
        for i in 0..threads.max(1) {
            let rx: Receiver<Task> = rx.clone();
            let mut slot = Slot {
                path: path.clone(),
                conn: None,
            };
            std::thread::Builder::new()
                .name(format!("sqlite-reader-{i}"))
                .spawn(move || {
                    // Ends when the pool (every sender) is dropped.
                    while let Ok(task) = rx.recv() {
                        if catch_unwind(AssertUnwindSafe(|| task(&mut slot))).is_err() {
                            tracing::error!("a read task panicked; its connection is reopened");
                            slot.conn = None;
                        }
                    }
                })
                .map_err(|e| EngineError::io("spawn read thread", e))?;
        }
        Ok(ReadPool {
            tx,
            path,
            idle: Arc::default(),
            max_idle: threads.max(1),
        })
    }

    fn submit<T: Send + 'static>(
        &self,
        job: impl FnOnce(&mut Slot) -> Result<T, EngineError> + Send + 'static,
    ) -> Result<oneshot::Receiver<Result<T, EngineError>>, EngineError> {
        let (tx, rx) = oneshot::channel();
        let task: Task = Box::new(move |slot| {
            let _ = tx.send(job(slot));
        });
        match self.tx.try_send(task) {
            Ok(()) => Ok(rx),
            Err(TrySendError::Full(_)) => {
                crate::telemetry::metrics::metrics().read_busy.inc();
                Err(EngineError::ReadBusy)
            }
            Err(TrySendError::Disconnected(_)) => Err(EngineError::ShuttingDown),
        }
    }

    /// Runs `f` with a read connection on a request-lane thread; `ReadBusy` when the
    /// queue is full.
    pub async fn run<T, E, F>(&self, f: F) -> Result<T, EngineError>
    where
        T: Send + 'static,
        E: Into<EngineError>,
        F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
    {
        let rx = self.submit(move |slot| f(slot.conn()?).map_err(Into::into))?;
        rx.await
            .map_err(|_| EngineError::Internal("a read task panicked".into()))?
    }

    /// Runs blocking I/O that needs no connection (a local file read) on a request-lane
    /// thread.
    pub async fn run_io<T, F>(&self, f: F) -> Result<T, EngineError>
    where
        T: Send + 'static,
        F: FnOnce() -> Result<T, EngineError> + Send + 'static,
    {
        let rx = self.submit(move |_| f())?;
        rx.await
            .map_err(|_| EngineError::Internal("a read task panicked".into()))?
    }

    /// Runs `f` with a connection of the background lane (tokio's blocking pool), for
    /// long reads: segment building, catalog scans of the background tasks.
    pub async fn run_background<T, E, F>(&self, f: F) -> Result<T, EngineError>
    where
        T: Send + 'static,
        E: Into<EngineError>,
        F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
    {
        let (path, idle, max_idle) = (self.path.clone(), self.idle.clone(), self.max_idle);
        tokio::task::spawn_blocking(move || {
            let conn = idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
            let conn = match conn {
                Some(c) => c,
                None => db::open_reader(&path)?,
            };
            let out = f(&conn).map_err(Into::into);
            let mut idle = idle.lock().unwrap_or_else(|p| p.into_inner());
            if idle.len() < max_idle {
                idle.push(conn);
            }
            out
        })
        .await
        .map_err(|e| EngineError::Internal(format!("background read failed: {e}")))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_queue_refuses_and_a_panicking_task_fails_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.sqlite");
        drop(db::open_writer(&path).unwrap());
        let pool = ReadPool::new(path, 1, 1).unwrap();
        // Hold the only thread, fill the one queue slot, and the next one is refused.
        let (started_tx, started) = std::sync::mpsc::channel::<()>();
        let (release, held) = std::sync::mpsc::channel::<()>();
        let busy = pool
            .submit(move |_| {
                let _ = started_tx.send(());
                let _ = held.recv();
                Ok(())
            })
            .unwrap();
        started.recv().unwrap();
        let queued = pool.submit(|_| Ok(7)).unwrap();
        assert!(matches!(pool.submit(|_| Ok(0)), Err(EngineError::ReadBusy)));
        release.send(()).unwrap();
        busy.await.unwrap().unwrap();
        assert_eq!(queued.await.unwrap().unwrap(), 7);

        let r = pool
            .run(|_| -> Result<(), EngineError> { panic!("boom") })
            .await;
        assert!(r.is_err());
        let n: i64 = pool
            .run(|c| c.query_row("SELECT 41 + 1", [], |r| r.get(0)))
            .await
            .unwrap();
        assert_eq!(n, 42);
    }
}
