// The client of benches/search.sh: fills one JSON stream of a running server with
// MESSAGES records spread over one day (routing key `user`, KEYS users, one user per
// POST of BATCH records; a rare keyword `code` that 1 record in 10,000 shares), waits
// until the server has put them where it keeps them (segments uploaded and indexed, or a
// time limit), then measures warm reads, each REPS times, and prints one JSON line:
//   keyed    all entries of one key (/pk/<key>, format=json, page by page)
//   search   `_search` for one `code` value (100 hits), newest first
//   agg      `_aggregate` over the whole day in 1 h buckets by level
//   full     the whole stream, page by page
// Every answer is checked (entry and hit counts); a wrong one fails the run.
//
//   node benches/search-driver.mjs URL LABEL [MESSAGES] [KEYS] [BATCH] [REPS] [SETTLE_S]

const [url, label, messagesArg, keysArg, batchArg, repsArg, settleArg] = process.argv.slice(2);
const MESSAGES = Number(messagesArg ?? 1_000_000);
const KEYS = Number(keysArg ?? 1000);
const BATCH = Number(batchArg ?? 100);
const REPS = Number(repsArg ?? 5);
const SETTLE_S = Number(settleArg ?? 600);
const CODES = 10_000;
const DAY_MS = 86_400_000;
const BASE = Date.UTC(2026, 10, 1);
const LEVELS = ["info", "warn", "error", "debug"];
const stream = `${url}/v1/stream/bench`;
const J = { "content-type": "application/json" };

const record = (i) => ({
  user: `u-${String(Math.floor(i / BATCH) % KEYS).padStart(4, "0")}`,
  level: LEVELS[i % 4],
  code: `E-${String(i % CODES).padStart(4, "0")}`,
  status: 200 + (i % 7) * 50,
  ts: new Date(BASE + Math.floor((i * DAY_MS) / MESSAGES)).toISOString(),
  msg: "x".repeat(20),
});

async function call(u, init = {}) {
  const r = await fetch(u, { ...init, headers: { ...J, ...(init.headers ?? {}) } });
  const text = await r.text();
  if (r.status >= 400) throw new Error(`${init.method ?? "GET"} ${u}: ${r.status} ${text.slice(0, 300)}`);
  return { status: r.status, headers: r.headers, text };
}

async function setup() {
  await call(stream, { method: "PUT" });
  await call(`${stream}/_schema`, {
    method: "POST",
    body: JSON.stringify({
      apiVersion: "durable.streams/schema-registry/v1",
      schema: { type: "object" },
      routingKey: { jsonPointer: "/user", required: true },
      search: {
        primaryTimestampField: "ts",
        fields: {
          ts: { kind: "date", bindings: [{ version: 1, jsonPointer: "/ts" }], column: true, exact: true, sortable: true },
          user: { kind: "keyword", bindings: [{ version: 1, jsonPointer: "/user" }], exact: true },
          level: { kind: "keyword", bindings: [{ version: 1, jsonPointer: "/level" }], exact: true },
          code: { kind: "keyword", bindings: [{ version: 1, jsonPointer: "/code" }], exact: true },
          status: { kind: "integer", bindings: [{ version: 1, jsonPointer: "/status" }], exact: true, column: true, aggregatable: true },
        },
        rollups: {
          by_level: { dimensions: ["level"], intervals: ["1h"], measures: { n: { kind: "count" }, st: { kind: "summary", field: "status" } } },
        },
      },
    }),
  });
}

async function fill() {
  let next = 0;
  const worker = async () => {
    for (;;) {
      const start = next;
      next += BATCH;
      if (start >= MESSAGES) return;
      const body = [];
      for (let i = start; i < Math.min(start + BATCH, MESSAGES); i++) body.push(record(i));
      await call(stream, { method: "POST", body: JSON.stringify(body) });
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: 16 }, worker));
  return (performance.now() - t0) / 1000;
}

