#!/usr/bin/env bash
# Runs a command with a real S3-compatible server (moto_server, from PyPI) on 127.0.0.1.
#
#   tests/s3/with-moto.sh COMMAND [ARGS...]
#
# Installs moto into a virtualenv under target/ on first use (pinned in requirements.txt),
# starts it on a free loopback port, creates a bucket, exports the
# DURABLE_STREAMS_S3_* variables and MOTO_SERVER / MOTO_PORT for the command, and stops
# the server afterwards, whatever happens.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
venv="$repo/target/moto-venv"

if [ ! -x "$venv/bin/moto_server" ] || ! cmp -s "$here/requirements.txt" "$venv/requirements.txt"; then
  echo "with-moto: installing moto into $venv" >&2
  rm -rf "$venv"
  python3 -m venv "$venv" || { echo "with-moto: python3 -m venv failed" >&2; exit 2; }
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt" >&2 \
    || { echo "with-moto: pip install failed" >&2; exit 2; }
  cp "$here/requirements.txt" "$venv/requirements.txt"
fi

port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
log="$(mktemp)"
"$venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$log" 2>&1 &
moto_pid=$!
cleanup() {
  kill -CONT "$moto_pid" 2>/dev/null
  kill "$moto_pid" 2>/dev/null
  wait "$moto_pid" 2>/dev/null
  rm -f "$log"
}
trap cleanup EXIT INT TERM

endpoint="http://127.0.0.1:$port"
for _ in $(seq 1 100); do
  curl -sf -o /dev/null "$endpoint/" && break
  sleep 0.1
done
curl -sf -o /dev/null -X PUT "$endpoint/prisma-streams-test" \
  || { echo "with-moto: moto_server did not start: $(tail -5 "$log")" >&2; exit 2; }

export MOTO_SERVER="$venv/bin/moto_server" MOTO_PORT="$port" MOTO_PID="$moto_pid"
export DURABLE_STREAMS_S3_ENDPOINT="$endpoint"
export DURABLE_STREAMS_S3_BUCKET="prisma-streams-test"
export DURABLE_STREAMS_S3_REGION="us-east-1"
export DURABLE_STREAMS_S3_ACCESS_KEY_ID="test"
export DURABLE_STREAMS_S3_SECRET_ACCESS_KEY="test"
"$@"
