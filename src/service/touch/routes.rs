//! `touch/meta`, `touch/wait` and `touch/templates/activate`: the service side of the
//! live-query routes. Bodies arrive parsed (`protocol::touch`); answers are JSON values in
//! the original's shapes (field order included).
//!
//! A wait registers its hot interest for exactly as long as it runs: the registration is
//! a guard owned by the wait's future, so a client that goes away (the HTTP layer drops
//! the future) stops counting at once.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Map, Value};

use super::StreamTouch;
use crate::engine::StreamMeta;
use crate::engine::{Activation, TemplateDef, TemplatesError};
use crate::profiles::js;
use crate::profiles::touch::TouchConfig;
use crate::protocol::offset::Offset;
use crate::protocol::touch::{
    parse_cursor, ActivateRequest, InterestMode, MetaQuery, TemplateDecl, WaitFrom, WaitRequest,
};
use crate::service::{ServiceError, ServiceResult, StreamService};
use crate::touch::hot::Registration;
use crate::touch::journal::{TouchHit, WaitOutcome};
use crate::touch::keys;
use crate::touch::plan::TouchMode;

/// How often `touch/meta?settle=flush` looks again.
const SETTLE_POLL: Duration = Duration::from_millis(25);

/// Which keys a wait ended up waiting on (`effectiveWaitKind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WaitKind {
    Fine,
    Template,
    Table,
}

impl WaitKind {
    fn as_str(self) -> &'static str {
        match self {
            WaitKind::Fine => "fineKey",
            WaitKind::Template => "templateKey",
            WaitKind::Table => "tableKey",
        }
    }
}

/// A wait's hot-interest registration, ended when dropped.
struct HotGuard {
    st: Arc<StreamTouch>,
    reg: Option<Registration>,
    clock: crate::clock::SharedClock,
}

impl Drop for HotGuard {
    fn drop(&mut self) {
        if let Some(reg) = self.reg.take() {
            let now = self.clock.now_ms();
            self.st.lock().hot.end(reg, now, &self.st.hot_limits);
        }
    }
}

fn dedup<T: PartialEq + Copy>(items: impl IntoIterator<Item = T>) -> Vec<T> {
    let mut out = Vec::new();
    for i in items {
        if !out.contains(&i) {
            out.push(i);
        }
    }
    out
}

fn hit_fields(hit: &TouchHit) -> (String, i64, i64) {
    (
        hit.bucket_max_source_pos
            .map_or_else(|| "-1".to_string(), |p| p.to_string()),
        hit.flush_at_ms,
        hit.bucket_start_ms,
    )
}

impl StreamService {
    /// Fails as every touch route does for a stream that is missing, deleted, expired or
    /// without touch (404).
    pub async fn touch_enabled(&self, name: &str) -> ServiceResult<()> {
        self.touch_stream(name).await.map(|_| ())
    }

    /// The live stream `name` with touch enabled, and its touch state.
    async fn touch_stream(
        &self,
        name: &str,
    ) -> ServiceResult<(StreamMeta, TouchConfig, Arc<StreamTouch>)> {
        let meta = match self.live(name).await {
            Err(ServiceError::Gone) => {
                return Err(ServiceError::NotFound("stream not found".into()))
            }
            other => other?,
        };
        let settings = self.settings(&meta).await?;
        let Some(cfg) = settings.profile.touch_config().cloned() else {
            return Err(ServiceError::NotFound("touch not enabled".into()));
        };
        let st = self.touch().stream(&meta, &cfg, meta.tail.next_pos);
        Ok((meta, cfg, st))
    }

    /// Activates `decls` with the stream's caps and rate limit.
    async fn activate(
        &self,
        meta: &StreamMeta,
        cfg: &TouchConfig,
        st: &StreamTouch,
        decls: &[TemplateDecl],
        ttl_ms: Option<u64>,
    ) -> ServiceResult<Activation> {
        let defs = decls
            .iter()
            .map(|d| {
                let fields: Vec<(String, String)> = d
                    .fields
                    .iter()
                    .map(|f| {
                        // A non-string encoding can never be valid: activation denies it.
                        let enc = f.encoding.as_str().unwrap_or("").to_string();
                        (f.name.clone(), enc)
                    })
                    .collect();
                TemplateDef::new(&d.entity, &fields, |e, names| keys::template_id(e, names))
            })
            .collect();
        let ttl = ttl_ms.unwrap_or_else(|| {
            let d = cfg.templates.default_inactivity_ttl_ms;
            if d.is_finite() && d > 0.0 {
                d.floor() as u64
            } else {
                0
            }
        });
        let name = meta.name.clone().unwrap_or_default();
        let res = self
            .engine
            .activate_templates(
                &name,
                defs,
                ttl,
                &cfg.templates,
                self.touch().limiter.clone(),
            )
            .await
            .map_err(|e| match e {
                TemplatesError::NotFound => ServiceError::NotFound("stream not found".into()),
                TemplatesError::Engine(e) => e.into(),
            })?;
        // The processor reloads the templates before its next batch.
        st.lock().templates = None;
        Ok(res)
    }

