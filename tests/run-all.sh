#!/usr/bin/env bash
# The whole test suite, as CI runs it: formatting, lints, unit and integration tests (the
# S3 ones against a real S3-compatible server on loopback), and the upstream conformance
# suite against full mode (plain; tiny segments over S3) and local mode.
# Needs: a Rust toolchain (rustup, with rustfmt and clippy), Node.js >= 20.19 with npm,
# and Python 3 with venv (for moto_server, installed under target/ on first use).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }
need() { command -v "$1" >/dev/null 2>&1 || { echo "run-all: $1 is required ($2)" >&2; exit 2; }; }
need cargo "install Rust with rustup"
need node "install Node.js >= 20.19"
need npm "install npm"
need python3 "install Python 3 with the venv module"
need curl "install curl"

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy -D warnings"
cargo clippy --locked --all-targets -- -D warnings

# As root (CI runs as root) every test must run: one that misses its real dependency
# (root for a tmpfs, the S3 server) fails instead of printing "skipped".
if [ "$(id -u)" = 0 ]; then export PRISMA_STREAMS_TEST_STRICT=1; fi

step "cargo test (with an S3 server on loopback)"
tests/s3/with-moto.sh cargo test --locked

cargo build --locked --bin prisma-streams
step "conformance suite: full mode"
tests/conformance/run.sh --mode full
step "conformance suite: full mode, tiny segments, S3 store"
tests/s3/with-moto.sh tests/conformance/run.sh --mode full --tiny --store s3
step "conformance suite: local mode"
tests/conformance/run.sh --mode local
step "npm end-to-end (release binary, packed packages, offline install)"
tests/npm/run.sh
