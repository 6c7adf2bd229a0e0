#!/usr/bin/env node
"use strict";
// `npx prisma-streams-server ...` runs `prisma-streams server ...`: arguments, exit code and
// signals are forwarded. The server's stdin is a pipe held by this process, so the server
// stops when this wrapper goes away, however it goes. The wrapper also stops the server
// when its own parent goes away (npx killed without passing the signal on leaves the
// wrapper orphaned; it then stops the server and exits).

const { spawn } = require("node:child_process");
const { resolveBinary } = require("../lib/resolve-binary.cjs");

let bin;
try {
  bin = resolveBinary();
} catch (e) {
  process.stderr.write(`prisma-streams-server: ${e.message}\n`);
  process.exit(1);
}

const child = spawn(bin, ["server", "--exit-on-stdin-eof", ...process.argv.slice(2)], {
  stdio: ["pipe", "inherit", "inherit"],
  windowsHide: true,
  env: { ...process.env, PRISMA_STREAMS_MANAGED_BY: "npm" },
});

// Parent death: an orphan is re-parented (to init or a subreaper), so its ppid changes.
const PARENT_CHECK_MS = 250;
const parent = process.ppid;
if (process.platform !== "win32") {
  const watch = setInterval(() => {
    if (process.ppid === parent) return;
    clearInterval(watch);
    try {
      child.kill("SIGTERM");
    } catch {
      // already gone
    }
  }, PARENT_CHECK_MS);
  watch.unref();
}

for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.on(sig, () => {
    try {
      child.kill(sig);
    } catch {
      // already gone
    }
  });
}

child.on("error", (e) => {
  process.stderr.write(`prisma-streams-server: cannot run ${bin}: ${e.message}\n`);
  process.exit(1);
});

child.on("exit", (code, signal) => {
  if (signal) {
    process.removeAllListeners(signal);
    process.kill(process.pid, signal);
  } else {
    process.exit(code ?? 1);
  }
});
