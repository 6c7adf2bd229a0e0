//! Local mode: one server per name, each with its own SQLite file under the data root,
//! for `prisma dev` and other local tools. `start`/`daemon` run a server; `status`,
//! `stop` and `reset` inspect and manage one from another process.
//!
//! Exit codes (stable, the JS shim maps them): 0 success, 1 other failure, 2 invalid
//! input (name, hostname, environment), 3 the name is in use by a running server,
//! 4 the address is in use.

pub mod companion_lock;
mod paths;
mod state;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::app::{
    announce, http_url, lock_data_dir, ready_line, shutdown_signal, AppError, BoundServer,
};
use crate::cli::LocalServerArgs;
use crate::clock::SharedClock;
use crate::config::{local_data_root, Config, Env};
use crate::lock::{self, DataDirLockError};
use crate::protocol::headers::format_rfc3339_ms;

pub use paths::{normalize_name, ServerPaths};

/// A local-mode failure, with its exit code.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error("{0}")]
    Invalid(String),
    #[error("local server {name:?} is running{}; stop it first or use another --name", describe_holder(*.pid, .url.as_deref()))]
    Locked {
        name: String,
        pid: Option<u32>,
        url: Option<String>,
    },
    #[error("{0}")]
    AddrInUse(String),
    #[error("{0}")]
    Failed(String),
}

fn describe_holder(pid: Option<u32>, url: Option<&str>) -> String {
    match (pid, url) {
        (Some(p), Some(u)) => format!(" (pid {p}, {u})"),
        (Some(p), None) => format!(" (pid {p})"),
        _ => String::new(),
    }
}

impl LocalError {
    pub fn exit_code(&self) -> u8 {
        match self {
            LocalError::Failed(_) => 1,
            LocalError::Invalid(_) => 2,
            LocalError::Locked { .. } => 3,
            LocalError::AddrInUse(_) => 4,
        }
    }
}

fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> LocalError {
    let path = path.display().to_string();
    move |e| LocalError::Failed(format!("{what} {path}: {e}"))
}

fn server_paths(env: &Env, name: Option<&str>) -> Result<ServerPaths, LocalError> {
    let name = normalize_name(name).map_err(LocalError::Invalid)?;
    let root = local_data_root(env).map_err(|e| LocalError::Invalid(e.to_string()))?;
    Ok(ServerPaths::new(&root, &name))
}

/// Runs a local server until SIGINT/SIGTERM (and, as a daemon, until stdin closes).
pub async fn run(
    env: &Env,
    clock: SharedClock,
    args: &LocalServerArgs,
    daemon: bool,
) -> Result<(), LocalError> {
    let paths = server_paths(env, args.name.as_deref())?;
    let config = Config::for_local(
        paths.dir.clone(),
        &args.hostname,
        args.port,
        daemon,
        args.allow_unauthenticated,
        env,
    )
    .map_err(|e| LocalError::Invalid(e.to_string()))?;
    let held = lock_data_dir(&config).map_err(|e| match e {
        AppError::Locked(DataDirLockError::InUse { pid, .. }) => LocalError::Locked {
            name: paths.name.clone(),
            pid,
            url: state::read(&paths.server_json()).map(|s| s.http.url),
        },
        e => LocalError::Failed(e.to_string()),
    })?;
    let companion = take_companion_lock(&paths, clock.clone())?;
    take_over_typescript_db(&config.db_path, clock.clone()).await?;
    let started_at = format_rfc3339_ms(clock.now_ms());
    let bound = BoundServer::bind_locked(config, clock, held)
        .await
        .map_err(|e| {
            if e.is_addr_in_use() {
                LocalError::AddrInUse(e.to_string())
            } else {
                LocalError::Failed(e.to_string())
            }
        })?;
    let addr = bound.addr();
    let info = state::ServerJson {
        version: 1,
        name: paths.name.clone(),
        pid: std::process::id(),
        started_at,
        http: state::Http {
            port: addr.port(),
            url: http_url(addr),
        },
        sqlite: state::Sqlite {
            path: bound.db_path().display().to_string(),
        },
    };
    state::write(&paths.server_json(), &info).map_err(io("cannot write", &paths.server_json()))?;
    let stop = shutdown_signal(daemon);
    announce(&ready_line(addr, bound.db_path(), Some(&paths.name)));
    let (served, held) = bound.serve_holding_lock(stop).await;
    // The lock is still held here, so no other server wrote this file in the meantime.
    let _ = std::fs::remove_file(paths.server_json());
    drop(companion);
    drop(held);
    served.map_err(|e: AppError| LocalError::Failed(e.to_string()))
}

