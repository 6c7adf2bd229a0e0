//! What is measured around a phase: wall time, the server's CPU time and memory from
//! /proc/<pid>, the client's own CPU time (getrusage), and latency percentiles.

use std::time::Instant;

/// CPU seconds (user + system, all threads) the process has used, from
/// `/proc/<pid>/stat` fields 14 and 15 (clock ticks).
pub fn proc_cpu_secs(pid: u32) -> Option<f64> {
    proc_cpu_split(pid).map(|c| c.total())
}

/// A process's CPU seconds, all threads, split into user space and the kernel.
#[derive(Clone, Copy, Debug, Default)]
pub struct CpuSplit {
    pub user: f64,
    pub system: f64,
}

impl CpuSplit {
    pub fn total(&self) -> f64 {
        self.user + self.system
    }

    /// What was used since the reading `earlier`.
    pub fn since(&self, earlier: CpuSplit) -> CpuSplit {
        CpuSplit {
            user: self.user - earlier.user,
            system: self.system - earlier.system,
        }
    }
}

/// [`CpuSplit`] from `/proc/<pid>/stat` fields 14 (utime) and 15 (stime).
pub fn proc_cpu_split(pid: u32) -> Option<CpuSplit> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces; fields after it are plain.
    let after = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = after.split_whitespace().collect();
    // after[0] is field 3 (state): utime is field 14, stime field 15.
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    Some(CpuSplit {
        user: utime as f64 / clk_tck(),
        system: stime as f64 / clk_tck(),
    })
}

fn clk_tck() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// The CPU of each thread of `pid`: (thread id, thread name, CPU), from
/// `/proc/<pid>/task/<tid>/{stat,comm}`.
pub fn proc_thread_cpu(pid: u32) -> Vec<(u32, String, CpuSplit)> {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in dir.flatten() {
        let Some(tid) = e.file_name().to_str().and_then(|t| t.parse::<u32>().ok()) else {
            continue;
        };
        let base = format!("/proc/{pid}/task/{tid}");
        let Ok(stat) = std::fs::read_to_string(format!("{base}/stat")) else {
            continue;
        };
        let Some(after) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            continue;
        };
        let f: Vec<&str> = after.split_whitespace().collect();
        let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        let name = std::fs::read_to_string(format!("{base}/comm")).unwrap_or_default();
        out.push((
            tid,
            name.trim().to_string(),
            CpuSplit {
                user: ticks(11) as f64 / clk_tck(),
                system: ticks(12) as f64 / clk_tck(),
            },
        ));
    }
    out
}

/// The CPU each thread name used between two [`proc_thread_cpu`] readings (threads of one
/// name summed; a thread that started in between counts from zero, one that ended is
/// missing), busiest first.
pub fn thread_cpu_between(
    before: &[(u32, String, CpuSplit)],
    after: &[(u32, String, CpuSplit)],
) -> Vec<(String, CpuSplit)> {
    let mut by_name = std::collections::BTreeMap::<&str, CpuSplit>::new();
    for (tid, name, now) in after {
        let was = before
            .iter()
            .find(|(t, _, _)| t == tid)
            .map_or(CpuSplit::default(), |(_, _, c)| *c);
        let used = now.since(was);
        let e = by_name.entry(name).or_default();
        e.user += used.user;
        e.system += used.system;
    }
    let mut busy: Vec<(String, CpuSplit)> = by_name
        .into_iter()
        .filter(|(_, c)| c.total() > 0.0)
        .map(|(n, c)| (n.to_string(), c))
        .collect();
    busy.sort_by(|x, y| y.1.total().total_cmp(&x.1.total()));
    busy
}

