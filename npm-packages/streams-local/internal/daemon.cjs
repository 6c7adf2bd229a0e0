"use strict";
// Entry for `child_process.fork()` by the Prisma CLI: starts a local server and reports
// `{ type: "ready", exports }` over IPC (or prints the exports as one JSON line when not
// forked). Stops the server and exits on SIGTERM, SIGINT or IPC disconnect.
//
//   fork(require.resolve("@prisma/streams-local/internal/daemon"), ["--name", "N", "--port", "0"])

const { startLocalDurableStreamsServer } = require("../index.cjs");

function parseArgs(argv) {
  const opts = {};
  const flags = { "--name": "name", "--port": "port", "--hostname": "hostname" };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const eq = a.indexOf("=");
    const flag = eq > 0 ? a.slice(0, eq) : a;
    if (flags[flag]) {
      const value = eq > 0 ? a.slice(eq + 1) : argv[++i];
      if (value === undefined) throw new Error(`${flag} needs a value`);
      opts[flags[flag]] = flag === "--port" ? Number(value) : value;
    } else if (!a.startsWith("--") && opts.name === undefined) {
      opts.name = a;
    } else {
      throw new Error(`unknown argument ${a}`);
    }
  }
  return opts;
}

async function main() {
  const server = await startLocalDurableStreamsServer(parseArgs(process.argv.slice(2)));
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    await server.close();
    process.exit(0);
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
  if (process.send) {
    process.on("disconnect", stop);
    process.send({ type: "ready", exports: server.exports });
  } else {
    process.stdout.write(`${JSON.stringify(server.exports)}\n`);
  }
}

main().catch((e) => {
  process.stderr.write(`prisma-streams daemon: ${e.code ? `${e.code}: ` : ""}${e.message}\n`);
  process.exit(1);
});
