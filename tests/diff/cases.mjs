// The request sequence of the differential check (run.mjs). Each section runs in order on
// both servers; steps within a section may depend on the steps before them. A step is
// {label, method, path (raw, sent as is), headers?, body? (string: sent verbatim; other:
// JSON-encoded with content-type application/json unless given)}.

import { isDeepStrictEqual } from "node:util";

const S = (name) => `/v1/stream/${name}`;
const JSONCT = { "content-type": "application/json" };
const TEXTCT = { "content-type": "text/plain" };

const req = (method) => (label, path, body, extra = {}) => ({ label, method, path, ...(body !== undefined ? { body } : {}), ...extra });
const get = (label, path, extra = {}) => ({ label, method: "GET", path, ...extra });
const post = req("POST");
const put = req("PUT");
const del = (label, path) => ({ label, method: "DELETE", path });
const createJson = (name, body) => put(`create ${name}`, S(name), body ?? "", { headers: JSONCT });
const createText = (name) => put(`create ${name}`, S(name), "", { headers: TEXTCT });

// A step on a stream of its own, created (and set up) by uncompared `pre` requests, so that
// a request one server accepts and the other refuses does not change later steps. `body`
// may be a function of the stream's name.
let freshCount = 0;
function iso(prefix, label, method, sub, body, { headers, ct = JSONCT, setup = () => [] } = {}) {
  const name = `${prefix}-${++freshCount}`;
  const b = typeof body === "function" ? body(name) : body;
  return {
    label, method, path: sub ? `${S(name)}/${sub}` : S(name),
    ...(b !== undefined ? { body: b } : {}),
    ...(headers ? { headers } : typeof b === "string" ? { headers: JSONCT } : {}),
    pre: [{ method: "PUT", path: S(name), body: "", headers: ct }, ...setup(name)],
  };
}
const isoProfile = (label, body, opts) => iso("pe", label, "POST", "_profile", body, opts);
const isoSchema = (label, body, opts) => iso("se", label, "POST", "_schema", body, opts);

const PROFILE_API = "durable.streams/profile/v1";
const SCHEMA_API = "durable.streams/schema-registry/v1";
const SP = (touch) => ({ apiVersion: PROFILE_API, profile: { kind: "state-protocol", ...(touch !== undefined ? { touch } : {}) } });

// @prisma/dev 0.25.2 prisma-wal bodies (spec §7.1).
export const PRISMA_WAL_PROFILE = SP({ enabled: true, onMissingBefore: "coarse" });
export const PRISMA_WAL_SCHEMA = {
  apiVersion: SCHEMA_API,
  schema: {
    additionalProperties: true,
    properties: {
      headers: {
        properties: { operation: { type: "string" }, timestamp: { format: "date-time", type: "string" } },
        required: ["timestamp", "operation"],
        type: "object",
      },
      key: { type: "string" },
      type: { type: "string" },
    },
    required: ["type", "key", "headers"],
    type: "object",
  },
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
};

const TS = "2026-01-02T03:04:05.678Z";

// @prisma/dev's own test on every start (chunk-AVDGCP6B.js): the registry counts as
// installed when version 1+ holds exactly its schema and search (key order aside);
// otherwise, at version 1+, it refuses to start.
const DEV_CHECK = {
  deriveName: "@prisma/dev finds its schema installed",
  derive: (reg) =>
    reg?.currentVersion > 0 &&
    reg.schema === "prisma-wal" &&
    isDeepStrictEqual(reg.schemas[String(reg.currentVersion)], PRISMA_WAL_SCHEMA.schema) &&
    isDeepStrictEqual(reg.search, PRISMA_WAL_SCHEMA.search),
  expect: true,
};

// ------------------------------------------------------------------ _profile

