// Runs under Bun inside a directory where `@prisma/streams-local` is installed (see
// make-fixtures.mjs). Starts the original local server on DS_LOCAL_DATA_ROOT/<name>,
// writes a varied set of streams, then records the answers to a list of read-only
// checks, which a server that took the directory over must give too.
//
//   bun scenario.mjs write <name> <answers.json> <legacy|current>
//   bun scenario.mjs open  <name> <result.json>      (start once, record success or error)
import { startLocalDurableStreamsServer } from "@prisma/streams-local";
import fs from "node:fs";

const [mode, name, out, flavor] = process.argv.slice(2);

if (mode === "open") {
  // Opening a data directory of another version: record what happens.
  try {
    const server = await startLocalDurableStreamsServer({ name, hostname: "127.0.0.1", port: 0 });
    await server.close();
    fs.writeFileSync(out, JSON.stringify({ ok: true }));
  } catch (e) {
    const msgs = [];
    for (let c = e; c; c = c.cause) msgs.push(String(c.message ?? c));
    fs.writeFileSync(out, JSON.stringify({ ok: false, error: msgs.join(" | ") }));
  }
  process.exit(0);
}

const server = await startLocalDurableStreamsServer({ name, hostname: "127.0.0.1", port: 0 });
const base = server.exports.http.url;

const KEPT_HEADERS = ["content-type", "stream-next-offset", "stream-closed", "stream-up-to-date",
  "stream-ttl", "producer-epoch", "producer-seq"];

async function send(method, path, { headers = {}, body } = {}) {
  const res = await fetch(base + path, { method, headers: { connection: "close", ...headers }, body });
  const bytes = new Uint8Array(await res.arrayBuffer());
  const hs = {};
  for (const h of KEPT_HEADERS) {
    const v = res.headers.get(h);
    if (v !== null) hs[h] = v;
  }
  return { status: res.status, headers: hs, body_b64: Buffer.from(bytes).toString("base64"), body: Buffer.from(bytes).toString("utf8") };
}

const log = [];
async function write(method, path, opts = {}) {
  const r = await send(method, path, opts);
  log.push({ method, path, headers: opts.headers ?? {}, status: r.status, answer_headers: r.headers, body: r.body });
  if (r.status >= 400) throw new Error(`${method} ${path}: ${r.status} ${r.body}`);
  return r;
}

const J = { "content-type": "application/json" };
const offsets = {};
const note = (stream, r) => (offsets[stream] ??= []).push(r.headers["stream-next-offset"]);

// A JSON stream with several appends, one keyed.
await write("PUT", "/v1/stream/orders", { headers: J });
note("orders", await write("POST", "/v1/stream/orders", { headers: J, body: JSON.stringify([{ id: 1, item: "a" }, { id: 2, item: "b" }]) }));
note("orders", await write("POST", "/v1/stream/orders", { headers: { ...J, "stream-key": "tenant-7" }, body: JSON.stringify({ id: 3, item: "c" }) }));
note("orders", await write("POST", "/v1/stream/orders", { headers: J, body: JSON.stringify({ id: 4, item: "ünïcødé" }) }));

// A binary stream.
const OCT = { "content-type": "application/octet-stream" };
await write("PUT", "/v1/stream/blobs", { headers: OCT });
note("blobs", await write("POST", "/v1/stream/blobs", { headers: OCT, body: new Uint8Array([0, 1, 2, 255, 254]) }));
note("blobs", await write("POST", "/v1/stream/blobs", { headers: OCT, body: new Uint8Array([10, 0, 13, 10]) }));

// Idempotent producer appends.
const P = (seq) => ({ ...J, "producer-id": "writer-1", "producer-epoch": "0", "producer-seq": String(seq) });
await write("PUT", "/v1/stream/produced", { headers: J });
note("produced", await write("POST", "/v1/stream/produced", { headers: P(0), body: JSON.stringify({ n: 0 }) }));
note("produced", await write("POST", "/v1/stream/produced", { headers: P(1), body: JSON.stringify({ n: 1 }) }));

// A stream closed by a producer's final append.
await write("PUT", "/v1/stream/finished", { headers: J });
note("finished", await write("POST", "/v1/stream/finished", { headers: J, body: JSON.stringify({ step: 1 }) }));
note("finished", await write("POST", "/v1/stream/finished", {
  headers: { ...J, "producer-id": "closer", "producer-epoch": "2", "producer-seq": "0", "stream-closed": "true" },
  body: JSON.stringify({ step: "last" }),
}));

// A stream with a TTL, and one with an absolute expiry.
await write("PUT", "/v1/stream/ttl-stream", { headers: { ...J, "stream-ttl": "86400" } });
note("ttl-stream", await write("POST", "/v1/stream/ttl-stream", { headers: J, body: JSON.stringify({ t: 1 }) }));
const expiresAt = new Date(Date.now() + 2 * 86400_000).toISOString();
await write("PUT", "/v1/stream/expiring", { headers: { ...J, "stream-expires-at": expiresAt } });

// Stream-Seq ordering.
await write("PUT", "/v1/stream/seqd", { headers: J });
note("seqd", await write("POST", "/v1/stream/seqd", { headers: { ...J, "stream-seq": "0005" }, body: JSON.stringify({ s: 5 }) }));

// A schema with a routing key.
await write("PUT", "/v1/stream/keyed", { headers: J });
await write("POST", "/v1/stream/keyed/_schema", { headers: J, body: JSON.stringify({
  schema: { type: "object", properties: { user: { type: "string" } }, required: ["user"] },
  routingKey: { jsonPointer: "/user", required: true },
}) });
note("keyed", await write("POST", "/v1/stream/keyed", { headers: J, body: JSON.stringify([{ user: "ann", v: 1 }, { user: "bob", v: 2 }, { user: "ann", v: 3 }]) }));

