#!/usr/bin/env bash
# npm end-to-end test: builds the release binary, packs the host platform's package and
# both wrappers, installs the tarballs into a fresh temporary npm project with no network,
# and runs e2e.test.mjs (npx, startLocalDurableStreamsServer, the daemon, the types).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cd "$repo"

cargo build --locked --release --bin prisma-streams
[ -f "$here/node_modules/typescript/bin/tsc" ] || (cd "$here" && npm ci --no-audit --no-fund)

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
node npm-packages/pack.mjs --binary target/release/prisma-streams --out "$work/pkgs" >/dev/null
mkdir "$work/project"
(cd "$work/project" && npm init -y >/dev/null && npm install --offline --no-audit --no-fund "$work"/pkgs/*.tgz >/dev/null)
PROJECT_DIR="$work/project" node --test "$here/e2e.test.mjs"
