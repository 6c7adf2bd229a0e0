//! A scenario's result (a human block and one JSON line) and the markdown table that
//! `table` builds from many JSON lines.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::measure::{proc_mem_kb, Phase, Samples};

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Metric {
    pub key: String,
    pub label: String,
    pub value: f64,
    /// "higher" or "lower" is better; ratios are read accordingly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub better: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default)]
pub struct Report {
    pub label: String,
    pub scenario: String,
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default)]
    pub metrics: Vec<Metric>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// Which round of `compare.sh --rounds` the run belongs to (set by the script).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub round: Option<u32>,
}

impl Report {
    pub fn new(label: &str, scenario: &str) -> Report {
        Report {
            label: label.to_string(),
            scenario: scenario.to_string(),
            ok: true,
            ..Report::default()
        }
    }

    pub fn add(&mut self, key: &str, label: &str, value: f64, better: Option<&str>) {
        if value.is_finite() {
            self.metrics.push(Metric {
                key: key.to_string(),
                label: label.to_string(),
                value,
                better: better.map(str::to_string),
            });
        }
    }

    pub fn note(&mut self, s: impl Into<String>) {
        self.notes.push(s.into());
    }

    /// Rate, server CPU per operation and client CPU of one phase, keys prefixed by `p`;
    /// `what` names the operations in the plural, `one` a single one.
    pub fn phase(&mut self, p: &str, what: &str, one: &str, ph: &Phase) {
        self.add(
            &format!("{p}_per_s"),
            &format!("{what}/s"),
            ph.rate(),
            Some("higher"),
        );
        if let Some(us) = ph.server_us_per_op() {
            self.add(
                &format!("{p}_server_cpu_us"),
                &format!("server CPU µs per {one}"),
                us,
                Some("lower"),
            );
        }
        if let Some(us) = ph.server_user_us_per_op() {
            self.add(
                &format!("{p}_server_user_cpu_us"),
                &format!("server user-space CPU µs per {one}"),
                us,
                Some("lower"),
            );
        }
        self.thread_note(what, one, ph);
        if let Some(c) = ph.server_cpu_secs.filter(|c| *c < 0.2) {
            self.note(format!(
                "server CPU over the {what} phase was {:.0} ms; /proc counts 10 ms ticks, so its CPU figures are coarse",
                c * 1e3
            ));
        }
        if let Some(pct) = ph.server_cpu_pct() {
            self.add(
                &format!("{p}_server_cpu_pct"),
                &format!("server CPU % of a core ({what})"),
                pct,
                None,
            );
        }
        self.add(
            &format!("{p}_client_cpu_pct"),
            &format!("client CPU % of a core ({what})"),
            ph.client_cpu_pct(),
            None,
        );
    }

    /// A note with the server's CPU per operation by thread name, user space + kernel, for
    /// the threads with at least 2 % of the phase's server CPU: which part of the server
    /// (its HTTP side, its commit thread) the CPU per operation is spent in.
    fn thread_note(&mut self, what: &str, one: &str, ph: &Phase) {
        let total: f64 = ph.server_threads.iter().map(|(_, c)| c.total()).sum();
        if ph.ops == 0 || total <= 0.0 {
            return;
        }
        let us = |secs: f64| secs * 1e6 / ph.ops as f64;
        let parts: Vec<String> = ph
            .server_threads
            .iter()
            .filter(|(_, c)| c.total() >= total * 0.02)
            .map(|(n, c)| format!("{n} {} + {}", fmt_num(us(c.user)), fmt_num(us(c.system))))
            .collect();
        self.note(format!(
            "server CPU µs per {one} by thread over the {what} phase, user space + kernel (10 ms ticks): {}",
            parts.join(", ")
        ));
    }

    /// p50/p99/max of `s` in ms, keys prefixed by `p`.
    pub fn latency(&mut self, p: &str, what: &str, s: &mut Samples) {
        if let Some((p50, p99, max)) = s.summary_ms() {
            self.add(
                &format!("{p}_p50_ms"),
                &format!("{what} p50 ms"),
                p50,
                Some("lower"),
            );
            self.add(
                &format!("{p}_p99_ms"),
                &format!("{what} p99 ms"),
                p99,
                Some("lower"),
            );
            self.add(
                &format!("{p}_max_ms"),
                &format!("{what} max ms"),
                max,
                Some("lower"),
            );
        }
    }

