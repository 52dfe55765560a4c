#!/usr/bin/env bash
# Starts the echo server, drives it with a bounded load that checks every
# echoed byte, and stops it. Needs only Go.
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=$(mktemp -d)
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; rm -rf "$bin"' EXIT
go build -o "$bin/echo" ./examples/echo
go build -o "$bin/load" ./examples/echo/load
port=$(( 20000 + RANDOM % 20000 ))
"$bin/echo" -addr "127.0.0.1:$port" &
server=$!
for _ in $(seq 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  sleep 0.05
done
"$bin/load" -addr "127.0.0.1:$port" -conns 50 -size 64 -duration 3s
"$bin/load" -addr "127.0.0.1:$port" -conns 10 -size 65536 -duration 2s
kill -TERM "$server"
wait "$server"