/// Takes the original TypeScript server's lock too ([`companion_lock`]): refused while
/// that server (or another of ours) holds it.
fn take_companion_lock(
    paths: &ServerPaths,
    clock: SharedClock,
) -> Result<companion_lock::CompanionLock, LocalError> {
    companion_lock::CompanionLock::acquire(&paths.lock(), clock).map_err(|e| match e {
        companion_lock::CompanionLockError::Held { .. } => {
            let info = state::read(&paths.server_json());
            LocalError::Locked {
                name: paths.name.clone(),
                pid: info.as_ref().map(|s| s.pid),
                url: info.map(|s| s.http.url),
            }
        }
        e => LocalError::Failed(e.to_string()),
    })
}

/// Takes over a database the original TypeScript server wrote at `db_path`, if that is
/// what is there (see [`crate::engine::import_ts`]). Off the async workers: a large
/// database takes a while, and the lock refresh must keep running meanwhile.
async fn take_over_typescript_db(db_path: &Path, clock: SharedClock) -> Result<(), LocalError> {
    let path = db_path.to_path_buf();
    let done = tokio::task::spawn_blocking(move || {
        crate::engine::import_ts::take_over(&path, clock.as_ref())
    })
    .await
    .map_err(|e| LocalError::Failed(format!("database takeover failed: {e}")))?;
    match done {
        Ok(None) => Ok(()),
        Ok(Some(t)) => {
            tracing::warn!(
                version = t.version,
                streams = t.streams,
                entries = t.entries,
                backup = %t.backup.display(),
                "took over the TypeScript server's database; the original is kept as the backup"
            );
            for w in &t.warnings {
                tracing::warn!("{w}");
            }
            Ok(())
        }
        Err(e) => Err(LocalError::Failed(e.to_string())),
    }
}

/// What `status` reports about one name.
#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    pub name: String,
    pub data_dir: String,
    /// A process holds the name's lock.
    pub running: bool,
    /// `GET /health` answered 2xx within a second.
    pub healthy: bool,
    pub pid: Option<u32>,
    pub url: Option<String>,
    pub sqlite: Option<String>,
    /// Data exists for this name.
    pub exists: bool,
}

fn status_of(paths: &ServerPaths) -> Result<Status, LocalError> {
    let mut holder = lock::holder(&paths.lock()).map_err(io("cannot read", &paths.lock()))?;
    if holder.is_none()
        && companion_lock::is_held(
            &paths.lock(),
            crate::clock::Clock::now_ms(&crate::clock::SystemClock),
        )
    {
        // The original TypeScript server runs on this name.
        holder = Some(state::read(&paths.server_json()).map(|s| s.pid));
    }
    let info = holder
        .as_ref()
        .and_then(|_| state::read(&paths.server_json()));
    let healthy = info.as_ref().is_some_and(|i| health_ok(&i.http.url));
    Ok(Status {
        name: paths.name.clone(),
        data_dir: paths.dir.display().to_string(),
        running: holder.is_some(),
        healthy,
        pid: holder.flatten(),
        url: info.as_ref().map(|i| i.http.url.clone()),
        sqlite: paths
            .db()
            .exists()
            .then(|| paths.db().display().to_string()),
        exists: paths.dir.exists(),
    })
}

