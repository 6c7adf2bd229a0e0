// One `prisma dev` session as the real consumer runs it, for e2e.test.mjs: starts
// `@prisma/dev`'s server (PGlite, with our @prisma/streams-local substituted through npm
// overrides), runs SQL statements through its Postgres, waits until prisma-wal holds the
// wanted number of State Protocol records, optionally checks what a live query and Prisma
// Studio call, stops the server, and prints one JSON line with what it saw. Copied into the
// project that has @prisma/dev installed, so that the imports resolve there.
// XDG_DATA_HOME is the data root.
//
// argv[2] is a JSON object:
//   name        server name
//   stateless   true: persistenceMode "stateless" (its directory is removed on close)
//   statements  SQL statements run in order
//   want        State Protocol records to wait for in prisma-wal
//   touch       SQL statement to run while a coarse /touch/wait on the table key of
//               public.todos waits (its answer is reported)
//   studio      true: also report Prisma Studio's calls (/v1/streams, _details, _search,
//               _routing_keys, /v1/server/_details)

import { startPrismaDevServer } from "@prisma/dev";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import pg from "pg";

const opts = JSON.parse(process.argv[2]);
// The table key of public.todos (golden vector in docs/live.md).
const TODOS_TABLE_KEY = "feadeb84d447fd63";

// `n` distinct free ports: every listener stays open until all are chosen, since a port
// closed at once may be handed out again by the next listen(0) (@prisma/dev then refuses
// a port requested twice).
async function freePorts(n) {
  const listeners = [];
  try {
    for (let i = 0; i < n; i++) {
      const s = net.createServer();
      listeners.push(s);
      await new Promise((resolve, reject) => {
        s.once("error", reject);
        s.listen(0, "127.0.0.1", resolve);
      });
    }
    return listeners.map((s) => s.address().port);
  } finally {
    await Promise.all(listeners.map((s) => new Promise((resolve) => s.close(() => resolve()))));
  }
}

const call = async (url, init = {}) => {
  const r = await fetch(url, {
    ...init,
    headers: { connection: "close", "content-type": "application/json", ...(init.headers || {}) },
  });
  const text = await r.text();
  let body = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON: kept as text
  }
  return { status: r.status, contentType: r.headers.get("content-type"), body };
};

const [port, databasePort, shadowDatabasePort, streamsPort] = await freePorts(4);
const server = await startPrismaDevServer({
  name: opts.name,
  persistenceMode: opts.stateless ? "stateless" : "stateful",
  port,
  databasePort,
  shadowDatabasePort,
  streamsPort,
});
const streams = server.experimental.streams;
const dataDir = path.dirname(streams.sqlitePath);
const serverJson = JSON.parse(fs.readFileSync(path.join(dataDir, "server.json"), "utf8"));
const out = { streams, dataDir, streamsPid: serverJson.pid };
try {
  const client = new pg.Client({ connectionString: server.database.connectionString });
  await client.connect();
  for (const sql of opts.statements) await client.query(sql);

  if (opts.touch) {
    const meta = await call(`${streams.url}/touch/meta?settle=flush&timeoutMs=10000`);
    if (meta.status !== 200) throw new Error(`touch/meta answered ${meta.status} ${JSON.stringify(meta.body)}`);
    const waiting = call(`${streams.url}/touch/wait`, {
      method: "POST",
      body: JSON.stringify({ cursor: meta.body.cursor, keys: [TODOS_TABLE_KEY], interestMode: "coarse", timeoutMs: 20000 }),
    });
    // The wait is parked before the change commits (a wait that started late would see
    // the change through its cursor anyway).
    await new Promise((r) => setTimeout(r, 200));
    await client.query(opts.touch);
    out.touch = await waiting;
  }
  await client.end();

  const deadline = Date.now() + 20_000;
  for (;;) {
    const r = await call(`${streams.url}?offset=-1&format=json`);
    if (r.status !== 200) throw new Error(`reading prisma-wal answered ${r.status} ${JSON.stringify(r.body)}`);
    out.records = r.body;
    if (out.records.length >= opts.want || Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  out.schema = (await call(`${streams.url}/_schema`)).body;
  out.profile = (await call(`${streams.url}/_profile`)).body;
  out.queriesSchema = (await call(`${streams.serverUrl}/v1/stream/prisma-queries/_schema`)).body;
  if (opts.studio) {
    out.studio = {
      list: await call(`${streams.serverUrl}/v1/streams?limit=1000&offset=0`),
      details: await call(`${streams.url}/_details`),
      search: await call(`${streams.url}/_search`, {
        method: "POST",
        body: JSON.stringify({ q: "operation:update", size: 10, sort: ["offset:desc"] }),
      }),
      routingKeys: await call(`${streams.url}/_routing_keys?limit=10`),
      server: await call(`${streams.serverUrl}/v1/server/_details`),
    };
  }
} finally {
  await server.close();
}
console.log(JSON.stringify(out));
process.exit(0);