    /// The server's current and peak resident memory.
    pub fn memory(&mut self, pid: Option<u32>) {
        let Some(pid) = pid else { return };
        match proc_mem_kb(pid) {
            Some((rss, hwm)) => {
                self.add(
                    "server_rss_mb",
                    "server RSS MB (end)",
                    rss as f64 / 1024.0,
                    Some("lower"),
                );
                self.add(
                    "server_peak_rss_mb",
                    "server peak RSS MB (VmHWM)",
                    hwm as f64 / 1024.0,
                    Some("lower"),
                );
            }
            None => self.note(format!("server pid {pid} not readable in /proc (exited?)")),
        }
    }

    pub fn human(&self, target: &str) -> String {
        let mut s = String::new();
        let status = if self.ok { "ok" } else { "FAILED" };
        let _ = writeln!(
            s,
            "== {} @ {} ({target}): {status}",
            self.scenario, self.label
        );
        if let Some(e) = &self.error {
            let _ = writeln!(s, "   error: {e}");
        }
        for m in &self.metrics {
            let _ = writeln!(s, "   {:<44} {:>12}", m.label, fmt_num(m.value));
        }
        for n in &self.notes {
            let _ = writeln!(s, "   note: {n}");
        }
        s
    }
}

pub fn fmt_num(v: f64) -> String {
    let a = v.abs();
    if a >= 1000.0 {
        let s = format!("{:.0}", v);
        // thousands separators
        let (sign, digits) = s.strip_prefix('-').map_or(("", s.as_str()), |d| ("-", d));
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(c);
        }
        format!("{sign}{out}")
    } else if a >= 100.0 || (v.fract() == 0.0 && a > 0.0) {
        format!("{:.0}", v)
    } else if a >= 10.0 {
        format!("{:.1}", v)
    } else if a >= 1.0 {
        format!("{:.2}", v)
    } else {
        format!("{:.3}", v)
    }
}

/// The median of `v` (the mean of the middle two for an even count); `None` if empty.
fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

/// " (round N)" for a run of a round, else nothing.
fn round_of(r: &Report) -> String {
    r.round.map(|n| format!(" (round {n})")).unwrap_or_default()
}

/// The value of metric `key` in a successful run.
fn metric(r: &Report, key: &str) -> Option<f64> {
    r.metrics.iter().find(|m| m.key == key).map(|m| m.value)
}

