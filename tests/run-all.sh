#!/usr/bin/env bash
# The whole test suite, as CI runs it: formatting, lints, unit and integration tests,
# and the upstream conformance suite against a full-mode server.
# Needs: a Rust toolchain (rustup, with rustfmt and clippy), Node.js >= 20.19 and npm.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }
need() { command -v "$1" >/dev/null 2>&1 || { echo "run-all: $1 is required ($2)" >&2; exit 2; }; }
need cargo "install Rust with rustup"
need node "install Node.js >= 20.19"
need npm "install npm"

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy -D warnings"
cargo clippy --locked --all-targets -- -D warnings

step "cargo test"
cargo test --locked

cargo build --locked --bin prisma-streams
step "conformance suite (full mode)"
tests/conformance/run.sh --mode full
step "conformance suite (local mode)"
tests/conformance/run.sh --mode local
