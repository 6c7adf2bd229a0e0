// One `prisma dev` session as the real consumer runs it, for e2e.test.mjs: starts
// `@prisma/dev`'s server (PGlite, with our @prisma/streams-local substituted through npm
// overrides) as a stateful server named argv[2], runs the SQL statements of argv[3] (a JSON
// array) through its Postgres, waits until prisma-wal holds argv[4] State Protocol records,
// stops the server, and prints one JSON line with what it saw. Copied into the project that
// has @prisma/dev installed, so that the imports resolve there. XDG_DATA_HOME is the data.

import { startPrismaDevServer } from "@prisma/dev";
import net from "node:net";
import pg from "pg";

const [name, statementsJson, wantJson] = process.argv.slice(2);
const statements = JSON.parse(statementsJson);
const want = Number(wantJson);

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

const get = async (url) => {
  const r = await fetch(url, { headers: { connection: "close" } });
  return { status: r.status, body: await r.json() };
};

const server = await startPrismaDevServer({
  name,
  persistenceMode: "stateful",
  port: await freePort(),
  databasePort: await freePort(),
  shadowDatabasePort: await freePort(),
  streamsPort: await freePort(),
});
const streams = server.experimental.streams;
let records = [];
try {
  const client = new pg.Client({ connectionString: server.database.connectionString });
  await client.connect();
  for (const sql of statements) await client.query(sql);
  await client.end();
  const deadline = Date.now() + 20_000;
  for (;;) {
    const r = await get(`${streams.url}?offset=-1&format=json`);
    if (r.status !== 200) throw new Error(`reading prisma-wal answered ${r.status} ${JSON.stringify(r.body)}`);
    records = r.body;
    if (records.length >= want || Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const schema = await get(`${streams.url}/_schema`);
  const profile = await get(`${streams.url}/_profile`);
  const queries = await get(`${streams.serverUrl}/v1/stream/prisma-queries/_schema`);
  console.log(JSON.stringify({ streams, records, schema: schema.body, profile: profile.body, queriesSchema: queries.body }));
} finally {
  await server.close();
}
process.exit(0);
