#!/usr/bin/env node
// Packs the npm packages of one release for one platform:
//
//   node npm-packages/pack.mjs --binary <path> --out <dir> [--platform <os-arch>] [--version <v>]
//
// Writes three tarballs into <dir>: the platform package carrying the binary
// (@prisma/streams-server-<os-arch>), @prisma/streams-server and @prisma/streams-local.
// The version defaults to Cargo.toml's, so npm and the binary stay in step. The release
// flow runs it once per platform archive (the wrappers are identical each time).

import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.dirname(here);

/** Platforms we publish: npm suffix → [os, cpu, Rust target of its archive]. */
export const PLATFORMS = {
  "linux-x64": ["linux", "x64", "x86_64-unknown-linux-musl"],
  "linux-arm64": ["linux", "arm64", "aarch64-unknown-linux-musl"],
  "darwin-x64": ["darwin", "x64", "x86_64-apple-darwin"],
  "darwin-arm64": ["darwin", "arm64", "aarch64-apple-darwin"],
  "win32-x64": ["win32", "x64", "x86_64-pc-windows-msvc"],
};

function usage(msg) {
  if (msg) console.error(`pack: ${msg}`);
  console.error("usage: node npm-packages/pack.mjs --binary <path> --out <dir> [--platform <os-arch>] [--version <v>]");
  process.exit(2);
}

function parseArgs(argv) {
  const a = {};
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const v = argv[i + 1];
    if (!["--binary", "--out", "--platform", "--version"].includes(k)) usage(`unknown argument ${k}`);
    if (v === undefined) usage(`${k} needs a value`);
    a[k.slice(2)] = v;
    i++;
  }
  return a;
}

export function cargoVersion() {
  const toml = fs.readFileSync(path.join(repo, "Cargo.toml"), "utf8");
  const pkg = toml.split(/^\[/m).find((s) => s.startsWith("package]"));
  const m = pkg && pkg.match(/^version\s*=\s*"([^"]+)"/m);
  if (!m) throw new Error("no [package] version in Cargo.toml");
  return m[1];
}

function writeJson(file, value) {
  fs.writeFileSync(file, `${JSON.stringify(value, null, 2)}\n`);
}

function npmPack(dir, out) {
  const res = execFileSync("npm", ["pack", "--json", "--pack-destination", out], {
    cwd: dir,
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
  });
  return path.join(out, JSON.parse(res)[0].filename);
}

function main() {
  const args = parseArgs(process.argv.slice(2));
  if (!args.binary || !args.out) usage("--binary and --out are required");
  const platform = args.platform || `${process.platform}-${process.arch}`;
  if (!PLATFORMS[platform]) usage(`unknown platform ${platform} (one of ${Object.keys(PLATFORMS).join(", ")})`);
  if (!fs.existsSync(args.binary)) usage(`no binary at ${args.binary}`);
  const version = args.version || cargoVersion();
  const out = path.resolve(args.out);
  fs.mkdirSync(out, { recursive: true });
  const stage = fs.mkdtempSync(path.join(os.tmpdir(), "prisma-streams-pack-"));
  const license = path.join(repo, "LICENSE");
  try {
    // The platform package: just the binary.
    const [osName, cpu] = PLATFORMS[platform];
    const pdir = path.join(stage, platform);
    fs.mkdirSync(path.join(pdir, "bin"), { recursive: true });
    const exe = osName === "win32" ? "prisma-streams.exe" : "prisma-streams";
    fs.copyFileSync(args.binary, path.join(pdir, "bin", exe));
    fs.chmodSync(path.join(pdir, "bin", exe), 0o755);
    fs.copyFileSync(license, path.join(pdir, "LICENSE"));
    writeJson(path.join(pdir, "package.json"), {
      name: `@prisma/streams-server-${platform}`,
      version,
      description: `The prisma-streams binary for ${osName} ${cpu}`,
      license: "Apache-2.0",
      os: [osName],
      cpu: [cpu],
      // Linux binaries are static musl builds: they run on glibc and musl systems alike.
      ...(osName === "linux" ? { libc: ["glibc", "musl"] } : {}),
      files: ["bin/"],
      preferUnplugged: true,
    });

    // The wrappers, with versions in step and every platform as an optional dependency.
    const wrappers = {};
    for (const name of ["streams-server", "streams-local"]) {
      const dir = path.join(stage, name);
      fs.cpSync(path.join(here, name), dir, { recursive: true });
      fs.copyFileSync(license, path.join(dir, "LICENSE"));
      const pj = JSON.parse(fs.readFileSync(path.join(dir, "package.json"), "utf8"));
      pj.version = version;
      if (name === "streams-server") {
        pj.optionalDependencies = Object.fromEntries(
          Object.keys(PLATFORMS).map((p) => [`@prisma/streams-server-${p}`, version]),
        );
      } else {
        pj.dependencies["@prisma/streams-server"] = version;
      }
      writeJson(path.join(dir, "package.json"), pj);
      wrappers[name] = dir;
    }

    const files = [npmPack(pdir, out), npmPack(wrappers["streams-server"], out), npmPack(wrappers["streams-local"], out)];
    console.log(JSON.stringify({ version, platform, files }, null, 2));
  } finally {
    fs.rmSync(stage, { recursive: true, force: true });
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main();
}
