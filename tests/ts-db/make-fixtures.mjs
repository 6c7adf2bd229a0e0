#!/usr/bin/env node
// Builds the data directories of the original TypeScript local server that
// tests/ts_takeover.rs takes over, from the published packages (nothing binary is
// committed):
//
//   node tests/ts-db/make-fixtures.mjs OUT_DIR
//
// OUT_DIR/pkg-<version>/   npm installs of @prisma/streams-local@<version> and bun
// OUT_DIR/v24/fx/          written by 0.1.11 (schema version 24)
// OUT_DIR/v11/fx/          written by 0.1.2 (schema version 11, touch in the registry)
// OUT_DIR/half24/fx/       the v11 directory after 0.1.11 tried to open it: stamped 24
//                          but missing the columns of versions 14-24 (the original's
//                          migration bug); 0.1.11's error is in half24/open.json
// OUT_DIR/<dir>/answers.json  what the original answered (see scenario.mjs)
// OUT_DIR/done             written last: a hash of these scripts; a complete OUT_DIR made
//                          by the same scripts is reused as is.
//
// Needs Node.js and npm with access to the npm registry. Exits 3 when the packages
// cannot be installed (no network), 1 on any other failure.
import { execFileSync } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const BUN_VERSION = "1.4.5";
const out = path.resolve(process.argv[2] ?? "target/ts-db-fixtures");
// The fixtures are reused while these scripts are unchanged.
const stamp = crypto.createHash("sha256")
  .update(fs.readFileSync(path.join(here, "scenario.mjs")))
  .update(fs.readFileSync(fileURLToPath(import.meta.url)))
  .digest("hex");
const done = path.join(out, "done");
if (fs.existsSync(done) && fs.readFileSync(done, "utf8").trim() === stamp) process.exit(0);
fs.rmSync(done, { force: true });

function install(version) {
  const dir = path.join(out, `pkg-${version}`);
  const marker = path.join(dir, "node_modules/@prisma/streams-local/package.json");
  if (!(fs.existsSync(marker) && fs.existsSync(path.join(dir, "node_modules/.bin/bun")))) {
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, "package.json"), JSON.stringify({ name: `ts-db-${version}`, private: true, type: "module" }));
    try {
      execFileSync("npm", ["install", "--no-audit", "--no-fund", "--loglevel=error",
        `@prisma/streams-local@${version}`, `bun@${BUN_VERSION}`], { cwd: dir, stdio: ["ignore", "inherit", "inherit"], timeout: 300_000 });
    } catch (e) {
      console.error(`cannot install @prisma/streams-local@${version}: ${e.message}`);
      process.exit(3);
    }
  }
  fs.copyFileSync(path.join(here, "scenario.mjs"), path.join(dir, "scenario.mjs"));
  return dir;
}

function bun(pkg, root, args) {
  execFileSync(path.join(pkg, "node_modules/.bin/bun"), ["scenario.mjs", ...args], {
    cwd: pkg, env: { ...process.env, DS_LOCAL_DATA_ROOT: root }, stdio: ["ignore", "inherit", "inherit"], timeout: 120_000,
  });
}

function fresh(dir) {
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

const current = install("0.1.11");
const legacy = install("0.1.2");

const v24 = fresh(path.join(out, "v24"));
bun(current, v24, ["write", "fx", path.join(v24, "answers.json"), "current"]);

const v11 = fresh(path.join(out, "v11"));
bun(legacy, v11, ["write", "fx", path.join(v11, "answers.json"), "legacy"]);

const half = fresh(path.join(out, "half24"));
fs.cpSync(path.join(v11, "fx"), path.join(half, "fx"), { recursive: true });
fs.copyFileSync(path.join(v11, "answers.json"), path.join(half, "answers.json"));
bun(current, half, ["open", "fx", path.join(half, "open.json")]);

fs.writeFileSync(done, stamp + "\n");
console.error(`fixtures written to ${out}`);
