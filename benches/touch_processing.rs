//! Server CPU of live-query touch processing alone, per change: what the touch processor
//! does for each committed State Protocol record, without HTTP, SQLite or waits.
//!
//! ```sh
//! cargo bench --bench touch_processing            # 200,000 updates, 1 template
//! cargo bench --bench touch_processing -- 1000000 4
//! ```
//!
//! Per change: parse the JSON record, validate it as State Protocol, derive the table key
//! and the fine keys of each template of the entity (watch, membership, projected-field),
//! and add them to the journal; a bucket is flushed every 1,000 changes, as the journal
//! would every coalescing window at 10,000–100,000 changes/s. Records are updates of
//! 1,000 rows that change one non-template field, with `old_value`, as `@prisma/dev`
//! writes them. The `touch` scenario in `benches/touch.sh` measures the whole path
//! (append, processing, woken and re-issued waits); this isolates the processing that
//! the issue's goal (≤ 10 µs per change) is about.
#![allow(clippy::disallowed_methods, clippy::unwrap_used, clippy::print_stdout)] // a benchmark: real time, unwrap on failure, report on stdout

use std::sync::Arc;
use std::time::Instant;

use prisma_streams::clock::SystemClock;
use prisma_streams::profiles::state_protocol::{validate_state_protocol, StateRecord};
use prisma_streams::profiles::touch::OnMissingBefore;
use prisma_streams::touch::derive::{fine_keys, ActiveTemplate, TemplateField};
use prisma_streams::touch::journal::{JournalConfig, TouchJournal};
use prisma_streams::touch::keys::{self, Encoding};
use serde_json::json;

fn main() {
    let mut args = std::env::args().skip(1).filter(|a| !a.starts_with("--"));
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(200_000);
    let templates: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1);
    let entity = "public.todos";
    // Templates over distinct fields: `id`, then `tenant0`, `tenant1`, ...
    let tpls: Vec<ActiveTemplate> = (0..templates)
        .map(|t| {
            let name = if t == 0 {
                "id".to_string()
            } else {
                format!("tenant{}", t - 1)
            };
            ActiveTemplate::new(
                entity,
                vec![TemplateField {
                    name,
                    encoding: Encoding::String,
                }],
            )
        })
        .collect();
    let records: Vec<Vec<u8>> = (0..n)
        .map(|i| {
            let row = i % 1000;
            let mut before = json!({"id": row.to_string(), "title": "a todo", "n": i});
            for t in 0..templates.saturating_sub(1) {
                before[format!("tenant{t}")] = json!(format!("t{}", row % 7));
            }
            let mut after = before.clone();
            after["n"] = json!(i + 1);
            json!({"type": entity, "key": row.to_string(), "value": after, "old_value": before,
                "headers": {"operation": "update", "timestamp": "2026-01-02T03:04:05.678Z"}})
            .to_string()
            .into_bytes()
        })
        .collect();
    let journal = Arc::new(TouchJournal::new(
        &JournalConfig::default(),
        Arc::new(SystemClock),
    ));

    let run = |records: &[Vec<u8>]| -> usize {
        let mut touched = 0;
        let mut batch = Vec::with_capacity(4 * (templates + 1));
        for (pos, data) in records.iter().enumerate() {
            let v: serde_json::Value = serde_json::from_slice(data).unwrap();
            let StateRecord::Change(change) = validate_state_protocol(&v).unwrap() else {
                continue;
            };
            let table = keys::table_key(&change.entity);
            batch.clear();
            batch.push((keys::key_id(table), Some(table), pos as u64));
            for t in &tpls {
                for k in fine_keys(&change, t, OnMissingBefore::Coarse).unwrap() {
                    batch.push((k.id(), Some(k.key), pos as u64));
                }
            }
            touched += batch.len();
            journal.touch_all(batch.iter().copied());
            if pos % 1000 == 999 {
                journal.flush_now();
            }
        }
        touched
    };

    // Warm-up, then the measured pass.
    run(&records[..records.len().min(20_000)]);
    let cpu0 = cpu_seconds();
    let t0 = Instant::now();
    let touched = run(&records);
    let wall = t0.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    println!(
        "touch processing: {n} changes, {templates} template(s), {:.2} keys per change",
        touched as f64 / n as f64
    );
    println!(
        "  wall {:.3} s, {:.2} µs per change; process CPU {:.2} µs per change",
        wall,
        wall * 1e6 / n as f64,
        cpu * 1e6 / n as f64
    );
}

/// User + system CPU of this process (Linux `/proc/self/stat`; 0 elsewhere).
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|x| x.parse::<f64>().ok()).unwrap_or(0.0);
    // Fields after the command: state is 0, utime 11, stime 12 (clock ticks of 10 ms).
    (ticks(11) + ticks(12)) / 100.0
}