    /// `POST …/touch/templates/activate`.
    pub async fn touch_activate(&self, name: &str, body: &[u8]) -> ServiceResult<Value> {
        let (meta, cfg, st) = self.touch_stream(name).await?;
        let req = ActivateRequest::parse(body).map_err(ServiceError::BadRequest)?;
        let from_cursor = st.journal.cursor().to_string();
        let res = self
            .activate(&meta, &cfg, &st, &req.templates, req.inactivity_ttl_ms)
            .await?;
        let activated: Vec<Value> = res
            .activated
            .iter()
            .map(|a| {
                json!({
                    "templateId": keys::hex16(a.id),
                    "state": "active",
                    "activeFromTouchOffset": from_cursor,
                })
            })
            .collect();
        let denied: Vec<Value> = res
            .denied
            .iter()
            .map(|d| json!({ "templateId": keys::hex16(d.id), "reason": d.reason.as_str() }))
            .collect();
        Ok(json!({
            "activated": activated,
            "denied": denied,
            "limits": {
                "maxActiveTemplatesPerStream": js::number_value(res.limits.max_active_templates_per_stream),
                "maxActiveTemplatesPerEntity": js::number_value(res.limits.max_active_templates_per_entity),
            },
        }))
    }

    /// `GET …/touch/meta`, waiting with `settle=flush` until nothing is pending and the
    /// processor has caught up (or the timeout).
    pub async fn touch_meta(
        &self,
        name: &str,
        settle: Option<&str>,
        timeout_ms: Option<&str>,
    ) -> ServiceResult<Value> {
        let (_, _, st) = self.touch_stream(name).await?;
        let q = MetaQuery::parse(settle, timeout_ms).map_err(ServiceError::BadRequest)?;
        let deadline = crate::clock::now() + Duration::from_millis(q.timeout_ms);
        loop {
            let (body, settled) = self.meta_body(name, &st).await?;
            if !q.settle || settled || crate::clock::now() >= deadline {
                return Ok(body);
            }
            let left = deadline.saturating_duration_since(crate::clock::now());
            crate::clock::sleep(left.min(SETTLE_POLL)).await;
        }
    }

