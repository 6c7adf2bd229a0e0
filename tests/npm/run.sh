#!/usr/bin/env bash
# npm end-to-end test: builds the release binary, packs the host platform's package and
# both wrappers, installs the tarballs into a fresh temporary npm project with no network,
# and runs e2e.test.mjs (npx, startLocalDurableStreamsServer, the daemon, the types). The
# real consumer, @prisma/dev (what `prisma dev` runs), is installed from the registry into a
# second project, with our tarballs put in place of @prisma/streams-local by npm overrides;
# it also runs on a data directory that the TypeScript server wrote.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cd "$repo"

cargo build --locked --release --bin prisma-streams
[ -f "$here/node_modules/typescript/bin/tsc" ] && [ -f "$here/node_modules/@prisma/dev/package.json" ] ||
  (cd "$here" && npm ci --no-audit --no-fund)

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
node npm-packages/pack.mjs --binary target/release/prisma-streams --out "$work/pkgs" >/dev/null
mkdir "$work/project"
(cd "$work/project" && npm init -y >/dev/null && npm install --offline --no-audit --no-fund "$work"/pkgs/*.tgz >/dev/null)
# @prisma/dev and pg at the versions of this directory's devDependencies (so `npm ci` above
# has them in npm's cache), and our three packages from the tarballs, for it as for us.
mkdir "$work/prisma-dev"
node - "$here/package.json" "$work/pkgs" "$work/prisma-dev/package.json" <<'JS'
const fs = require("node:fs");
const path = require("node:path");
const [devPkg, pkgs, out] = process.argv.slice(2);
const dev = JSON.parse(fs.readFileSync(devPkg, "utf8")).devDependencies;
const dependencies = { "@prisma/dev": dev["@prisma/dev"], pg: dev.pg };
const overrides = {};
for (const f of fs.readdirSync(pkgs).filter((f) => f.endsWith(".tgz"))) {
  const name = f.replace(/^prisma-/, "@prisma/").replace(/-\d+\.\d+\.\d+.*\.tgz$/, "");
  dependencies[name] = `file:${path.join(pkgs, f)}`;
  overrides[name] = `$${name}`;
}
fs.writeFileSync(out, JSON.stringify({ name: "prisma-dev-e2e", private: true, type: "module", dependencies, overrides }, null, 2));
JS
(cd "$work/prisma-dev" && npm install --prefer-offline --no-audit --no-fund >/dev/null)
# Data directories written by the TypeScript server (published packages under Bun; cached
# in target/tmp while the scripts are unchanged), for the takeover under @prisma/dev.
node tests/ts-db/make-fixtures.mjs "$repo/target/tmp/ts-db-fixtures" >&2
PROJECT_DIR="$work/project" PRISMA_DEV_PROJECT="$work/prisma-dev" TS_DB_FIXTURES="$repo/target/tmp/ts-db-fixtures" \
  node --test "$here/e2e.test.mjs"
