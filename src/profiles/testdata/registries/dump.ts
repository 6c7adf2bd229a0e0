// Produces the registries under this folder with the original (prisma/streams 0.1.11).
// In an empty folder: `npm install @prisma/streams-server@0.1.11 tsx@4`, copy this file
// there, `mkdir out && npx tsx dump.ts`. Each profile is installed through its real
// `persistProfileResult` against `SchemaRegistryStore` over a stub database, and the
// registry it stores (`<name>.json`) and the builder's literal before re-parsing
// (`<name>.literal.json`; the internal metrics one equals its stored form and is not
// kept) are written out.
import { writeFileSync } from "node:fs";
import { Result } from "better-result";
import { SchemaRegistryStore } from "./node_modules/@prisma/streams-server/src/schema/registry.ts";
import { METRICS_STREAM_PROFILE_DEFINITION } from "./node_modules/@prisma/streams-server/src/profiles/metrics.ts";
import { EVLOG_STREAM_PROFILE_DEFINITION } from "./node_modules/@prisma/streams-server/src/profiles/evlog.ts";
import { OTEL_TRACES_STREAM_PROFILE_DEFINITION } from "./node_modules/@prisma/streams-server/src/profiles/otelTraces.ts";
import { buildMetricsDefaultRegistry, buildInternalMetricsRegistry } from "./node_modules/@prisma/streams-server/src/profiles/metrics/schema.ts";
import { buildEvlogDefaultRegistry } from "./node_modules/@prisma/streams-server/src/profiles/evlog/schema.ts";
import { buildOtelTracesDefaultRegistry } from "./node_modules/@prisma/streams-server/src/profiles/otelTraces/schema.ts";

function run(def: any, stream: string, file: string, literal: any) {
  const stored: Record<string, string> = {};
  const db: any = {
    getSchemaRegistry: (s: string) => (stored[s] ? { stream: s, registry_json: stored[s], updated_at_ms: 1n } : null),
    upsertSchemaRegistry: (s: string, json: string) => { stored[s] = json; },
    nowMs: () => 1n,
    updateStreamProfile: () => {},
    deleteStreamProfile: () => {},
    upsertStreamProfile: () => {},
    deleteStreamTouchState: () => {},
    getStreamProfile: () => null,
  };
  const registry = new SchemaRegistryStore(db);
  const streamRow = { content_type: "application/json", profile: null, next_offset: 0n };
  const profile = def.defaultProfile();
  const res = def.persistProfileResult({ db, registry, stream, streamRow, profile });
  if (Result.isError(res)) throw new Error(JSON.stringify(res.error));
  const returned = JSON.stringify(res.value.schemaRegistry);
  if (returned !== stored[stream]) throw new Error("stored != returned for " + stream);
  // read back through the store (what GET /_schema serves after a restart)
  const reread = JSON.stringify(new SchemaRegistryStore(db).getRegistry(stream));
  if (reread !== returned) throw new Error("reread != returned for " + stream);
  writeFileSync(`out/${file}.json`, returned + "\n");
  writeFileSync(`out/${file}.literal.json`, JSON.stringify(literal) + "\n");
  console.log(stream, returned.length, JSON.stringify(literal) === returned ? "literal==stored" : "literal!=stored");
}

run(METRICS_STREAM_PROFILE_DEFINITION, "metrics", "metrics", buildMetricsDefaultRegistry("metrics"));
run(METRICS_STREAM_PROFILE_DEFINITION, "__stream_metrics__", "internal_metrics", buildInternalMetricsRegistry("__stream_metrics__"));
run(EVLOG_STREAM_PROFILE_DEFINITION, "app-logs", "evlog", buildEvlogDefaultRegistry("app-logs"));
run(OTEL_TRACES_STREAM_PROFILE_DEFINITION, "traces", "otel_traces", buildOtelTracesDefaultRegistry("traces"));