/// What `status` prints, and whether a server runs (the command exits 0 if one does and
/// 3 if none does, as `pg_ctl status`).
#[derive(Debug)]
pub struct StatusReport {
    pub text: String,
    pub running: bool,
}

/// The exit code of `status` when no server runs.
pub const STATUS_NOT_RUNNING: u8 = 3;

/// `status [--name N] [--json]`: whether the named server (or any server) runs.
pub fn status(env: &Env, name: Option<&str>, json: bool) -> Result<StatusReport, LocalError> {
    let (statuses, all) = statuses(env, name)?;
    let running = statuses.iter().any(|s| s.running);
    let text = if json {
        let v = if all {
            serde_json::to_string_pretty(&statuses)
        } else {
            serde_json::to_string_pretty(&statuses[0])
        };
        v.map_err(|e| LocalError::Failed(e.to_string()))?
    } else {
        describe(&statuses)
    };
    Ok(StatusReport { text, running })
}

fn statuses(env: &Env, name: Option<&str>) -> Result<(Vec<Status>, bool), LocalError> {
    let all = name.is_none();
    let statuses = if all {
        let root = local_data_root(env).map_err(|e| LocalError::Invalid(e.to_string()))?;
        let mut names: Vec<String> = match std::fs::read_dir(&root) {
            Ok(rd) => rd
                .filter_map(|e| e.ok())
                .filter(|e| e.path().is_dir())
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| normalize_name(Some(n)).is_ok())
                .collect(),
            Err(_) => Vec::new(),
        };
        names.sort();
        names
            .iter()
            .map(|n| status_of(&ServerPaths::new(&root, n)))
            .collect::<Result<Vec<_>, LocalError>>()?
    } else {
        vec![status_of(&server_paths(env, name)?)?]
    };
    Ok((statuses, all))
}

