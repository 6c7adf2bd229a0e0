// Starts the Node reference server (@durable-streams/server) for benches/compare.sh.
//
//   node benches/node-peer.mjs --modules DIR [--port 0] [--data-dir DIR]
//
// DIR is where `npm install @durable-streams/server` ran (it holds node_modules/).
// Without --data-dir the server keeps streams in memory; with it, it is file-backed
// (log files + LMDB). Once listening it prints one JSON line on stdout:
//   {"type":"ready","pid":123,"url":"http://127.0.0.1:PORT"}
// and stops on SIGTERM/SIGINT.
import { join, resolve } from "node:path"
import { pathToFileURL } from "node:url"

const args = process.argv.slice(2)
const opt = (name, dflt) => {
  const i = args.indexOf(name)
  return i >= 0 && i + 1 < args.length ? args[i + 1] : dflt
}
const modules = opt("--modules")
if (!modules) {
  console.error("node-peer: --modules DIR is required")
  process.exit(2)
}
const port = Number(opt("--port", "0"))
const dataDir = opt("--data-dir")

const entry = join(resolve(modules), "node_modules/@durable-streams/server/dist/index.js")
const { DurableStreamTestServer } = await import(pathToFileURL(entry).href)

const server = new DurableStreamTestServer({
  port,
  host: "127.0.0.1",
  ...(dataDir ? { dataDir: resolve(dataDir) } : {}),
})
const url = await server.start()
process.stdout.write(JSON.stringify({ type: "ready", pid: process.pid, url }) + "\n")

let stopping = false
const stop = async () => {
  if (stopping) return
  stopping = true
  try {
    await server.stop()
  } finally {
    process.exit(0)
  }
}
process.on("SIGTERM", stop)
process.on("SIGINT", stop)
