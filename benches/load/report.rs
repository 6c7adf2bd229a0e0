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

/// A markdown table: one row per (scenario, metric), one column per server label, every
/// cell after the baseline's with its ratio to the baseline.
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
    // (label, scenario) → report; "*" marks a server that never ran.
    let mut by: BTreeMap<(String, String), &Report> = BTreeMap::new();
    for r in lines {
        by.insert((r.label.clone(), r.scenario.clone()), r);
    }
    let cell_failure = |label: &str, scenario: &str| -> Option<String> {
        let r = by
            .get(&(label.to_string(), scenario.to_string()))
            .or_else(|| by.get(&(label.to_string(), "*".to_string())))?;
        if r.ok {
            return None;
        }
        let e = r.error.clone().unwrap_or_else(|| "failed".into());
        let e: String = e.chars().take(70).collect();
        Some(format!("**failed**: {}", e.replace('|', "/")))
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
        // Metric order: first appearance over all servers.
        let mut keys: Vec<(String, String)> = Vec::new();
        for l in &labels {
            if let Some(r) = by.get(&(l.clone(), sc.clone())) {
                for m in &r.metrics {
                    if !keys.iter().any(|(k, _)| *k == m.key) {
                        keys.push((m.key.clone(), m.label.clone()));
                    }
                }
            }
        }
        if keys.is_empty() {
            keys.push(("-".into(), "-".into()));
        }
        for (i, (key, mlabel)) in keys.iter().enumerate() {
            let _ = write!(
                out,
                "| {} | {} |",
                if i == 0 { sc.as_str() } else { "" },
                mlabel
            );
            let base = by
                .get(&(baseline.clone(), sc.clone()))
                .and_then(|r| r.metrics.iter().find(|m| m.key == *key))
                .map(|m| m.value);
            for l in &labels {
                let r = by.get(&(l.clone(), sc.clone()));
                let m = r.and_then(|r| r.metrics.iter().find(|m| m.key == *key));
                let cell = match (m, cell_failure(l, sc)) {
                    (None, Some(f)) if i == 0 => f,
                    (None, _) => "—".to_string(),
                    (Some(m), f) => {
                        let mut c = fmt_num(m.value);
                        if *l != baseline && m.better.is_some() {
                            if let Some(b) = base.filter(|b| *b != 0.0) {
                                let _ = write!(c, " ({:.2}×)", m.value / b);
                            }
                        }
                        if f.is_some() && i == 0 {
                            c.push_str(" (run failed)");
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
    let failed: Vec<&&Report> = by.values().filter(|r| !r.ok).collect();
    if !failed.is_empty() {
        out.push_str("\nFailures:\n\n");
        for r in failed {
            let _ = writeln!(
                out,
                "- {} / {}: {}",
                r.label,
                r.scenario,
                r.error.as_deref().unwrap_or("failed")
            );
        }
    }
    let notes: Vec<&&Report> = by.values().filter(|r| !r.notes.is_empty()).collect();
    if !notes.is_empty() {
        out.push_str("\nNotes:\n\n");
        for r in notes {
            for n in &r.notes {
                let _ = writeln!(out, "- {} / {}: {}", r.label, r.scenario, n);
            }
        }
    }
    out
}