    async fn meta_body(&self, name: &str, st: &Arc<StreamTouch>) -> ServiceResult<(Value, bool)> {
        let tail = self.live(name).await?.tail.next_pos;
        // The processor's cached list (reloaded after activations and retirements): a
        // settle poll every 25 ms reads no SQLite.
        let active_templates = self.touch().templates(st).await?.len();
        // The journal is read under the state lock, which the processor holds while it
        // touches the journal and advances its position: one consistent snapshot.
        let s = st.lock();
        let j = st.journal.meta();
        let caught_up = s.next_pos.is_none_or(|n| n >= tail);
        let settled = j.pending_keys == 0 && caught_up;
        let hot = s.hot.counts();
        let lag = if hot.fine_demand() {
            s.next_pos.map_or(0, |n| tail.saturating_sub(n))
        } else {
            0
        };
        let t = &s.totals;
        let c = &j.counters;
        let mut m = Map::new();
        let mut put = |k: &str, v: Value| {
            m.insert(k.to_string(), v);
        };
        put("mode", json!(j.mode));
        put("cursor", json!(j.cursor));
        put("epoch", json!(j.epoch));
        put("generation", json!(j.generation));
        put("bucketMs", json!(j.bucket_ms));
        put("coalesceMs", json!(j.coalesce_ms));
        put("filterSize", json!(j.filter_size));
        put("k", json!(j.k));
        put("pendingKeys", json!(j.pending_keys));
        put("overflowBuckets", json!(j.overflow_buckets));
        put("activeWaiters", json!(j.active_waiters));
        put(
            "bucketMaxSourceOffsetSeq",
            json!(j.bucket_max_source_offset_seq),
        );
        put("lastFlushAtMs", json!(j.last_flush_at_ms));
        put(
            "flushIntervalMsMaxLast10s",
            json!(j.flush_interval_ms_max_last10s),
        );
        put(
            "flushIntervalMsP95Last10s",
            json!(j.flush_interval_ms_p95_last10s),
        );
        put("settled", json!(settled));
        put(
            "coarseIntervalMs",
            js::number_value(st.cfg.coarse_interval_ms),
        );
        put(
            "touchCoalesceWindowMs",
            js::number_value(st.cfg.touch_coalesce_window_ms),
        );
        put("activeTemplates", json!(active_templates));
        put("lagSourceOffsets", json!(lag));
        put("touchMode", json!(s.mode.as_str()));
        put(
            "walScannedThrough",
            // Where processing stands: before the first commit it sees, the processor
            // starts at the tail (no backfill), as the original's initial position does.
            json!(Offset::at(s.next_pos.unwrap_or(tail)).encode()),
        );
        put("hotFineKeys", json!(hot.keys()));
        put("hotTemplates", json!(hot.templates()));
        put("hotFineKeysActive", json!(hot.keys_active));
        put("hotFineKeysGrace", json!(hot.keys_grace));
        put("hotTemplatesActive", json!(hot.templates_active));
        put("hotTemplatesGrace", json!(hot.templates_grace));
        put("fineWaitersActive", json!(hot.fine_waiters));
        put("coarseWaitersActive", json!(hot.coarse_waiters));
        put("broadFineWaitersActive", json!(hot.broad_fine_waiters));
        put("hotKeyFilteringEnabled", json!(hot.key_filtering));
        put("hotTemplateFilteringEnabled", json!(hot.template_filtering));
        put("scanRowsTotal", json!(t.scan_rows));
        put("scanBatchesTotal", json!(t.scan_batches));
        put(
            "scannedButEmitted0BatchesTotal",
            json!(t.scanned_but_emitted0_batches),
        );
        put("processedThroughDeltaTotal", json!(t.processed_delta));
        put("touchesEmittedTotal", json!(t.touches_emitted));
        put("touchesTableTotal", json!(t.touches_table));
        put("touchesTemplateTotal", json!(t.touches_template));
        put(
            "fineTouchesDroppedDueToBudgetTotal",
            json!(t.fine_dropped_budget),
        );
        put(
            "fineTouchesSkippedColdTemplateTotal",
            json!(t.fine_skipped_cold_template),
        );
        put(
            "fineTouchesSkippedColdKeyTotal",
            json!(t.fine_skipped_cold_key),
        );
        put(
            "fineTouchesSkippedTemplateBucketTotal",
            json!(t.fine_skipped_template_bucket),
        );
        put("waitTouchedTotal", json!(t.wait_touched));
        put("waitTimeoutTotal", json!(t.wait_timeout));
        put("waitStaleTotal", json!(t.wait_stale));
        put("journalFlushesTotal", json!(c.flushes));
        put("journalNotifyWakeupsTotal", json!(c.notify_wakeups));
        put("journalNotifyWakeMsTotal", json!(c.notify_wake_ms_total));
        put("journalNotifyWakeMsMax", json!(c.notify_wake_ms_max));
        put("journalTimeoutsFiredTotal", json!(c.timeouts_fired));
        // No timer sweep: each waiter's deadline is its own tokio timer.
        put("journalTimeoutSweepMsTotal", json!(0));
        // Ours: changes the onMissingBefore=error policy refused (the original stalls).
        put("processorErrorsTotal", json!(t.processor_errors));
        Ok((Value::Object(m), settled))
    }