/// Waits until the server's segments are all uploaded and its routing-key index covers
/// them, with no new segment for 5 s (or SETTLE_S passes); returns what it said last.
async function settle() {
  const t0 = performance.now();
  let st = null;
  let last = -1;
  let stableSince = performance.now();
  for (;;) {
    st = JSON.parse((await call(`${stream}/_details`)).text);
    const s = st.stream ?? {};
    const idx = st.index_status?.routing_key_index ?? {};
    const uploaded = Number(s.uploaded_segment_count ?? 0);
    if (uploaded !== last) {
      last = uploaded;
      stableSince = performance.now();
    }
    const done =
      uploaded > 0 &&
      uploaded === Number(s.segment_count) &&
      idx.fully_indexed_uploaded_segments === true &&
      performance.now() - stableSince > 5000;
    if (done || performance.now() - t0 > SETTLE_S * 1000) break;
    await new Promise((r) => setTimeout(r, 1000));
  }
  return { settle_s: (performance.now() - t0) / 1000, details: st };
}

async function readAll(u) {
  let offset = "-1";
  let n = 0;
  for (;;) {
    const sep = u.includes("?") ? "&" : "?";
    const r = await call(`${u}${sep}offset=${offset}`);
    n += JSON.parse(r.text).length;
    offset = r.headers.get("stream-next-offset");
    if (r.headers.get("stream-up-to-date") !== null) return n;
  }
}

async function timed(name, reps, f, check) {
  const ms = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    const v = await f();
    ms.push(performance.now() - t0);
    check(v);
  }
  ms.sort((a, b) => a - b);
  return { [`${name}_p50_ms`]: ms[Math.floor(ms.length / 2)], [`${name}_min_ms`]: ms[0] };
}

// Our answers must be exact (a wrong one fails the run); the original's are recorded as
// they are (its search misses records it has not published yet).
const wrong = {};
function expect(what, got, want) {
  if (got === want) return;
  if (label === "ours") throw new Error(`${label}: ${what} gave ${got}, expected ${want}`);
  wrong[what] = { got, want };
}

await setup();
const fill_s = await fill();
const settled = await settle();
const key = "u-0042";
const perKey = MESSAGES / KEYS;
const out = { label, messages: MESSAGES, keys: KEYS, fill_s, settle_s: settled.settle_s };
Object.assign(
  out,
  await timed("keyed", REPS, () => readAll(`${stream}/pk/${key}?format=json`), (n) => expect("keyed read", n, perKey)),
);
Object.assign(
  out,
  await timed(
    "search",
    REPS,
    async () => JSON.parse((await call(`${stream}/_search`, { method: "POST", body: JSON.stringify({ q: "code:E-0042", size: 100, sort: ["offset:desc"] }) })).text),
    (r) => expect("search hits", r.hits.length, MESSAGES / CODES),
  ),
);
Object.assign(
  out,
  await timed(
    "agg",
    REPS,
    async () => JSON.parse((await call(`${stream}/_aggregate`, { method: "POST", body: JSON.stringify({ rollup: "by_level", from: new Date(BASE).toISOString(), to: new Date(BASE + DAY_MS).toISOString(), interval: "1h" }) })).text),
    (r) => {
      let n = 0;
      for (const b of r.buckets) for (const g of b.groups ?? []) n += g.measures?.n?.count ?? g.measures?.n ?? 0;
      expect("aggregate count", n, MESSAGES);
    },
  ),
);
Object.assign(out, await timed("full", Math.min(REPS, 3), () => readAll(stream), (n) => expect("full read", n, MESSAGES)));
const d = settled.details ?? {};
const idx = d.index_status?.routing_key_index ?? {};
out.state = {
  segments: d.stream?.segment_count,
  uploaded_segments: d.stream?.uploaded_segment_count,
  sqlite_rows: d.stream?.wal_rows,
  key_index_indexed: idx.indexed_segment_count,
  key_index_lag: idx.lag_segments,
};
out.wrong_answers = wrong;
console.log(JSON.stringify(out));