fn describe(statuses: &[Status]) -> String {
    if statuses.is_empty() {
        return "no local servers".into();
    }
    statuses
        .iter()
        .map(|s| match (s.running, &s.url) {
            (true, Some(url)) => format!(
                "{}: running (pid {}) at {url}{}",
                s.name,
                s.pid.map_or("?".into(), |p| p.to_string()),
                if s.healthy {
                    ""
                } else {
                    " (not answering /health)"
                }
            ),
            (true, None) => format!("{}: starting or stopping", s.name),
            (false, _) if s.exists => format!("{}: stopped (data in {})", s.name, s.data_dir),
            (false, _) => format!("{}: no such server", s.name),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// `stop [--name N]`: asks the server to stop and waits until its lock is released.
pub fn stop(env: &Env, name: Option<&str>) -> Result<String, LocalError> {
    let paths = server_paths(env, name)?;
    let lock_path = paths.lock();
    let Some(pid) = lock::holder(&lock_path).map_err(io("cannot read", &lock_path))? else {
        if companion_lock::is_held(
            &lock_path,
            crate::clock::Clock::now_ms(&crate::clock::SystemClock),
        ) {
            // Not ours to signal: the original runs inside its host process (`prisma dev`).
            let pid = state::read(&paths.server_json()).map(|s| s.pid);
            return Err(LocalError::Failed(format!(
                "{}: served by another server{} (the TypeScript one, which holds {}); stop it where it runs",
                paths.name,
                describe_holder(pid, None),
                companion_lock::dir_for(&lock_path).display()
            )));
        }
        return Ok(format!("{}: not running", paths.name));
    };
    let pid = pid.ok_or_else(|| {
        LocalError::Failed(format!(
            "{}: running, but its pid is unreadable",
            paths.name
        ))
    })?;
    signal(pid, false)?;
    let released = |timeout: Duration| {
        let deadline = crate::clock::monotonic() + timeout;
        while crate::clock::monotonic() < deadline {
            if matches!(lock::holder(&lock_path), Ok(None)) {
                return true;
            }
            crate::clock::sleep_blocking(Duration::from_millis(50));
        }
        false
    };
    if released(Duration::from_secs(10)) {
        return Ok(format!("{}: stopped (pid {pid})", paths.name));
    }
    signal(pid, true)?;
    if released(Duration::from_secs(5)) {
        Ok(format!("{}: killed after 10 s (pid {pid})", paths.name))
    } else {
        Err(LocalError::Failed(format!(
            "{}: pid {pid} did not stop",
            paths.name
        )))
    }
}

#[cfg(unix)]
#[allow(unsafe_code)] // a foreign call (see also `app::raise_open_files_limit`)
fn signal(pid: u32, kill: bool) -> Result<(), LocalError> {
    let sig = if kill { libc::SIGKILL } else { libc::SIGTERM };
    let pid =
        libc::pid_t::try_from(pid).map_err(|_| LocalError::Failed(format!("bad pid {pid}")))?;
    // SAFETY: kill(2) has no memory-safety preconditions.
    if unsafe { libc::kill(pid, sig) } == 0 {
        Ok(())
    } else {
        Err(LocalError::Failed(format!(
            "cannot signal pid {pid}: {}",
            std::io::Error::last_os_error()
        )))
    }
}

#[cfg(not(unix))]
fn signal(pid: u32, _kill: bool) -> Result<(), LocalError> {
    let status = std::process::Command::new("taskkill")
        .args(["/PID", &pid.to_string(), "/F"])
        .status()
        .map_err(|e| LocalError::Failed(format!("cannot run taskkill: {e}")))?;
    if status.success() {
        Ok(())
    } else {
        Err(LocalError::Failed(format!("taskkill failed for pid {pid}")))
    }
}

/// `reset [--name N]`: deletes a stopped server's data; refuses while it runs.
pub fn reset(env: &Env, name: Option<&str>) -> Result<String, LocalError> {
    let paths = server_paths(env, name)?;
    if !paths.dir.exists() {
        return Ok(format!("{}: nothing to reset", paths.name));
    }
    let held = lock::InstanceLock::acquire(&paths.lock()).map_err(|e| match e {
        lock::LockError::Held(pid) => LocalError::Locked {
            name: paths.name.clone(),
            pid,
            url: state::read(&paths.server_json()).map(|s| s.http.url),
        },
        lock::LockError::Io(e) => LocalError::Failed(format!("cannot lock: {e}")),
    })?;
    // The original TypeScript server's lock too: refused while it runs on this name.
    let clock: SharedClock = std::sync::Arc::new(crate::clock::SystemClock);
    let companion = take_companion_lock(&paths, clock)?;
    // Holding the locks, no server can start on this name while its files go.
    let entries = std::fs::read_dir(&paths.dir).map_err(io("cannot read", &paths.dir))?;
    for entry in entries.filter_map(|e| e.ok()) {
        let p: PathBuf = entry.path();
        if p == paths.lock() || p == companion.dir() {
            continue;
        }
        let r = if p.is_dir() {
            std::fs::remove_dir_all(&p)
        } else {
            std::fs::remove_file(&p)
        };
        r.map_err(io("cannot delete", &p))?;
    }
    drop(companion);
    drop(held);
    let _ = std::fs::remove_file(paths.lock());
    let _ = std::fs::remove_dir(&paths.dir);
    Ok(format!(
        "{}: data deleted ({})",
        paths.name,
        paths.dir.display()
    ))
}

/// `GET /health` within a second.
fn health_ok(url: &str) -> bool {
    let Some(hostport) = url.strip_prefix("http://") else {
        return false;
    };
    let Some(addr): Option<SocketAddr> = hostport.to_socket_addrs().ok().and_then(|mut a| a.next())
    else {
        return false;
    };
    let timeout = Duration::from_secs(1);
    let Ok(mut sock) = TcpStream::connect_timeout(&addr, timeout) else {
        return false;
    };
    let _ = sock.set_read_timeout(Some(timeout));
    let _ = sock.set_write_timeout(Some(timeout));
    let req = format!("GET /health HTTP/1.1\r\nHost: {hostport}\r\nConnection: close\r\n\r\n");
    if sock.write_all(req.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    sock.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.1 2")
}