// The state-protocol stream as @prisma/dev sets it up (0.1.3+), or with the touch
// configuration inside the registry's `interpreter` (0.1.0-0.1.2).
const WAL_SCHEMA = {
  additionalProperties: true,
  properties: {
    headers: { properties: { operation: { type: "string" }, timestamp: { format: "date-time", type: "string" } }, required: ["timestamp", "operation"], type: "object" },
    key: { type: "string" }, type: { type: "string" },
  },
  required: ["type", "key", "headers"], type: "object",
};
await write("PUT", "/v1/stream/prisma-wal", { headers: J });
if (flavor === "legacy") {
  await write("POST", "/v1/stream/prisma-wal/_schema", { headers: J, body: JSON.stringify({
    schema: WAL_SCHEMA,
    interpreter: { apiVersion: "durable.streams/stream-interpreter/v1", format: "durable.streams/state-protocol/v1", touch: { enabled: true, onMissingBefore: "coarse" } },
  }) });
} else {
  await write("POST", "/v1/stream/prisma-wal/_profile", { headers: J, body: JSON.stringify({
    apiVersion: "durable.streams/profile/v1", profile: { kind: "state-protocol", touch: { enabled: true, onMissingBefore: "coarse" } },
  }) });
  await write("POST", "/v1/stream/prisma-wal/_schema", { headers: J, body: JSON.stringify({
    apiVersion: "durable.streams/schema-registry/v1", schema: WAL_SCHEMA,
    search: {
      aliases: { rowKey: "key", table: "type" },
      fields: {
        eventTime: { bindings: [{ jsonPointer: "/headers/timestamp", version: 1 }], column: true, exact: true, exists: true, kind: "date", sortable: true },
        key: { bindings: [{ jsonPointer: "/key", version: 1 }], exact: true, exists: true, kind: "keyword" },
        operation: { bindings: [{ jsonPointer: "/headers/operation", version: 1 }], exact: true, exists: true, kind: "keyword" },
        type: { bindings: [{ jsonPointer: "/type", version: 1 }], exact: true, exists: true, kind: "keyword" },
      },
      primaryTimestampField: "eventTime",
    },
  }) });
}
const change = (i, op) => ({ type: "public.todos", key: String(i), value: { id: i, title: `todo ${i}` }, headers: { operation: op, timestamp: "2026-03-01T10:00:00.000Z" } });
note("prisma-wal", await write("POST", "/v1/stream/prisma-wal", { headers: J, body: JSON.stringify([change(1, "insert"), change(2, "insert")]) }));
note("prisma-wal", await write("POST", "/v1/stream/prisma-wal", { headers: J, body: JSON.stringify([change(1, "update")]) }));

// Streams with the profiles that bring their own registry (0.1.3+).
if (flavor !== "legacy") {
  for (const kind of ["metrics", "evlog"]) {
    await write("PUT", `/v1/stream/${kind}-stream`, { headers: J });
    await write("POST", `/v1/stream/${kind}-stream/_profile`, { headers: J, body: JSON.stringify({ apiVersion: "durable.streams/profile/v1", profile: { kind } }) });
  }
}

// An empty stream and a deleted one.
await write("PUT", "/v1/stream/empty", { headers: J });
await write("PUT", "/v1/stream/gone", { headers: J });
await write("DELETE", "/v1/stream/gone");

// Let the touch processor catch up, so its progress is recorded.
await new Promise((r) => setTimeout(r, 1500));

// The checks: read-only requests (a duplicate producer append changes nothing).
const checks = [];
async function check(method, path, headers = {}, body) {
  const r = await send(method, path, { headers, body });
  checks.push({ method, path, headers, body, status: r.status, answer_headers: r.headers, answer_b64: r.body_b64 });
}
for (const [stream, offs] of Object.entries(offsets)) {
  await check("HEAD", `/v1/stream/${stream}`);
  await check("GET", `/v1/stream/${stream}?offset=-1`);
  for (const o of offs) await check("GET", `/v1/stream/${stream}?offset=${o}`);
}
for (const s of ["ttl-stream", "expiring", "empty"]) await check("HEAD", `/v1/stream/${s}`);
await check("GET", "/v1/stream/empty?offset=-1");
await check("HEAD", "/v1/stream/gone");
await check("GET", "/v1/stream/orders?offset=-1&key=tenant-7");
await check("GET", "/v1/stream/keyed?offset=-1&key=ann");
await check("GET", "/v1/stream/keyed/_schema");
await check("GET", "/v1/stream/prisma-wal/_schema");
await check("POST", "/v1/stream/produced", P(1), JSON.stringify({ n: 1 }));
await check("POST", "/v1/stream/finished", { ...J, "producer-id": "closer", "producer-epoch": "2", "producer-seq": "0", "stream-closed": "true" }, JSON.stringify({ step: "last" }));
await check("POST", "/v1/stream/seqd", { ...J, "stream-seq": "0004" }, JSON.stringify({ s: 4 }));
if (flavor !== "legacy") {
  await check("GET", "/v1/stream/prisma-wal/_profile");
  for (const kind of ["metrics", "evlog"]) {
    await check("GET", `/v1/stream/${kind}-stream/_profile`);
    await check("GET", `/v1/stream/${kind}-stream/_schema`);
  }
}

await server.close();
fs.writeFileSync(out, JSON.stringify({ flavor, url: base, expires_at: expiresAt, writes: log, checks }, null, 2));
process.exit(0);
