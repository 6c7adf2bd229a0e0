"use strict";
// startLocalDurableStreamsServer(): spawns `prisma-streams local daemon` and resolves once
// the binary reports that it is listening. The binary's stdin is a pipe owned by this
// process: closing it is the graceful stop, and if this process dies the binary sees the
// pipe close and stops too. On POSIX the binary runs in its own process group, so a
// terminal's Ctrl-C reaches only this (host) process, which stops the server through
// close() after it has flushed what it still had to write, or by exiting.

const { spawn } = require("node:child_process");
const readline = require("node:readline");
const { resolveBinary } = require("@prisma/streams-server/resolve-binary");

const START_TIMEOUT_MS = 30_000;
const STDERR_KEEP = 8192;
/** Exit codes of `prisma-streams local daemon` and the error codes they become. */
const EXIT_CODES = { 2: "INVALID_ARGUMENT", 3: "NAME_LOCKED", 4: "PORT_IN_USE" };
/**
 * The codes the original (in-process) package's errors have for the same failures: the
 * lock library's ELOCKED and Node's EADDRINUSE. `err.code` is that code where one exists,
 * so callers written for the original keep working; `err.streamsCode` is always ours.
 */
const ORIGINAL_CODES = { NAME_LOCKED: "ELOCKED", PORT_IN_USE: "EADDRINUSE" };
/** Variables of the user's shell that must not change a local server's behaviour. */
const SCRUBBED_ENV = ["DS_AUTH_TOKEN", "DS_AUTH_TOKEN_FILE"];

function fail(streamsCode, message, extra) {
  const e = new Error(message);
  e.code = ORIGINAL_CODES[streamsCode] || streamsCode;
  e.streamsCode = streamsCode;
  Object.assign(e, extra);
  return e;
}

/** The binary's environment: the host's, minus auth variables, plus the explicit token. */
function childEnv(opts) {
  const env = { ...process.env, PRISMA_STREAMS_MANAGED_BY: "npm" };
  for (const k of SCRUBBED_ENV) delete env[k];
  if (opts.authToken !== undefined) {
    if (typeof opts.authToken !== "string") throw fail("INVALID_ARGUMENT", "authToken must be a string");
    env.DS_AUTH_TOKEN = opts.authToken;
  }
  return env;
}

function daemonArgs(opts) {
  if (opts === null || typeof opts !== "object") {
    throw fail("INVALID_ARGUMENT", "options must be an object");
  }
  const args = ["local", "daemon"];
  // null means "not given", as `??` does in the original.
  if (opts.name !== undefined && opts.name !== null) {
    if (typeof opts.name !== "string") throw fail("INVALID_ARGUMENT", "name must be a string");
    args.push("--name", opts.name);
  }
  const port = opts.port === undefined || opts.port === null ? 0 : opts.port;
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw fail("INVALID_ARGUMENT", `port must be an integer from 0 to 65535, got ${String(port)}`);
  }
  args.push("--port", String(port));
  if (opts.hostname !== undefined && opts.hostname !== null) {
    if (typeof opts.hostname !== "string") throw fail("INVALID_ARGUMENT", "hostname must be a string");
    args.push("--hostname", opts.hostname);
  }
  return args;
}

/**
 * @param {{ name?: string, port?: number, hostname?: string, authToken?: string }} [opts]
 * @returns {Promise<{ exports: object, close(): Promise<void> }>}
 */
function startLocalDurableStreamsServer(opts = {}) {
  return new Promise((resolve, reject) => {
    let args;
    let bin;
    let env;
    try {
      args = daemonArgs(opts);
      env = childEnv(opts);
      bin = resolveBinary();
    } catch (e) {
      reject(e);
      return;
    }
    const child = spawn(bin, args, {
      stdio: ["pipe", "pipe", "pipe"],
      windowsHide: true,
      // Its own process group (POSIX): Ctrl-C in a terminal does not stop it before the
      // host has flushed; the stdin pipe still stops it when the host goes away.
      detached: process.platform !== "win32",
      env,
    });
    // The pipe only ever gets closed; if the binary is already gone, that may report EPIPE.
    child.stdin.on("error", () => {});
    let stderr = "";
    let ready = false;
    let exited = child.exitCode !== null;
    const gone = new Promise((r) => child.once("exit", () => ((exited = true), r())));
    const debug = Boolean(process.env.PRISMA_STREAMS_DEBUG);
    // Keep draining both pipes for the child's whole life, or it blocks once they fill.
    child.stderr.on("data", (d) => {
      stderr = (stderr + d.toString("utf8")).slice(-STDERR_KEEP);
      if (debug) process.stderr.write(d);
    });
    const timer = setTimeout(() => {
      if (ready) return;
      child.kill("SIGKILL");
      reject(fail("START_TIMEOUT", `prisma-streams did not start within ${START_TIMEOUT_MS} ms`));
    }, START_TIMEOUT_MS);
    const lines = readline.createInterface({ input: child.stdout });
    lines.on("line", (line) => {
      if (ready) return;
      let msg;
      try {
        msg = JSON.parse(line);
      } catch {
        return;
      }
      if (!msg || msg.type !== "ready" || !msg.exports) return;
      ready = true;
      clearTimeout(timer);
      let closing = null;
      const close = () => {
        if (closing) return closing;
        closing = (async () => {
          if (exited) return;
          child.stdin.end();
          const term = setTimeout(() => child.kill("SIGTERM"), 5_000);
          const kill = setTimeout(() => child.kill("SIGKILL"), 10_000);
          await gone;
          clearTimeout(term);
          clearTimeout(kill);
        })();
        return closing;
      };
      resolve({ exports: msg.exports, close });
    });
    child.on("error", (e) => {
      clearTimeout(timer);
      if (!ready) reject(fail("SPAWN_FAILED", `cannot run ${bin}: ${e.message}`));
    });
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      if (ready) return;
      const last = stderr.trim().split("\n").pop() || `exited with ${signal || code}`;
      const message = last.replace(/^prisma-streams: /, "");
      reject(fail(EXIT_CODES[code] || "START_FAILED", message, { exitCode: code, stderr }));
    });
  });
}

module.exports = { startLocalDurableStreamsServer };