    /// `POST …/touch/wait`. Everything that can refuse the request is checked, in the
    /// original's order, before the wait heartbeats or declares templates.
    pub async fn touch_wait(&self, name: &str, body: &[u8]) -> ServiceResult<Value> {
        let (meta, cfg, st) = self.touch_stream(name).await?;
        let req = WaitRequest::parse(body).map_err(ServiceError::BadRequest)?;
        let clock = self.engine.clock().clone();
        let fine = req.interest == InterestMode::Fine;
        let templates_used: Vec<u64> = dedup(
            req.template_ids_used
                .iter()
                .filter_map(|t| keys::parse_hex16(t)),
        );
        let mode = st.lock().planner.mode_for_fine_wait(&cfg);
        let mut kind = match (fine, mode) {
            (false, _) => WaitKind::Table,
            (true, TouchMode::Restricted) if !templates_used.is_empty() => WaitKind::Template,
            (true, TouchMode::CoarseOnly) if !templates_used.is_empty() => WaitKind::Table,
            _ => WaitKind::Fine,
        };
        if req.exact && (!fine || kind != WaitKind::Fine) {
            return Err(ServiceError::BadRequest(
                "wait.exact requires fine interest while runtime is in fine-key mode".into(),
            ));
        }
        let exact = if req.exact {
            match req.exact_keys() {
                Some(k) => Some(k),
                None => {
                    return Err(ServiceError::BadRequest(
                        "wait.exact requires 1 to 16 literal 64-bit routing keys".into(),
                    ))
                }
            }
        } else {
            None
        };
        let Some(cursor) = parse_cursor(&req.cursor) else {
            return Err(ServiceError::BadRequest(
                "wait.cursor must be in the form <epochHex>:<generation> or 'now'".into(),
            ));
        };

        if fine && !templates_used.is_empty() {
            self.touch()
                .heartbeats
                .mark(st.id, &templates_used, clock.now_ms());
        }
        if !req.declare.is_empty() {
            self.activate(&meta, &cfg, &st, &req.declare, req.inactivity_ttl_ms)
                .await?;
        }

        let raw: Vec<u32> = if req.key_ids.is_empty() {
            dedup(req.keys.iter().map(|k| keys::key_id_of_client_string(k)))
        } else {
            req.key_ids.clone()
        };
        let template_wait: Vec<u32> = dedup(
            templates_used
                .iter()
                .map(|&t| keys::key_id(keys::template_key(t))),
        );
        let mut wait_ids = match kind {
            WaitKind::Template => template_wait.clone(),
            WaitKind::Table if !templates_used.is_empty() => {
                // After the declaration: templates declared by this wait count.
                let live = self.touch().templates(&st).await?;
                dedup(
                    live.iter()
                        .filter(|t| templates_used.contains(&t.template.id))
                        .map(|t| keys::key_id(keys::table_key(&t.template.entity))),
                )
            }
            _ => raw.clone(),
        };
        let fine_with_templates = fine && kind == WaitKind::Fine && !template_wait.is_empty();
        if fine_with_templates && exact.is_none() {
            wait_ids = dedup(wait_ids.into_iter().chain(template_wait.iter().copied()));
        }
        if wait_ids.is_empty() {
            wait_ids = raw.clone();
            kind = WaitKind::Fine;
        }

        let hot_ids = if fine { &raw } else { &wait_ids };
        let reg = {
            let now = clock.now_ms();
            let mut s = st.lock();
            let tpl: &[u64] = if fine { &templates_used } else { &[] };
            s.hot.begin(fine, hot_ids, tpl, now, &st.hot_limits)
        };
        let _guard = HotGuard {
            st: st.clone(),
            reg: Some(reg),
            clock: clock.clone(),
        };

        let journal = &st.journal;
        let since = match cursor {
            WaitFrom::Now => journal.generation(),
            WaitFrom::Cursor(c) if c.epoch != journal.epoch() => {
                st.lock().totals.wait_stale += 1;
                let (seq, flush, start) = hit_fields(&journal.last_flush());
                return Ok(json!({
                    "stale": true,
                    "cursor": journal.cursor().to_string(),
                    "epoch": journal.epoch().to_string(),
                    "generation": journal.generation(),
                    "effectiveWaitKind": kind.as_str(),
                    "bucketMaxSourceOffsetSeq": seq,
                    "flushAtMs": flush,
                    "bucketStartMs": start,
                    "error": {
                        "code": "stale",
                        "message": "cursor epoch mismatch; rerun/re-subscribe and start from cursor",
                    },
                }));
            }
            WaitFrom::Cursor(c) => c.generation.min(journal.generation()),
        };
        // A wait that may block holds a live-reader slot (DS_MAX_LIVE_READERS), as
        // long-polls do: open waits are bounded, beyond that 503.
        let _slot = match req.timeout_ms {
            0 => None,
            _ => Some(
                self.live_slots
                    .clone()
                    .try_acquire_owned()
                    .map_err(|_| ServiceError::TooManyReaders)?,
            ),
        };
        let deadline = crate::clock::now() + Duration::from_millis(req.timeout_ms);
        let outcome = match &exact {
            Some(exact) => {
                let fallback: &[u32] = if fine_with_templates {
                    &template_wait
                } else {
                    &[]
                };
                journal.wait(fallback, Some(exact), since, deadline).await
            }
            None => journal.wait(&wait_ids, None, since, deadline).await,
        };
        let (touched, hit) = match outcome {
            WaitOutcome::Touched(hit) => (true, hit),
            WaitOutcome::TimedOut => (false, journal.last_flush()),
        };
        {
            let mut s = st.lock();
            if touched {
                s.totals.wait_touched += 1;
            } else {
                s.totals.wait_timeout += 1;
            }
        }
        let (seq, flush, start) = hit_fields(&hit);
        Ok(json!({
            "touched": touched,
            "cursor": journal.cursor().to_string(),
            "effectiveWaitKind": kind.as_str(),
            "bucketMaxSourceOffsetSeq": seq,
            "flushAtMs": flush,
            "bucketStartMs": start,
        }))
    }
}