/// (VmRSS, VmHWM) in KiB from `/proc/<pid>/status`. VmHWM is the peak resident set
/// since the process started.
pub fn proc_mem_kb(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// CPU seconds (user + system) this process has used.
pub fn self_cpu_secs() -> f64 {
    // SAFETY: getrusage writes into the zeroed struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    if rc != 0 {
        return 0.0;
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// A point in time with the CPU counters of both sides.
#[derive(Clone)]
pub struct Snapshot {
    at: Instant,
    server_cpu: Option<CpuSplit>,
    server_threads: Vec<(u32, String, CpuSplit)>,
    client_cpu: f64,
}

impl Snapshot {
    pub fn take(server_pid: Option<u32>) -> Snapshot {
        Snapshot {
            at: Instant::now(),
            server_cpu: server_pid.and_then(proc_cpu_split),
            server_threads: server_pid.map(proc_thread_cpu).unwrap_or_default(),
            client_cpu: self_cpu_secs(),
        }
    }
}

/// One measured phase: `ops` operations between two snapshots.
#[derive(Clone, Debug)]
pub struct Phase {
    pub ops: u64,
    pub secs: f64,
    pub server_cpu_secs: Option<f64>,
    /// The user-space part of `server_cpu_secs` (the rest is the kernel's, for the
    /// server: system calls, TCP, `fsync`).
    pub server_user_cpu_secs: Option<f64>,
    /// The server's CPU by thread name, busiest first (see [`thread_cpu_between`]).
    pub server_threads: Vec<(String, CpuSplit)>,
    pub client_cpu_secs: f64,
}

impl Phase {
    pub fn between(a: Snapshot, b: Snapshot, ops: u64) -> Phase {
        let server_cpu = match (a.server_cpu, b.server_cpu) {
            (Some(x), Some(y)) => Some(y.since(x)),
            _ => None,
        };
        Phase {
            server_threads: thread_cpu_between(&a.server_threads, &b.server_threads),
            ops,
            secs: b.at.duration_since(a.at).as_secs_f64(),
            server_cpu_secs: server_cpu.map(|c| c.total()),
            server_user_cpu_secs: server_cpu.map(|c| c.user),
            client_cpu_secs: b.client_cpu - a.client_cpu,
        }
    }

    pub fn rate(&self) -> f64 {
        if self.secs > 0.0 {
            self.ops as f64 / self.secs
        } else {
            0.0
        }
    }

    /// Server CPU microseconds per operation.
    pub fn server_us_per_op(&self) -> Option<f64> {
        let c = self.server_cpu_secs?;
        (self.ops > 0).then(|| c * 1e6 / self.ops as f64)
    }

    /// The user-space part of [`Phase::server_us_per_op`].
    pub fn server_user_us_per_op(&self) -> Option<f64> {
        let c = self.server_user_cpu_secs?;
        (self.ops > 0).then(|| c * 1e6 / self.ops as f64)
    }

    /// Server CPU as a percentage of one core over the phase.
    pub fn server_cpu_pct(&self) -> Option<f64> {
        let c = self.server_cpu_secs?;
        (self.secs > 0.0).then(|| c * 100.0 / self.secs)
    }

    /// The client's CPU as a percentage of one core over the phase: near 100 means the
    /// client, not the server, may be the limit.
    pub fn client_cpu_pct(&self) -> f64 {
        if self.secs > 0.0 {
            self.client_cpu_secs * 100.0 / self.secs
        } else {
            0.0
        }
    }

    pub fn client_us_per_op(&self) -> Option<f64> {
        (self.ops > 0).then(|| self.client_cpu_secs * 1e6 / self.ops as f64)
    }
}

/// Latency samples in nanoseconds; percentiles by sorting (exact, and cheap at the
/// sample counts a run produces).
#[derive(Default)]
pub struct Samples(Vec<u64>);

impl Samples {
    pub fn push(&mut self, ns: u64) {
        self.0.push(ns);
    }

    pub fn extend(&mut self, other: Samples) {
        self.0.extend(other.0);
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The `q` quantile (0..=1) in milliseconds; None without samples.
    pub fn quantile_ms(&mut self, q: f64) -> Option<f64> {
        if self.0.is_empty() {
            return None;
        }
        self.0.sort_unstable();
        let n = self.0.len();
        let i = ((q * n as f64).ceil() as usize).clamp(1, n) - 1;
        Some(self.0[i] as f64 / 1e6)
    }

    /// (p50, p99, max) in milliseconds; None without samples.
    pub fn summary_ms(&mut self) -> Option<(f64, f64, f64)> {
        if self.0.is_empty() {
            return None;
        }
        self.0.sort_unstable();
        let n = self.0.len();
        let at = |q: f64| {
            let i = ((q * n as f64).ceil() as usize).clamp(1, n) - 1;
            self.0[i] as f64 / 1e6
        };
        Some((at(0.50), at(0.99), self.0[n - 1] as f64 / 1e6))
    }
}