/// A markdown table: one row per (scenario, metric), one column per server label, every
/// cell after the baseline's with its ratio to the baseline.
///
/// With several runs of a (server, scenario) pair (the rounds of `compare.sh --rounds`),
/// a cell is the median of its successful runs and its ratio the ratio of the medians;
/// the range of the ratios within each round (runs with the same `round`, which ran next
/// to each other) follows, so the spread of a noisy machine shows in the table.
pub fn table(lines: &[Report], baseline: Option<&str>) -> String {
    let mut labels: Vec<String> = Vec::new();
    let mut scenarios: Vec<String> = Vec::new();
    for r in lines {
        if !labels.contains(&r.label) {
            labels.push(r.label.clone());
        }
        if r.scenario != "*" && !scenarios.contains(&r.scenario) {
            scenarios.push(r.scenario.clone());
        }
    }
    let baseline = baseline
        .map(str::to_string)
        .or_else(|| labels.first().cloned())
        .unwrap_or_default();
    // Baseline first.
    if let Some(i) = labels.iter().position(|l| *l == baseline) {
        let b = labels.remove(i);
        labels.insert(0, b);
    }
    // (label, scenario) → its runs; "*" marks a server that never ran.
    let mut by: BTreeMap<(String, String), Vec<&Report>> = BTreeMap::new();
    for r in lines {
        by.entry((r.label.clone(), r.scenario.clone()))
            .or_default()
            .push(r);
    }
    let runs = |label: &str, scenario: &str| -> &[&Report] {
        by.get(&(label.to_string(), scenario.to_string()))
            .map_or(&[], Vec::as_slice)
    };
    // The median of a metric over a pair's successful runs.
    let value = |label: &str, scenario: &str, key: &str| -> Option<f64> {
        let ok = runs(label, scenario).iter().filter(|r| r.ok);
        median(ok.filter_map(|r| metric(r, key)).collect())
    };
    // Why a pair has no successful run, if it has none.
    let cell_failure = |label: &str, scenario: &str| -> Option<String> {
        let mut all = runs(label, scenario).to_vec();
        if all.is_empty() {
            all = runs(label, "*").to_vec();
        }
        if all.is_empty() || all.iter().any(|r| r.ok) {
            return None;
        }
        let e = all[0].error.clone().unwrap_or_else(|| "failed".into());
        let e: String = e.chars().take(70).collect();
        Some(format!("**failed**: {}", e.replace('|', "/")))
    };
    // The lowest and highest ratio to the baseline among the rounds both ran.
    let round_ratios = |label: &str, scenario: &str, key: &str| -> Option<(f64, f64)> {
        let base: BTreeMap<u32, f64> = runs(&baseline, scenario)
            .iter()
            .filter(|r| r.ok)
            .filter_map(|r| Some((r.round?, metric(r, key)?)))
            .collect();
        let ratios: Vec<f64> = runs(label, scenario)
            .iter()
            .filter(|r| r.ok)
            .filter_map(|r| {
                let b = *base.get(&r.round?)?;
                let v = metric(r, key)?;
                (b != 0.0).then_some(v / b)
            })
            .collect();
        if ratios.len() < 2 {
            return None;
        }
        let lo = ratios.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = ratios.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        Some((lo, hi))
    };

    let mut out = String::new();
    let _ = write!(out, "| scenario | metric |");
    for l in &labels {
        let _ = write!(out, " {l} |");
    }
    out.push('\n');
    let _ = write!(out, "|---|---|");
    for _ in &labels {
        out.push_str("---:|");
    }
    out.push('\n');
    for sc in &scenarios {
        // Metric order: first appearance over all servers and runs.
        let mut keys: Vec<(String, String, bool)> = Vec::new();
        for l in &labels {
            for r in runs(l, sc) {
                for m in &r.metrics {
                    if !keys.iter().any(|(k, _, _)| *k == m.key) {
                        keys.push((m.key.clone(), m.label.clone(), m.better.is_some()));
                    }
                }
            }
        }
        if keys.is_empty() {
            keys.push(("-".into(), "-".into(), false));
        }
        for (i, (key, mlabel, rated)) in keys.iter().enumerate() {
            let _ = write!(
                out,
                "| {} | {} |",
                if i == 0 { sc.as_str() } else { "" },
                mlabel
            );
            let base = value(&baseline, sc, key);
            for l in &labels {
                let failure = cell_failure(l, sc);
                let cell = match (value(l, sc, key), failure) {
                    (None, Some(f)) if i == 0 => f,
                    (None, _) => "—".to_string(),
                    (Some(v), _) => {
                        let mut c = fmt_num(v);
                        if *l != baseline && *rated {
                            if let Some(b) = base.filter(|b| *b != 0.0) {
                                let _ = write!(c, " ({:.2}×", v / b);
                                if let Some((lo, hi)) = round_ratios(l, sc, key) {
                                    let _ = write!(c, "; {lo:.2}–{hi:.2}");
                                }
                                c.push(')');
                            }
                        }
                        let all = runs(l, sc);
                        let ok = all.iter().filter(|r| r.ok).count();
                        if i == 0 && ok < all.len() {
                            let _ = write!(c, " ({ok} of {} runs ok)", all.len());
                        }
                        c
                    }
                };
                let _ = write!(out, " {cell} |");
            }
            out.push('\n');
        }
    }
    // Failures in full, so nothing is silently dropped.
    let failed: Vec<&&Report> = by.values().flatten().filter(|r| !r.ok).collect();
    if !failed.is_empty() {
        out.push_str("\nFailures:\n\n");
        for r in failed {
            let _ = writeln!(
                out,
                "- {} / {}{}: {}",
                r.label,
                r.scenario,
                round_of(r),
                r.error.as_deref().unwrap_or("failed")
            );
        }
    }
    let notes: Vec<&&Report> = by
        .values()
        .flatten()
        .filter(|r| !r.notes.is_empty())
        .collect();
    if !notes.is_empty() {
        out.push_str("\nNotes:\n\n");
        for r in notes {
            for n in &r.notes {
                let _ = writeln!(out, "- {} / {}{}: {}", r.label, r.scenario, round_of(r), n);
            }
        }
    }
    out
}
