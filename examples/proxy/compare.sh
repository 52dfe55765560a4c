#!/usr/bin/env bash
# compare.sh loads examples/http with wrk directly and through examples/proxy,
# one after the other in the same run, and prints a markdown table for the
# README. The HTTP example and the proxy share the server core, so the proxied
# rows show what the proxy costs that core. DURATION (10s) and CONNS (64) tune
# the load.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
. "$root/examples/internal/compare-lib.sh"
need go wrk taskset
duration=${DURATION:-10s}
conns=${CONNS:-64}
tmp=$(mktemp -d)
trap 'for p in "$tmp"/*.pid; do [ -e "$p" ] && stop_pid "${p%.pid}"; done; rm -rf "$tmp"' EXIT
(cd "$root" && go build -o "$tmp/http" ./examples/http && go build -o "$tmp/proxy" ./examples/proxy)
cat >"$tmp/echo.lua" <<'LUA'
wrk.method = "POST"
wrk.path = "/echo"
wrk.body = string.rep("e", 64 * 1024)
LUA

header
echo "load: wrk -t1 -c$conns -d$duration --latency; HTTP example and proxy both on core $SERVER_CPU"
echo
echo "| path, workload | requests/s | avg latency | p99 latency | errors |"
echo "|---|---|---|---|---|"
start_example "$tmp/http" "$tmp/http.log" -addr 127.0.0.1:0
upstream=$addr
start_example "$tmp/proxy" "$tmp/proxy.log" -addr 127.0.0.1:0 -upstream "$upstream"
proxied=$addr
for path in direct proxy; do
	target=$upstream
	[ "$path" = proxy ] && target=$proxied
	wrk_row "$path, GET /" -t1 -c"$conns" -d"$duration" "http://$target/"
	wrk_row "$path, POST /echo 64 KiB" -t1 -c"$conns" -d"$duration" -s "$tmp/echo.lua" "http://$target/"
done