const profile = [
  createJson("p-json"),
  get("GET default generic", `${S("p-json")}/_profile`),
  post("POST state-protocol with touch", `${S("p-json")}/_profile`, PRISMA_WAL_PROFILE),
  get("GET after state-protocol", `${S("p-json")}/_profile`),
  post("re-POST same state-protocol", `${S("p-json")}/_profile`, PRISMA_WAL_PROFILE),
  get("touch/meta after state-protocol", `${S("p-json")}/touch/meta`, { volatile: ["lastFlushAtMs", "walScannedThrough", "flushIntervalMsMaxLast10s", "flushIntervalMsP95Last10s"] }),
  post("POST state-protocol touch enabled:false", `${S("p-json")}/_profile`, SP({ enabled: false })),
  get("touch/meta with touch disabled", `${S("p-json")}/touch/meta`),
  post("POST state-protocol without touch", `${S("p-json")}/_profile`, SP()),
  get("GET after state-protocol without touch", `${S("p-json")}/_profile`),
  post("POST state-protocol full touch config", `${S("p-json")}/_profile`, SP({
    enabled: true, coarseIntervalMs: 250, touchCoalesceWindowMs: 50, onMissingBefore: "skipBefore",
    memory: { filterPow2: 10, k: 8, keyIndexMaxKeys: 1024 }, templates: { maxActiveTemplatesPerStream: 5 },
  })),
  post("POST state-protocol without apiVersion", `${S("p-json")}/_profile`, { profile: { kind: "state-protocol", touch: { enabled: true } } }),
  post("POST generic", `${S("p-json")}/_profile`, { apiVersion: PROFILE_API, profile: { kind: "generic" } }),
  get("GET after generic", `${S("p-json")}/_profile`),
  get("touch/meta after generic", `${S("p-json")}/touch/meta`),
  post("POST generic again", `${S("p-json")}/_profile`, { profile: { kind: "generic" } }),
  // validation errors
  isoProfile("invalid JSON", "{", { headers: JSONCT }),
  isoProfile("empty body", "", { headers: JSONCT }),
  isoProfile("array body", "[]", { headers: JSONCT }),
  isoProfile("null body", "null", { headers: JSONCT }),
  isoProfile("string body", '"generic"', { headers: JSONCT }),
  isoProfile("number body", "5", { headers: JSONCT }),
  isoProfile("empty object", {}),
  isoProfile("unknown top-level key", { profile: { kind: "generic" }, extra: 1 }),
  isoProfile("bad apiVersion", { apiVersion: "durable.streams/profile/v2", profile: { kind: "generic" } }),
  isoProfile("profile string", { profile: "generic" }),
  isoProfile("profile null", { profile: null }),
  isoProfile("profile array", { profile: [] }),
  isoProfile("profile without kind", { profile: {} }),
  isoProfile("profile kind empty", { profile: { kind: "" } }),
  isoProfile("profile kind blank", { profile: { kind: "  " } }),
  isoProfile("profile kind number", { profile: { kind: 5 } }),
  isoProfile("profile kind unknown", { profile: { kind: "nope" } }),
  isoProfile("profile kind padded", { profile: { kind: " generic " } }),
  isoProfile("generic extra key", { profile: { kind: "generic", x: 1 } }),
  isoProfile("state-protocol extra key", { profile: { kind: "state-protocol", x: 1 } }),
  isoProfile("touch not object", SP(5)),
  isoProfile("touch null", SP(null)),
  isoProfile("touch empty object", SP({})),
  isoProfile("touch unknown key", SP({ enabled: true, foo: 1 })),
  isoProfile("touch enabled string", SP({ enabled: "yes" })),
  isoProfile("touch onMissingBefore bad", SP({ enabled: true, onMissingBefore: "later" })),
  isoProfile("touch onMissingBefore error", SP({ enabled: true, onMissingBefore: "error" })),
  isoProfile("touch coarseIntervalMs negative", SP({ enabled: true, coarseIntervalMs: -1 })),
  isoProfile("touch coarseIntervalMs string", SP({ enabled: true, coarseIntervalMs: "100" })),
  isoProfile("touch coarseIntervalMs zero", SP({ enabled: true, coarseIntervalMs: 0 })),
  isoProfile("touch coarseIntervalMs fractional", SP({ enabled: true, coarseIntervalMs: 1.5 })),
  isoProfile("touch memory not object", SP({ enabled: true, memory: 1 })),
  isoProfile("touch memory unknown key", SP({ enabled: true, memory: { foo: 1 } })),
  isoProfile("touch memory.filterPow2 too small", SP({ enabled: true, memory: { filterPow2: 9 } })),
  isoProfile("touch memory.filterPow2 too big", SP({ enabled: true, memory: { filterPow2: 31 } })),
  isoProfile("touch memory.k 0", SP({ enabled: true, memory: { k: 0 } })),
  isoProfile("touch memory.k 9", SP({ enabled: true, memory: { k: 9 } })),
  isoProfile("touch memory.keyIndexMaxKeys 1025", SP({ enabled: true, memory: { keyIndexMaxKeys: 1025 } })),
  isoProfile("touch templates unknown key", SP({ enabled: true, templates: { foo: 1 } })),
  isoProfile("touch templates negative", SP({ enabled: true, templates: { gcIntervalMs: -5 } })),
  isoProfile("touch disabled with extra keys", SP({ enabled: false, coarseIntervalMs: 5, foo: 1 })),
  isoProfile("metrics extra key", { profile: { kind: "metrics", x: 1 } }),
  isoProfile("evlog extra key", { profile: { kind: "evlog", x: 1 } }),
  isoProfile("evlog redactKeys not array", { profile: { kind: "evlog", redactKeys: "a" } }),
  isoProfile("otel-traces extra key", { profile: { kind: "otel-traces", x: 1 } }),
  isoProfile("text/plain content-type on POST", JSON.stringify({ profile: { kind: "generic" } }), { headers: TEXTCT }),
  get("GET after errors (still generic)", `${S("p-json")}/_profile`),

  // text/plain stream
  createText("p-text"),
  get("text: GET default", `${S("p-text")}/_profile`),
  post("text: state-protocol", `${S("p-text")}/_profile`, PRISMA_WAL_PROFILE),
  post("text: metrics", `${S("p-text")}/_profile`, { profile: { kind: "metrics" } }),
  post("text: evlog", `${S("p-text")}/_profile`, { profile: { kind: "evlog" } }),
  post("text: otel-traces", `${S("p-text")}/_profile`, { profile: { kind: "otel-traces" } }),
  post("text: generic", `${S("p-text")}/_profile`, { profile: { kind: "generic" } }),
  put("application/json; charset=utf-8 stream", S("p-json-cs"), "", { headers: { "content-type": "application/json; charset=utf-8" } }),
  post("json charset stream: state-protocol", `${S("p-json-cs")}/_profile`, PRISMA_WAL_PROFILE),

  // metrics
  createJson("p-metrics"),
  post("metrics: install", `${S("p-metrics")}/_profile`, { apiVersion: PROFILE_API, profile: { kind: "metrics" } }),
  get("metrics: GET _profile", `${S("p-metrics")}/_profile`),
  get("metrics: GET _schema", `${S("p-metrics")}/_schema`),
  post("metrics: re-install", `${S("p-metrics")}/_profile`, { profile: { kind: "metrics" } }),
  get("metrics: GET _schema after re-install", `${S("p-metrics")}/_schema`),
  post("metrics: append record", S("p-metrics"), [{ metric: "http.latency", unit: "ms", windowStart: 1000, windowEnd: 2000, count: 2, sum: 30, min: 10, max: 20, tags: { route: "/a" } }]),
  post("metrics: append bad record", S("p-metrics"), [{ metric: "", unit: "ms", windowStart: 0, windowEnd: 1 }]),
  post("metrics: append no count", S("p-metrics"), [{ metric: "m", unit: "ms", windowStart: 0, windowEnd: 1 }]),
  post("metrics: append window reversed", S("p-metrics"), [{ metric: "m", unit: "ms", windowStart: 5, windowEnd: 1, count: 1, sum: 1 }]),
  get("metrics: read json", `${S("p-metrics")}?offset=-1&format=json`),
  get("metrics: _routing_keys", `${S("p-metrics")}/_routing_keys`),
  post("metrics: switch to evlog after data", `${S("p-metrics")}/_profile`, { profile: { kind: "evlog" } }),
  post("metrics: switch to generic", `${S("p-metrics")}/_profile`, { profile: { kind: "generic" } }),
  get("metrics: _schema after generic", `${S("p-metrics")}/_schema`),

  // evlog
  createJson("p-evlog"),
  post("evlog: install", `${S("p-evlog")}/_profile`, { profile: { kind: "evlog", redactKeys: ["secret"] } }),
  get("evlog: GET _profile", `${S("p-evlog")}/_profile`),
  get("evlog: GET _schema", `${S("p-evlog")}/_schema`),
  post("evlog: append", S("p-evlog"), [
    { timestamp: TS, level: "info", service: "api", requestId: "req-1", method: "GET", path: "/x", status: 200, duration: 12.5, message: "ok", secret: "s", password: "p", user: { id: 1 } },
    { timestamp: TS, traceId: "trace-2", status: 503 },
    { timestamp: TS, traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01" },
  ]),
  post("evlog: append non-object", S("p-evlog"), [5]),
  get("evlog: read json", `${S("p-evlog")}?offset=-1&format=json`),
  get("evlog: _routing_keys", `${S("p-evlog")}/_routing_keys`),
  get("evlog: read by key req-1", `${S("p-evlog")}/pk/req-1?offset=-1`),
  createJson("p-evlog2", [{ a: 1 }]),
  post("evlog after data", `${S("p-evlog2")}/_profile`, { profile: { kind: "evlog" } }),
  get("evlog after data: _profile", `${S("p-evlog2")}/_profile`),
  get("evlog after data: _schema", `${S("p-evlog2")}/_schema`),
  post("metrics after data", `${S("p-evlog2")}/_profile`, { profile: { kind: "metrics" } }),
  post("otel-traces after data", `${S("p-evlog2")}/_profile`, { profile: { kind: "otel-traces" } }),
  post("state-protocol after data", `${S("p-evlog2")}/_profile`, PRISMA_WAL_PROFILE),
  get("state-protocol after data: GET", `${S("p-evlog2")}/_profile`),

  // otel-traces
  createJson("p-otel"),
  post("otel-traces: install", `${S("p-otel")}/_profile`, { profile: { kind: "otel-traces" } }),
  get("otel-traces: GET _profile", `${S("p-otel")}/_profile`),
  get("otel-traces: GET _schema", `${S("p-otel")}/_schema`),

  // profile on a stream with an installed schema
  createJson("p-schema"),
  post("schema then: install schema", `${S("p-schema")}/_schema`, { schema: { type: "object" } }),
  post("schema then: evlog", `${S("p-schema")}/_profile`, { profile: { kind: "evlog" } }),
  get("schema then: _schema after evlog", `${S("p-schema")}/_schema`),
  post("schema then: state-protocol", `${S("p-schema")}/_profile`, PRISMA_WAL_PROFILE),
  get("schema then: _schema after state-protocol", `${S("p-schema")}/_schema`),
];

// ------------------------------------------------------------------ _schema

const OBJ_SCHEMA = { type: "object", properties: { id: { type: "string" }, n: { type: "integer" } }, required: ["id"], additionalProperties: true };
const V2_SCHEMA = { type: "object", properties: { key: { type: "string" }, n: { type: "integer" } }, required: ["key"], additionalProperties: true };
const lens = (name, extra = {}) => ({ apiVersion: "durable.lens/v1", schema: name, from: 1, to: 2, ops: [{ op: "rename", from: "/id", to: "/key" }], ...extra });
const LENS_1_2 = lens("s-main");
const atV1 = (name) => [{ method: "POST", path: `${S(name)}/_schema`, body: JSON.stringify({ schema: OBJ_SCHEMA }), headers: JSONCT }];
const v2 = (label, schemaV2, lensExtra) => isoSchema(label, (name) => ({ schema: schemaV2, lens: lens(name, lensExtra) }), { setup: atV1 });
const WAL_SEARCH = () => PRISMA_WAL_SCHEMA.search;
const FALSE_SEARCH = { primaryTimestampField: "t", fields: { t: { kind: "date", bindings: [{ jsonPointer: "/t", version: 1 }], exact: false, column: true, prefix: false } } };

const schema = [
  createJson("s-main"),
  get("GET default", `${S("s-main")}/_schema`),
  isoSchema("invalid JSON", "{"),
  isoSchema("empty body", ""),
  isoSchema("array body", "[1]"),
  isoSchema("string body", '"x"'),
  isoSchema("null body", "null"),
  isoSchema("number body", "42"),
  isoSchema("unknown key", { schema: { type: "object" }, foo: 1 }),
  isoSchema("registry-shaped body", (name) => ({ apiVersion: SCHEMA_API, schema: name, currentVersion: 1, schemas: { 1: { type: "object" } }, lenses: {} })),
  isoSchema("interpreter key", { interpreter: { touch: { enabled: true } } }),
  isoSchema("routing_key alias", { routing_key: "/id" }),
  isoSchema("bad apiVersion", { apiVersion: "durable.streams/schema-registry/v2", schema: { type: "object" } }),
  isoSchema("apiVersion number", { apiVersion: 1, schema: { type: "object" } }),
  isoSchema("nothing to do (apiVersion only)", { apiVersion: SCHEMA_API }),
  isoSchema("nothing to do (empty object)", {}),
  isoSchema("schema null", { schema: null }),
  isoSchema("schema null + routingKey", { schema: null, routingKey: { jsonPointer: "/id", required: true } }),
  isoSchema("lens without schema", (name) => ({ lens: lens(name) })),
  isoSchema("lens + routingKey without schema", (name) => ({ lens: lens(name), routingKey: { jsonPointer: "/id", required: true } })),
  isoSchema("routingKey string", { routingKey: "/id" }),
  isoSchema("routingKey number", { routingKey: 5 }),
  isoSchema("routingKey array", { routingKey: [] }),
  isoSchema("routingKey empty object", { routingKey: {} }),
  isoSchema("routingKey jsonPointer number", { routingKey: { jsonPointer: 5, required: true } }),
  isoSchema("routingKey missing required", { routingKey: { jsonPointer: "/id" } }),
  isoSchema("routingKey required string", { routingKey: { jsonPointer: "/id", required: "yes" } }),
  isoSchema("routingKey invalid pointer", { routingKey: { jsonPointer: "id", required: true } }),
  isoSchema("routingKey pointer bad escape", { routingKey: { jsonPointer: "/a~2", required: true } }),
  isoSchema("routingKey root pointer", { routingKey: { jsonPointer: "", required: true } }),
  isoSchema("routingKey extra key", { routingKey: { jsonPointer: "/id", required: true, extra: 1 } }),
  isoSchema("routingKey json_pointer alias", { routingKey: { json_pointer: "/id", required: true } }),
  isoSchema("routingKey null + schema", { schema: { type: "object" }, routingKey: null }),
  isoSchema("routingKey + search without schema", { routingKey: { jsonPointer: "/id", required: true }, search: WAL_SEARCH() }),
  isoSchema("search-only before install", { search: WAL_SEARCH() }),
  isoSchema("search null only before install", { search: null }),
  isoSchema("search not object", { schema: { type: "object" }, search: 5 }),
  isoSchema("search unknown key", { schema: { type: "object" }, search: { primaryTimestampField: "t", fields: { t: { kind: "date", bindings: [{ version: 1, jsonPointer: "/t" }] } }, foo: 1 } }),
  isoSchema("search field bad kind", { schema: { type: "object" }, search: { primaryTimestampField: "t", fields: { t: { kind: "nope", bindings: [{ version: 1, jsonPointer: "/t" }] } } } }),
  isoSchema("search empty fields", { schema: { type: "object" }, search: { primaryTimestampField: "t", fields: {} } }),
  isoSchema("search primary field missing", { schema: { type: "object" }, search: { primaryTimestampField: "t", fields: { u: { kind: "keyword", bindings: [{ version: 1, jsonPointer: "/u" }] } } } }),
  isoSchema("search primary field not date", { schema: { type: "object" }, search: { primaryTimestampField: "u", fields: { u: { kind: "keyword", bindings: [{ version: 1, jsonPointer: "/u" }] } } } }),
  isoSchema("search binding version 2 on v1", { schema: { type: "object" }, search: { primaryTimestampField: "t", fields: { t: { kind: "date", bindings: [{ version: 2, jsonPointer: "/t" }] } } } }),
  isoSchema("search binding bad pointer", { schema: { type: "object" }, search: { primaryTimestampField: "t", fields: { t: { kind: "date", bindings: [{ version: 1, jsonPointer: "t" }] } } } }),
  {
    ...isoSchema("search with false booleans (echo)", { schema: { type: "object" }, search: FALSE_SEARCH }),
    deriveName: "GET search deep-equals the posted search",
    derive: (reg) => isDeepStrictEqual(reg?.search, FALSE_SEARCH),
  },
  isoSchema("$ref top-level", { schema: { $ref: "http://example.com/s.json" } }),
  isoSchema("$ref nested internal", { schema: { type: "object", definitions: { a: { type: "string" } }, properties: { x: { $ref: "#/definitions/a" } } } }),
  isoSchema("$ref as property name", { schema: { type: "object", properties: { $ref: { type: "string" } } } }),
  isoSchema("schema number", { schema: 5 }),
  isoSchema("schema string", { schema: "x" }),
  isoSchema("schema array", { schema: [] }),
  isoSchema("schema true", { schema: true }),
  isoSchema("schema invalid (type bogus)", { schema: { type: "bogus" } }),
  isoSchema("schema invalid (required not array)", { schema: { type: "object", required: "id" } }),
  isoSchema("schema invalid (bad regex pattern)", { schema: { type: "string", pattern: "(" } }),
  isoSchema("first install with lens 1->2", (name) => ({ schema: OBJ_SCHEMA, lens: lens(name) })),
  isoSchema("first install with lens 0->1", (name) => ({ schema: OBJ_SCHEMA, lens: lens(name, { from: 0, to: 1 }) })),
  isoSchema("first install with invalid lens", { schema: OBJ_SCHEMA, lens: { foo: 1 } }),
  isoSchema("first install on text/plain stream", { schema: { type: "object" } }, { ct: TEXTCT }),
  isoSchema("text/plain content-type on POST", JSON.stringify({ schema: { type: "object" } }), { headers: TEXTCT }),
  // version 2 on a stream at version 1
  isoSchema("re-post same schema", { apiVersion: SCHEMA_API, schema: OBJ_SCHEMA }, { setup: atV1 }),
  isoSchema("v2 without lens", { schema: V2_SCHEMA }, { setup: atV1 }),
  v2("v2 lens 2->3", V2_SCHEMA, { from: 2, to: 3 }),
  v2("v2 lens 0->1", V2_SCHEMA, { from: 0, to: 1 }),
  v2("v2 lens 1->3", V2_SCHEMA, { from: 1, to: 3 }),
  v2("v2 lens schema mismatch", V2_SCHEMA, { schema: "other" }),
  v2("v2 lens invalid (no ops)", V2_SCHEMA, { ops: [] }),
  v2("v2 lens invalid (unknown op)", V2_SCHEMA, { ops: [{ op: "explode", path: "/x" }] }),
  v2("v2 lens extra top-level key", V2_SCHEMA, { extra: true }),
  v2("v2 lens bad apiVersion", V2_SCHEMA, { apiVersion: "durable.lens/v2" }),
  v2("v2 proof: rename source not required", V2_SCHEMA, { ops: [{ op: "rename", from: "/n", to: "/key" }] }),
  v2("v2 proof: rename dest missing", { ...V2_SCHEMA, additionalProperties: false }, { ops: [{ op: "rename", from: "/id", to: "/zzz" }] }),
  v2("v2 proof: rename incompatible", { type: "object", properties: { key: { type: "integer" } }, required: ["key"] }, {}),
  v2("v2 proof: add default invalid", { ...V2_SCHEMA, properties: { ...V2_SCHEMA.properties, flag: { type: "boolean" } } }, { ops: [{ op: "rename", from: "/id", to: "/key" }, { op: "add", path: "/flag", schema: { type: "boolean" }, default: "no" }] }),
  v2("v2 proof: add missing default", { ...V2_SCHEMA, properties: { ...V2_SCHEMA.properties, flag: { type: "boolean" } } }, { ops: [{ op: "rename", from: "/id", to: "/key" }, { op: "add", path: "/flag", schema: { type: "boolean" } }] }),
  v2("v2 proof: add dest not explicit", V2_SCHEMA, { ops: [{ op: "rename", from: "/id", to: "/key" }, { op: "add", path: "/tag", schema: { type: "object" } }] }),
  v2("v2 proof: remove still required", OBJ_SCHEMA, { ops: [{ op: "remove", path: "/id", schema: { type: "string" } }] }),
  v2("v2 proof: remove not required in old", { ...OBJ_SCHEMA, required: ["id"] }, { ops: [{ op: "remove", path: "/n", schema: { type: "integer" } }] }),
  v2("v2 proof: convert non-total", { type: "object", properties: { id: { type: "integer" } }, required: ["id"] }, { ops: [{ op: "convert", path: "/id", fromType: "string", toType: "integer", forward: { builtin: "string_to_int" }, backward: { builtin: "int_to_string" } }] }),
  v2("v2 proof: wrap dest not array", V2_SCHEMA, { ops: [{ op: "rename", from: "/id", to: "/key" }, { op: "wrap", path: "/key", mode: "singleton" }] }),
  v2("v2 proof: parent path not required", { ...V2_SCHEMA, properties: { ...V2_SCHEMA.properties, o: { type: "object", properties: { x: { type: "string" } } } } }, { ops: [{ op: "rename", from: "/id", to: "/key" }, { op: "copy", from: "/key", to: "/o/x" }] }),
  v2("v2 $ref", { ...V2_SCHEMA, properties: { key: { $ref: "#/x" } } }, {}),
  v2("v2 valid rename", V2_SCHEMA, {}),

  // a routing key set before the first install (the original drops it at the install)
  createJson("s-rk"),
  post("routingKey only (before schema)", `${S("s-rk")}/_schema`, { routingKey: { jsonPointer: "/id", required: false } }),
  get("GET after routingKey only", `${S("s-rk")}/_schema`),
  post("routingKey null only", `${S("s-rk")}/_schema`, { routingKey: null }),
  get("GET after routingKey null", `${S("s-rk")}/_schema`),
  post("routingKey only again", `${S("s-rk")}/_schema`, { routingKey: { jsonPointer: "/id", required: true } }),
  post("first install after routingKey only", `${S("s-rk")}/_schema`, { apiVersion: SCHEMA_API, schema: OBJ_SCHEMA }),
  get("GET after first install after routingKey", `${S("s-rk")}/_schema`),

  // the main stream: three versions
  post("first install", `${S("s-main")}/_schema`, { apiVersion: SCHEMA_API, schema: OBJ_SCHEMA }),
  get("GET after first install", `${S("s-main")}/_schema`),
  post("append v1 records before upgrade", S("s-main"), [{ id: "a", n: 1 }, { id: "b/c", n: 2 }]),
  post("v2 upgrade with lens", `${S("s-main")}/_schema`, { schema: { ...V2_SCHEMA, properties: { ...V2_SCHEMA.properties, tag: { type: "object" } } }, lens: { ...LENS_1_2, ops: [{ op: "rename", from: "/id", to: "/key" }, { op: "add", path: "/tag", schema: { type: "object" } }] } }),
  get("GET after v2", `${S("s-main")}/_schema`),
  post("append v2 record", S("s-main"), [{ key: "z", n: 3 }]),
  post("append old-shaped record after v2", S("s-main"), [{ id: "q" }]),
  get("read format=json (promoted)", `${S("s-main")}?offset=-1&format=json`),
  get("read format=raw (not promoted)", `${S("s-main")}?offset=-1&format=raw`),
  get("read default format", `${S("s-main")}?offset=-1`),
  get("read format=bogus", `${S("s-main")}?offset=-1&format=bogus`),
  post("routingKey only after v2", `${S("s-main")}/_schema`, { routingKey: { jsonPointer: "/key", required: true } }),
  get("GET after routingKey on v2", `${S("s-main")}/_schema`),
  post("search only after install", `${S("s-main")}/_schema`, { search: { primaryTimestampField: "n", fields: { n: { kind: "integer", bindings: [{ version: 2, jsonPointer: "/n" }], exact: true, column: true } } } }),
  post("search only (date primary) after install", `${S("s-main")}/_schema`, { search: { primaryTimestampField: "t", fields: { t: { kind: "date", bindings: [{ version: 2, jsonPointer: "/t" }], column: true }, k: { kind: "keyword", bindings: [{ version: 2, jsonPointer: "/key" }], prefix: true } } } }),
  get("GET after search only", `${S("s-main")}/_schema`),
  post("search null after install", `${S("s-main")}/_schema`, { search: null }),
  get("GET after search null", `${S("s-main")}/_schema`),
  post("v3 with lens and routingKey", `${S("s-main")}/_schema`, { schema: { ...V2_SCHEMA, properties: { ...V2_SCHEMA.properties, tag: { type: "object" } } }, lens: { ...LENS_1_2, from: 2, to: 3, ops: [{ op: "copy", from: "/key", to: "/key" }] }, routingKey: { jsonPointer: "/key", required: false } }),
  get("GET after v3", `${S("s-main")}/_schema`),
  get("read format=json after v3", `${S("s-main")}?offset=-1&format=json`),

  // first install on a non-empty stream
  createJson("s-nonempty", [{ id: "x" }]),
  post("first install on non-empty stream", `${S("s-nonempty")}/_schema`, { schema: OBJ_SCHEMA }),
  post("routingKey only on non-empty stream", `${S("s-nonempty")}/_schema`, { routingKey: { jsonPointer: "/id", required: true } }),
  get("GET non-empty after routingKey", `${S("s-nonempty")}/_schema`),

  // @prisma/dev prisma-wal
  { ...createJson("prisma-wal"), headers: { ...JSONCT } },
  post("prisma-wal: profile", `${S("prisma-wal")}/_profile`, PRISMA_WAL_PROFILE),
  get("prisma-wal: GET _schema before", `${S("prisma-wal")}/_schema`),
  post("prisma-wal: install schema+search", `${S("prisma-wal")}/_schema`, PRISMA_WAL_SCHEMA),
  { ...get("prisma-wal: GET _schema after", `${S("prisma-wal")}/_schema`), ...DEV_CHECK },
  post("prisma-wal: re-post same", `${S("prisma-wal")}/_schema`, PRISMA_WAL_SCHEMA),
  post("prisma-wal: PUT again (idempotent create)", S("prisma-wal"), undefined, { method: "PUT", headers: JSONCT }),
  post("prisma-wal: profile again", `${S("prisma-wal")}/_profile`, PRISMA_WAL_PROFILE),
  get("prisma-wal: GET _profile", `${S("prisma-wal")}/_profile`),
  { ...get("prisma-wal: GET _schema after profile again", `${S("prisma-wal")}/_schema`), ...DEV_CHECK },
];

// ------------------------------------------------------------------ appends

const APPEND_SCHEMA = {
  type: "object",
  properties: { id: { type: "string" }, n: { type: "integer", minimum: 0 }, at: { type: "string", format: "date-time" }, email: { type: "string", format: "email" } },
  required: ["id", "n"],
  additionalProperties: false,
};

const appends = [
  createJson("a-val"),
  post("install schema with routingKey", `${S("a-val")}/_schema`, { schema: APPEND_SCHEMA, routingKey: { jsonPointer: "/id", required: true } }),
  post("valid", S("a-val"), [{ id: "k1", n: 1, at: "2026-01-02T03:04:05Z" }, { id: "k2", n: 2, at: "2026-01-02T03:04:05.123456789+01:00" }, { id: "k1", n: 3 }]),
  post("valid single object", S("a-val"), { id: "k3", n: 4 }),
  post("several errors in one record", S("a-val"), [{ id: 5, n: -1, extra: true }]),
  post("errors in two records", S("a-val"), [{ id: "ok", n: 1 }, { n: "x" }, { id: 1 }]),
  post("missing required", S("a-val"), [{ n: 1 }]),
  post("date-time bad (no T)", S("a-val"), [{ id: "a", n: 1, at: "2026-01-02 03:04:05Z" }]),
  post("date-time bad (no zone)", S("a-val"), [{ id: "a", n: 1, at: "2026-01-02T03:04:05" }]),
  post("date-time bad (month 13)", S("a-val"), [{ id: "a", n: 1, at: "2026-13-02T03:04:05Z" }]),
  post("date-time bad (hour 25)", S("a-val"), [{ id: "a", n: 1, at: "2026-01-02T25:04:05Z" }]),
  post("date-time lower-case t/z", S("a-val"), [{ id: "a", n: 1, at: "2026-01-02t03:04:05z" }]),
  post("date-time 10 fraction digits", S("a-val"), [{ id: "a", n: 1, at: "2026-01-02T03:04:05.1234567890Z" }]),
  post("date-time leap second", S("a-val"), [{ id: "a", n: 1, at: "2026-12-31T23:59:60Z" }]),
  post("date-time number (type error only)", S("a-val"), [{ id: "a", n: 1, at: 5 }]),
  post("email format ignored", S("a-val"), [{ id: "a", n: 1, email: "not an email" }]),
  post("Stream-Key not allowed", S("a-val"), [{ id: "k9", n: 1 }], { headers: { ...JSONCT, "stream-key": "k9" } }),
  post("invalid JSON body", S("a-val"), "{", { headers: JSONCT }),
  post("empty array", S("a-val"), "[]", { headers: JSONCT }),
  post("text/plain append to JSON stream", S("a-val"), "hello", { headers: TEXTCT }),
  get("read all", `${S("a-val")}?offset=-1&format=json`),
  post("date-time ok (Feb 29 in 2028)", S("a-val"), [{ id: "a", n: 1, at: "2028-02-29T03:04:05Z" }]),
  // the original accepts these (Date.parse rolls them over); last, so that the stream stays comparable
  post("date-time bad (Feb 30)", S("a-val"), [{ id: "a", n: 1, at: "2026-02-30T03:04:05Z" }]),
  post("date-time bad (Feb 29 in 2026)", S("a-val"), [{ id: "a", n: 1, at: "2026-02-29T03:04:05Z" }]),

  createJson("a-rk"),
  post("rk: install", `${S("a-rk")}/_schema`, { schema: { type: "object" }, routingKey: { jsonPointer: "/t/id", required: true } }),
  post("rk: missing", S("a-rk"), [{ t: {} }]),
  post("rk: number", S("a-rk"), [{ t: { id: 7 } }]),
  post("rk: null", S("a-rk"), [{ t: { id: null } }]),
  post("rk: object", S("a-rk"), [{ t: { id: {} } }]),
  post("rk: parent not object", S("a-rk"), [{ t: "x" }]),
  post("rk: empty string", S("a-rk"), [{ t: { id: "" } }]),
  post("rk: batch one bad", S("a-rk"), [{ t: { id: "a" } }, { t: {} }]),
  post("rk: Stream-Key header", S("a-rk"), [{ t: { id: "a" } }], { headers: { ...JSONCT, "stream-key": "a" } }),
  iso("ae", "rk: Stream-Key empty header", "POST", "", [{ t: { id: "a" } }], { headers: { ...JSONCT, "stream-key": "" }, setup: (n) => [{ method: "POST", path: `${S(n)}/_schema`, body: JSON.stringify({ routingKey: { jsonPointer: "/t/id", required: true } }), headers: JSONCT }] }),
  post("rk: optional", `${S("a-rk")}/_schema`, { routingKey: { jsonPointer: "/t/id", required: false } }),
  post("rk: optional missing ok", S("a-rk"), [{ t: {} }, { t: { id: "b" } }]),
  post("rk: optional number still bad", S("a-rk"), [{ t: { id: 1 } }]),
  get("rk: _routing_keys", `${S("a-rk")}/_routing_keys`),

  createText("a-text"),
  post("text: schema on text stream", `${S("a-text")}/_schema`, { schema: { type: "object" } }),
  get("text: GET _schema", `${S("a-text")}/_schema`),
  post("text: append after schema", S("a-text"), "hello", { headers: TEXTCT }),
  post("text: append JSON content-type to text stream", S("a-text"), { a: 1 }),
  createText("a-text2"),
  post("text2: routingKey only", `${S("a-text2")}/_schema`, { routingKey: { jsonPointer: "/id", required: true } }),
  post("text2: append with Stream-Key", S("a-text2"), "x", { headers: { ...TEXTCT, "stream-key": "k" } }),
  post("text2: append without key", S("a-text2"), "y", { headers: TEXTCT }),
  get("text2: _routing_keys", `${S("a-text2")}/_routing_keys`),

  // state-protocol record validation
  createJson("a-sp"),
  post("sp: profile", `${S("a-sp")}/_profile`, PRISMA_WAL_PROFILE),
  post("sp: valid insert", S("a-sp"), [{ type: "public.todos", key: "1", value: { id: 1 }, headers: { operation: "insert", timestamp: TS, txid: "9" } }]),
  post("sp: valid update/delete", S("a-sp"), [
    { type: "public.todos", key: "1", value: { id: 1, t: 2 }, old_value: { id: 1 }, headers: { operation: "update" } },
    { type: "public.todos", key: "1", old_value: { id: 1 }, headers: { operation: "delete" } },
  ]),
  post("sp: control snapshot-start", S("a-sp"), [{ headers: { control: "snapshot-start" } }]),
  post("sp: control reset with offset", S("a-sp"), [{ headers: { control: "reset", offset: "-1" } }]),
  post("sp: control bad value", S("a-sp"), [{ headers: { control: "pause" } }]),
  post("sp: control extra key", S("a-sp"), [{ headers: { control: "snapshot-end" }, type: "x" }]),
  post("sp: control bad offset", S("a-sp"), [{ headers: { control: "reset", offset: "zz" } }]),
  post("sp: mix control and operation", S("a-sp"), [{ headers: { control: "reset", operation: "insert" } }]),
  post("sp: oldValue camelCase", S("a-sp"), [{ type: "t", key: "1", value: {}, oldValue: {}, headers: { operation: "update" } }]),
  post("sp: unknown key", S("a-sp"), [{ type: "t", key: "1", value: {}, extra: 1, headers: { operation: "insert" } }]),
  post("sp: numeric key", S("a-sp"), [{ type: "t", key: 1, value: {}, headers: { operation: "insert" } }]),
  post("sp: empty key", S("a-sp"), [{ type: "t", key: "", value: {}, headers: { operation: "insert" } }]),
  post("sp: missing type", S("a-sp"), [{ key: "1", value: {}, headers: { operation: "insert" } }]),
  post("sp: empty type", S("a-sp"), [{ type: "", key: "1", value: {}, headers: { operation: "insert" } }]),
  post("sp: bad operation", S("a-sp"), [{ type: "t", key: "1", value: {}, headers: { operation: "upsert" } }]),
  post("sp: missing headers", S("a-sp"), [{ type: "t", key: "1", value: {} }]),
  post("sp: headers not object", S("a-sp"), [{ type: "t", key: "1", value: {}, headers: "x" }]),
  post("sp: headers unknown key", S("a-sp"), [{ type: "t", key: "1", value: {}, headers: { operation: "insert", foo: 1 } }]),
  post("sp: bad timestamp", S("a-sp"), [{ type: "t", key: "1", value: {}, headers: { operation: "insert", timestamp: "yesterday" } }]),
  post("sp: empty txid", S("a-sp"), [{ type: "t", key: "1", value: {}, headers: { operation: "insert", txid: "" } }]),
  post("sp: numeric txid", S("a-sp"), [{ type: "t", key: "1", value: {}, headers: { operation: "insert", txid: 5 } }]),
  post("sp: insert without value", S("a-sp"), [{ type: "t", key: "1", headers: { operation: "insert" } }]),
  post("sp: update without value", S("a-sp"), [{ type: "t", key: "1", old_value: {}, headers: { operation: "update" } }]),
  post("sp: delete without old_value", S("a-sp"), [{ type: "t", key: "1", headers: { operation: "delete" } }]),
  post("sp: non-object record", S("a-sp"), [5]),
  post("sp: null record", S("a-sp"), [null]),
  post("sp: array record", S("a-sp"), [[]]),
  post("sp: second record bad", S("a-sp"), [{ type: "t", key: "1", value: {}, headers: { operation: "insert" } }, { type: "t" }]),
  post("sp: Stream-Key header", S("a-sp"), [{ type: "t", key: "1", value: {}, headers: { operation: "insert" } }], { headers: { ...JSONCT, "stream-key": "k" } }),
  get("sp: read json", `${S("a-sp")}?offset=-1&format=json`),
  get("sp: _routing_keys", `${S("a-sp")}/_routing_keys`),
  // state-protocol + prisma-wal schema: schema validation and profile validation together
  createJson("a-sp2"),
  post("sp2: profile", `${S("a-sp2")}/_profile`, PRISMA_WAL_PROFILE),
  post("sp2: schema", `${S("a-sp2")}/_schema`, PRISMA_WAL_SCHEMA),
  post("sp2: valid change", S("a-sp2"), [{ type: "public.t", key: "1", value: { id: 1 }, old_value: null, headers: { operation: "insert", timestamp: TS } }]),
  post("sp2: missing timestamp (schema error)", S("a-sp2"), [{ type: "public.t", key: "1", value: { id: 1 }, headers: { operation: "insert" } }]),
  post("sp2: bad timestamp (profile and schema)", S("a-sp2"), [{ type: "public.t", key: "1", value: { id: 1 }, headers: { operation: "insert", timestamp: "2026-01-02" } }]),
  post("sp2: control record vs schema", S("a-sp2"), [{ headers: { control: "snapshot-start" } }]),
  get("sp2: read json", `${S("a-sp2")}?offset=-1&format=json`),
];

// ------------------------------------------------------------------ keyed reads and _routing_keys

const keys = [
  createJson("k-main"),
  post("install routingKey", `${S("k-main")}/_schema`, { routingKey: { jsonPointer: "/k", required: false } }),
  post("append keyed", S("k-main"), [{ k: "b", v: 1 }, { k: "a", v: 2 }, { k: "a/b", v: 3 }, { k: "é", v: 4 }, { k: "Z", v: 5 }, { v: 6 }, { k: "b", v: 7 }, { k: "\u{1F600}", v: 8 }, { k: "\uFF5E", v: 9 }, { k: "a b", v: 10 }, { k: "%", v: 11 }]),
  get("/pk/a", `${S("k-main")}/pk/a?offset=-1`),
  get("/pk/b", `${S("k-main")}/pk/b?offset=-1`),
  get("/pk/a%2Fb", `${S("k-main")}/pk/a%2Fb?offset=-1`),
  get("/pk/a/b (raw slash)", `${S("k-main")}/pk/a/b?offset=-1`),
  get("/pk/%C3%A9", `${S("k-main")}/pk/%C3%A9?offset=-1`),
  get("/pk/a%20b", `${S("k-main")}/pk/a%20b?offset=-1`),
  get("/pk/a+b", `${S("k-main")}/pk/a+b?offset=-1`),
  get("/pk/%25", `${S("k-main")}/pk/%25?offset=-1`),
  get("/pk/none", `${S("k-main")}/pk/none?offset=-1`),
  get("/pk/ (empty key)", `${S("k-main")}/pk/?offset=-1`),
  get("/pk/a format=json", `${S("k-main")}/pk/a?offset=-1&format=json`),
  get("/pk/b without offset", `${S("k-main")}/pk/b`),
  get("?key=a", `${S("k-main")}?key=a&offset=-1`),
  get("?key=a%2Fb", `${S("k-main")}?key=a%2Fb&offset=-1`),
  get("?key=a+b", `${S("k-main")}?key=a+b&offset=-1`),
  get("?key= (empty = no filter)", `${S("k-main")}?key=&offset=-1`),
  get("/pk/b?key=a (path wins)", `${S("k-main")}/pk/b?key=a&offset=-1`),
  get("/pk/a?offset=now", `${S("k-main")}/pk/a?offset=now`),
  get("/pk/a long-poll at tail", `${S("k-main")}/pk/a?offset=now&live=long-poll&timeout=200ms`, { volatile: [] }),
  { label: "HEAD /pk/a", method: "HEAD", path: `${S("k-main")}/pk/a` },
  get("_routing_keys default", `${S("k-main")}/_routing_keys`),
  get("_routing_keys limit=2", `${S("k-main")}/_routing_keys?limit=2`),
  get("_routing_keys limit=2 after=a", `${S("k-main")}/_routing_keys?limit=2&after=a`),
  get("_routing_keys limit=2 after=a%2Fb", `${S("k-main")}/_routing_keys?limit=2&after=a%2Fb`),
  get("_routing_keys after=last", `${S("k-main")}/_routing_keys?after=%EF%BD%9E`),
  get("_routing_keys after=zzz", `${S("k-main")}/_routing_keys?after=zzzz`),
  get("_routing_keys limit=500", `${S("k-main")}/_routing_keys?limit=500`),
  get("_routing_keys limit=1", `${S("k-main")}/_routing_keys?limit=1`),
  get("_routing_keys limit=0", `${S("k-main")}/_routing_keys?limit=0`),
  get("_routing_keys limit=501", `${S("k-main")}/_routing_keys?limit=501`),
  get("_routing_keys limit=abc", `${S("k-main")}/_routing_keys?limit=abc`),
  get("_routing_keys limit=1.5", `${S("k-main")}/_routing_keys?limit=1.5`),
  get("_routing_keys limit=-1", `${S("k-main")}/_routing_keys?limit=-1`),
  get("_routing_keys limit= (empty)", `${S("k-main")}/_routing_keys?limit=`),
  get("_routing_keys limit=+5", `${S("k-main")}/_routing_keys?limit=+5`),
  get("_routing_keys limit=05", `${S("k-main")}/_routing_keys?limit=05`),
  get("_routing_keys after= (empty)", `${S("k-main")}/_routing_keys?after=`),
  post("_routing_keys POST", `${S("k-main")}/_routing_keys`, {}),
  { label: "_routing_keys DELETE", method: "DELETE", path: `${S("k-main")}/_routing_keys` },
  createJson("k-plain", [{ k: "a" }]),
  get("unkeyed: _routing_keys", `${S("k-plain")}/_routing_keys`),
  get("unkeyed: /pk/a", `${S("k-plain")}/pk/a?offset=-1`),
  createText("k-text"),
  post("text: append with Stream-Key", S("k-text"), "one", { headers: { ...TEXTCT, "stream-key": "x" } }),
  post("text: append with other key", S("k-text"), "two", { headers: { ...TEXTCT, "stream-key": "y" } }),
  post("text: append with empty key", S("k-text"), "three", { headers: { ...TEXTCT, "stream-key": "" } }),
  get("text: /pk/x", `${S("k-text")}/pk/x?offset=-1`),
  get("text: ?key=y", `${S("k-text")}?key=y&offset=-1`),
  get("text: _routing_keys (Stream-Key only)", `${S("k-text")}/_routing_keys`),
  createJson("k-hdr"),
  post("json Stream-Key header", S("k-hdr"), [{ a: 1 }, { a: 2 }], { headers: { ...JSONCT, "stream-key": "h" } }),
  get("json Stream-Key: /pk/h", `${S("k-hdr")}/pk/h?offset=-1`),
  get("json Stream-Key: _routing_keys", `${S("k-hdr")}/_routing_keys`),
];

// ------------------------------------------------------------------ methods, missing, deleted, bad escapes

const SUBS = ["_profile", "_schema", "_routing_keys", "pk/a", "touch/meta", "touch/wait", "touch/templates/activate", "_details", "_index_status"];

const names = (v) => (Array.isArray(v) ? v.map((i) => i.name) : []);

const misc = [
  createJson("m-x"),
  ...["PUT", "DELETE", "PATCH"].flatMap((m) => ["_profile", "_schema", "_routing_keys", "touch/meta"].map((s) => ({ label: `${m} ${s}`, method: m, path: `${S("m-x")}/${s}`, body: "{}", headers: JSONCT }))),
  { label: "HEAD _schema", method: "HEAD", path: `${S("m-x")}/_schema` },
  { label: "HEAD _profile", method: "HEAD", path: `${S("m-x")}/_profile` },
  createJson("m-pkpost"),
  { label: "POST pk/a", method: "POST", path: `${S("m-pkpost")}/pk/a`, body: "{}", headers: JSONCT },
  get("after POST pk/a: read stream", `${S("m-pkpost")}?offset=-1`),
  createText("m-pkput"),
  { label: "PUT pk/a", method: "PUT", path: `${S("m-pkput")}/pk/a`, body: "", headers: JSONCT },
  { label: "PUT pk/a same content type", method: "PUT", path: `${S("m-pkput")}/pk/a`, body: "", headers: TEXTCT },
  createJson("m-pkdel"),
  { label: "DELETE pk/a", method: "DELETE", path: `${S("m-pkdel")}/pk/a` },
  get("after DELETE pk/a: read stream", `${S("m-pkdel")}?offset=-1`),
  createJson("m-schemadel"),
  { label: "DELETE _schema (then read)", method: "DELETE", path: `${S("m-schemadel")}/_schema` },
  get("after DELETE _schema: read stream", `${S("m-schemadel")}?offset=-1`),
  get("GET _details", `${S("m-x")}/_details`, { volatile: ["stream", "storage", "index_status", "object_store_requests", "total_size_bytes"] }),
  get("GET _index_status", `${S("m-x")}/_index_status`, { volatile: ["stream", "segments", "manifest", "routing_key_index", "routing_key_lexicon", "exact_indexes", "search_families", "bundled_companions", "desired_index_plan_generation", "index_status"] }),
  // Introspection (Prisma Studio): shapes only (keys and JSON types); figures differ by design.
  createJson("m-intro"),
  post("intro: install profile", `${S("m-intro")}/_profile`, PRISMA_WAL_PROFILE),
  post("intro: install schema", `${S("m-intro")}/_schema`, PRISMA_WAL_SCHEMA),
  post("intro: append", S("m-intro"), [{ type: "t", key: "k1", value: { a: 1 }, headers: { operation: "insert", timestamp: TS } }]),
  get("intro: GET _details", `${S("m-intro")}/_details`, { shape: true }),
  get("intro: GET _index_status", `${S("m-intro")}/_index_status`, { shape: true }),
  get("intro: GET /v1/server/_details", "/v1/server/_details", { shape: true }),
  get("intro: GET /v1/streams", "/v1/streams?limit=1000", { shape: true }),
  // Names only, leaving out m-pkdel (the original deleted it through DELETE …/pk/a above)
  // and __stream_metrics__ (compared on its own).
  get("intro: GET /v1/streams names", "/v1/streams?limit=1000", { project: (v) => names(v).filter((n) => n !== "m-pkdel" && n !== "__stream_metrics__") }),
  get("intro: __stream_metrics__ listed", "/v1/streams?limit=1000", { project: (v) => names(v).includes("__stream_metrics__") }),
  get("intro: GET /v1/streams?limit=0", "/v1/streams?limit=0"),
  get("intro: GET /v1/streams?limit=x", "/v1/streams?limit=x"),
  get("GET touch/wait", `${S("m-x")}/touch/wait`),
  post("POST touch/meta (no profile)", `${S("m-x")}/touch/meta`, {}),
  get("GET _schema/ (trailing slash)", `${S("m-x")}/_schema/`),
  get("GET _profile/ (trailing slash)", `${S("m-x")}/_profile/`),
  get("GET _schema/extra", `${S("m-x")}/_schema/extra`),
  get("GET _SCHEMA (case)", `${S("m-x")}/_SCHEMA`),
  // missing
  ...SUBS.map((s) => get(`missing: GET ${s}`, `${S("m-missing")}/${s}`)),
  ...["_profile", "_schema", "_routing_keys", "touch/wait", "touch/templates/activate"].map((s) => post(`missing: POST ${s}`, `${S("m-missing")}/${s}`, {})),
  post("missing: POST _profile valid", `${S("m-missing")}/_profile`, PRISMA_WAL_PROFILE),
  post("missing: POST _schema valid", `${S("m-missing")}/_schema`, { schema: { type: "object" } }),
  post("missing: POST _schema invalid JSON", `${S("m-missing")}/_schema`, "{", { headers: JSONCT }),
  post("missing: POST _profile invalid JSON", `${S("m-missing")}/_profile`, "{", { headers: JSONCT }),
  // deleted
  createJson("m-del"),
  post("del: install profile", `${S("m-del")}/_profile`, PRISMA_WAL_PROFILE),
  post("del: install schema", `${S("m-del")}/_schema`, { schema: { type: "object" }, routingKey: { jsonPointer: "/k", required: false } }),
  del("delete m-del", S("m-del")),
  ...SUBS.map((s) => get(`deleted: GET ${s}`, `${S("m-del")}/${s}`)),
  ...["_profile", "_schema"].map((s) => post(`deleted: POST ${s}`, `${S("m-del")}/${s}`, {})),
  post("deleted: POST _profile valid", `${S("m-del")}/_profile`, PRISMA_WAL_PROFILE),
  { ...createJson("m-del"), label: "recreate m-del" },
  get("recreated: GET _profile", `${S("m-del")}/_profile`),
  get("recreated: GET _schema", `${S("m-del")}/_schema`),
  // bad % escapes
  get("%zz stream name", "/v1/stream/%zz"),
  get("%zz stream name _schema", "/v1/stream/%zz/_schema"),
  post("%zz stream name _profile", "/v1/stream/%zz/_profile", PRISMA_WAL_PROFILE),
  get("truncated % in name", "/v1/stream/a%2"),
  put("create %zz stream", "/v1/stream/%zz", "", { headers: JSONCT }),
  get("/pk/%zz", `${S("m-x")}/pk/%zz?offset=-1`),
  get("/pk/%", `${S("m-x")}/pk/%?offset=-1`),
  get("/pk/%C3 (invalid UTF-8)", `${S("m-x")}/pk/%C3?offset=-1`),
  get("?key=%zz", `${S("m-x")}?key=%zz&offset=-1`),
  get("_routing_keys?after=%zz", `${S("k-main")}/_routing_keys?after=%zz`),
  get("_schema?x=%zz", `${S("m-x")}/_schema?x=%zz`),
  // encoded names
  createJson("m%2Fslash"),
  get("encoded slash name: _schema", `${S("m%2Fslash")}/_schema`),
  get("raw slash name: _schema", `/v1/stream/m/slash/_schema`),
  post("raw slash name: POST _schema", `/v1/stream/m/slash/_schema`, { schema: { type: "object" } }),
  get("encoded slash name: _profile", `${S("m%2Fslash")}/_profile`),
  get("encoded _schema suffix", `${S("m-x")}/%5Fschema`),
];

// ------------------------------------------------------------------ touch

const TOUCH_TEMPLATE = { entity: "public.todos", fields: [{ name: "status", encoding: "string" }] };
const TABLE_KEY = "feadeb84d447fd63"; // tableKey("public.todos"), spec golden vector
const TOUCH_VOLATILE = ["flushAtMs", "bucketStartMs", "lastFlushAtMs", "flushIntervalMsMaxLast10s", "flushIntervalMsP95Last10s", "activeFromTouchOffset"];
const touchWait = (label, body, extra = {}) => post(label, `${S("t-1")}/touch/wait`, body, { volatile: TOUCH_VOLATILE, ...extra });

const touch = [
  createJson("t-1"),
  get("meta before touch", `${S("t-1")}/touch/meta`),
  post("install touch profile", `${S("t-1")}/_profile`, PRISMA_WAL_PROFILE),
  { label: "PUT touch/meta", method: "PUT", path: `${S("t-1")}/touch/meta`, body: "{}", headers: JSONCT },
  get("GET touch/wait", `${S("t-1")}/touch/wait`),
  get("GET touch/templates/activate", `${S("t-1")}/touch/templates/activate`),
  get("meta fresh", `${S("t-1")}/touch/meta`, { shape: true }),
  get("meta settle bad", `${S("t-1")}/touch/meta?settle=now`),
  get("meta timeoutMs bad", `${S("t-1")}/touch/meta?timeoutMs=soon`),
  post("activate invalid JSON", `${S("t-1")}/touch/templates/activate`, "{", { headers: JSONCT }),
  post("activate empty", `${S("t-1")}/touch/templates/activate`, { templates: [] }),
  post("activate bad ttl", `${S("t-1")}/touch/templates/activate`, { templates: [TOUCH_TEMPLATE], inactivityTtlMs: -1 }),
  post("activate blank entity", `${S("t-1")}/touch/templates/activate`, { templates: [{ entity: " ", fields: [{ name: "a", encoding: "string" }] }] }),
  post("activate four fields", `${S("t-1")}/touch/templates/activate`, { templates: [{ entity: "e", fields: ["a", "b", "c", "d"].map((name) => ({ name, encoding: "string" })) }] }),
  post("activate", `${S("t-1")}/touch/templates/activate`, { templates: [TOUCH_TEMPLATE, { entity: "public.todos", fields: [{ name: "x", encoding: "uuid" }] }] }, { volatile: TOUCH_VOLATILE }),
  post("activate again", `${S("t-1")}/touch/templates/activate`, { templates: [TOUCH_TEMPLATE] }, { volatile: TOUCH_VOLATILE }),
  post("activate other encoding", `${S("t-1")}/touch/templates/activate`, { templates: [{ entity: "public.todos", fields: [{ name: "status", encoding: "int64" }] }] }, { volatile: TOUCH_VOLATILE }),
  touchWait("wait invalid JSON", "{", { headers: JSONCT }),
  touchWait("wait no keys", { cursor: "now" }),
  touchWait("wait keys not array", { keys: "a", cursor: "now" }),
  touchWait("wait blank key", { keys: [" "], cursor: "now" }),
  touchWait("wait duplicate keyIds", { keyIds: [1, 1], cursor: "now" }),
  touchWait("wait negative keyId", { keyIds: [-1], cursor: "now" }),
  touchWait("wait no cursor", { keys: ["a"] }),
  touchWait("wait bad cursor", { keys: ["a"], cursor: "later" }),
  touchWait("wait timeoutMs string", { keys: ["a"], cursor: "now", timeoutMs: "5" }),
  touchWait("wait interestMode bad", { keys: ["a"], cursor: "now", interestMode: "all" }),
  touchWait("wait templateIdsUsed bad", { keys: ["a"], cursor: "now", templateIdsUsed: [""] }),
  touchWait("wait exact not bool", { keys: ["a"], cursor: "now", exact: 1 }),
  touchWait("wait exact non-literal", { keys: ["a"], cursor: "now", exact: true }),
  touchWait("wait exact coarse", { keys: [TABLE_KEY], cursor: "now", exact: true, interestMode: "coarse" }),
  touchWait("wait declare bad", { keys: ["a"], cursor: "now", declareTemplates: [{ entity: "e", fields: [] }] }),
  touchWait("wait now timeout 0", { keys: [TABLE_KEY], cursor: "now", timeoutMs: 0 }),
  touchWait("wait coarse now timeout 0", { keys: [TABLE_KEY], cursor: "now", timeoutMs: 0, interestMode: "coarse" }),
  touchWait("wait keyIds timeout 0", { keyIds: [3561487715], cursor: "now", timeoutMs: 0 }),
  touchWait("wait stale epoch", { keys: [TABLE_KEY], cursor: "0123456789abcdef:0", timeoutMs: 0 }),
  post("append insert", S("t-1"), [{ type: "public.todos", key: "1", value: { id: 1, status: "open" }, headers: { operation: "insert" } }]),
  get("meta settled", `${S("t-1")}/touch/meta?settle=flush&timeoutMs=3000`, { shape: true }),
  get("meta settled values", `${S("t-1")}/touch/meta?settle=flush&timeoutMs=3000`, {
    project: (m) => ({ settled: m.settled, generation: m.generation, pendingKeys: m.pendingKeys, bucketMaxSourceOffsetSeq: m.bucketMaxSourceOffsetSeq, activeTemplates: m.activeTemplates }),
  }),
  // From generation 0 of each server's own epoch: the insert touched the table key.
  get("meta epoch", `${S("t-1")}/touch/meta`, { shape: true }),
  touchWait("wait from generation 0 (table key)", undefined, { fromPrevious: (m) => ({ keys: [TABLE_KEY], cursor: `${m?.epoch}:0`, timeoutMs: 0 }) }),
  get("meta epoch again", `${S("t-1")}/touch/meta`, { shape: true }),
  touchWait("wait coarse from generation 0 (table key)", undefined, { fromPrevious: (m) => ({ keys: [TABLE_KEY], cursor: `${m?.epoch}:0`, timeoutMs: 0, interestMode: "coarse" }) }),
  get("meta epoch once more", `${S("t-1")}/touch/meta`, { shape: true }),
  touchWait("wait from generation 0 (other key)", undefined, { fromPrevious: (m) => ({ keys: ["0123456789abcdef"], cursor: `${m?.epoch}:0`, timeoutMs: 0, interestMode: "coarse" }) }),
];


// ------------------------------------------------------------------ search

const SEARCH_SCHEMA = {
  schema: { type: "object" },
  routingKey: { jsonPointer: "/user", required: true },
  search: {
    primaryTimestampField: "ts",
    aliases: { lvl: "level" },
    defaultFields: [{ field: "msg" }],
    fields: {
      ts: { kind: "date", bindings: [{ version: 1, jsonPointer: "/ts" }], column: true, exists: true, sortable: true },
      level: { kind: "keyword", bindings: [{ version: 1, jsonPointer: "/level" }], exact: true, exists: true },
      user: { kind: "keyword", bindings: [{ version: 1, jsonPointer: "/user" }], exact: true, prefix: true },
      status: { kind: "integer", bindings: [{ version: 1, jsonPointer: "/status" }], exact: true, column: true, sortable: true, aggregatable: true },
      msg: { kind: "text", bindings: [{ version: 1, jsonPointer: "/msg" }], analyzer: "unicode_word_v1" },
    },
    rollups: {
      requests: {
        dimensions: ["level"],
        intervals: ["1m"],
        measures: { n: { kind: "count" }, st: { kind: "summary", field: "status", histogram: "log2_v1" } },
      },
    },
  },
};
const SEARCH_LEVELS = ["info", "warn", "error"];
const SEARCH_BASE = Date.parse("2024-01-01T00:00:00Z");
const searchRecord = (i) => ({
  user: ["ann", "bob"][i % 2],
  level: SEARCH_LEVELS[i % 3],
  status: 200 + i * 10,
  ts: new Date(SEARCH_BASE + i * 20000).toISOString(),
  msg: `request ${i} disk ${i % 4 === 0 ? "full" : "ok"}`,
});
// Index-machinery counters that depend on how each server stores data, not on the answer.
const SEARCH_VOLATILE = [
  "indexed_segments", "indexed_segment_time_ms", "fts_section_get_ms", "fts_decode_ms", "fts_clause_estimate_ms",
  "scanned_segments", "scanned_segment_time_ms", "scanned_tail_docs", "scanned_tail_time_ms", "exact_candidate_time_ms",
  "candidate_doc_ids", "decoded_records", "json_parse_time_ms", "segment_payload_bytes_fetched", "sort_time_ms",
  "peak_hits_held", "index_families_used",
];
const Q = `${S("q-1")}`;
const sGet = (label, query) => get(label, `${Q}/_search?${query}`, { volatile: SEARCH_VOLATILE });
const sPost = (label, body) => post(label, `${Q}/_search`, body, { volatile: SEARCH_VOLATILE });
const aPost = (label, body) => post(label, `${Q}/_aggregate`, body, { volatile: SEARCH_VOLATILE });
const fGet = (label, filter, extra = "") => get(label, `${Q}${extra}?offset=-1&filter=${encodeURIComponent(filter)}`);

const search = [
  createJson("q-1"),
  post("install search schema", `${Q}/_schema`, SEARCH_SCHEMA),
  post("append records", Q, Array.from({ length: 20 }, (_, i) => searchRecord(i))),
  fGet("filter level:warn", "level:warn"),
  fGet("filter alias OR comparison", "lvl:error OR status:<=210"),
  fGet("filter NOT, has, parentheses", "status:>=300 -(level:info) has:ts"),
  fGet("filter date comparison", "ts:>=2024-01-01T00:05:00Z"),
  fGet("filter with key", "level:warn", "/pk/bob"),
  fGet("filter unknown field", "nope:1"),
  fGet("filter missing paren", "(level:warn"),
  fGet("filter bad integer", "status:>abc"),
  fGet("filter bare word", "warn"),
  fGet("filter text field", "msg:disk"),
  fGet("filter keyword comparison", "level:>a"),
  fGet("filter empty", ""),
  get("filter with sse", `${Q}?offset=-1&live=sse&filter=level:warn`),
  sPost("POST _search right after the appends", { q: "level:warn", size: 3 }),
  // The original searches records not yet in segments only once appends have been quiet
  // for 5 s (DS_SEARCH_WAL_OVERLAY_QUIET_MS); after that both answers can be compared.
  { ...sGet("GET _search level:warn", "q=level:warn&size=3"), sleepMs: 5500 },
  sGet("GET _search text", "q=disk%20full"),
  sGet("GET _search phrase", "q=%22disk%20full%22"),
  sGet("GET _search prefix", "q=user:bo*&size=2&sort=offset:asc"),
  sGet("GET _search missing q", "size=3"),
  sPost("POST _search Studio paging", { q: "level:warn", size: 3, sort: ["offset:desc"] }),
  sPost("POST _search sort by field", { q: "has:status", size: 4, sort: ["status:asc"] }),
  sPost("POST _search sort by field, second page", { q: "has:status", size: 4, sort: ["status:asc"], search_after: [230, "00000000000000000000000010"] }),
  sPost("POST _search by offset asc with search_after", { q: "user:ann", size: 2, sort: ["offset:asc"], search_after: ["00000000000000000000000010"] }),
  sPost("POST _search all", { q: "has:status", size: 500 }),
  sPost("POST _search contains", { q: "contains:x" }),
  sPost("POST _search unknown field", { q: "nope:1" }),
  sPost("POST _search size 0", { q: "level:warn", size: 0 }),
  sPost("POST _search bad sort", { q: "level:warn", sort: ["level"] }),
  sPost("POST _search track_total_hits", { q: "level:warn", track_total_hits: true }),
  post("POST _search invalid JSON", `${Q}/_search`, "{", { headers: JSONCT }),
  aPost("aggregate by level", { rollup: "requests", from: SEARCH_BASE + 30000, to: "2024-01-01T00:03:20Z", interval: "1m", group_by: ["level"] }),
  aPost("aggregate with q and measures", { rollup: "requests", from: SEARCH_BASE, to: SEARCH_BASE + 60000, interval: "1m", q: "level:warn OR level:info", measures: ["n"] }),
  aPost("aggregate unknown rollup", { rollup: "nope", from: 0, to: 1, interval: "1m" }),
  aPost("aggregate bad interval", { rollup: "requests", from: 0, to: 1, interval: "5m" }),
  aPost("aggregate to before from", { rollup: "requests", from: 10, to: 1, interval: "1m" }),
  aPost("aggregate bad group_by", { rollup: "requests", from: 0, to: 1, interval: "1m", group_by: ["user"] }),
  get("GET _aggregate", `${Q}/_aggregate`),
  createJson("q-none"),
  post("_search without search config", `${S("q-none")}/_search`, { q: "a:1" }, { volatile: SEARCH_VOLATILE }),
  get("filter without search config", `${S("q-none")}?offset=-1&filter=a:1`),
];

export const sections = [
  { name: "profile", steps: profile },
  { name: "schema", steps: schema },
  { name: "appends", steps: appends },
  { name: "keys", steps: keys },
  { name: "misc", steps: misc },
  { name: "touch", steps: touch },
  { name: "search", steps: search },
];
