#!/usr/bin/env bash
# UDP echo: netpoll sessions and packets (with and without recvmmsg batching)
# against a package net UDP server, same run. The server is pinned to core 0
# with GOMAXPROCS=1, the client to core 1. Prints a markdown table: echoed
# datagrams per second, and server CPU (user+system, from /proc/PID/stat)
# per datagram.
#
#   bench/udp/run.sh [duration_seconds] [peers] [window] [size]
set -euo pipefail
cd "$(dirname "$0")/.."
dur=${1:-5}; peers=${2:-16}; window=${3:-8}; size=${4:-64}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/server" ./udp/server
go build -o "$tmp/client" ./udp/client
hz=$(getconf CLK_TCK)

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

run() { # name, server flags...
	local name=$1; shift
	rm -f "$tmp/out" "$tmp/client.out" # never read the last run's address
	taskset -c 0 env GOMAXPROCS=1 "$tmp/server" "$@" >"$tmp/out" 2>&1 &
	local pid=$!
	for _ in $(seq 100); do grep -qs listening "$tmp/out" && break; sleep 0.05; done
	local addr; addr=$(awk '/listening/ {print $2}' "$tmp/out")
	taskset -c 1 env GOMAXPROCS=1 "$tmp/client" -addr "$addr" -peers "$peers" -window "$window" \
		-size "$size" -warmup 1s -duration "${dur}s" >"$tmp/client.out" &
	local cpid=$!
	sleep 1; local c0; c0=$(cpu_ticks "$pid")
	sleep "$dur"; local c1; c1=$(cpu_ticks "$pid")
	wait "$cpid" || { cat "$tmp/client.out" "$tmp/out" >&2; }
	kill -TERM "$pid"; wait "$pid" || true
	awk -v name="$name" -v c0="$c0" -v c1="$c1" -v hz="$hz" -v dur="$dur" '
		/echoed/ { n = $2; t = $4 }
		END { printf "| %s | %.0f | %.2f | %.0f%% |\n", name, n / t, (c1 - c0) / hz * 1e6 / n, (c1 - c0) / hz / dur * 100 }' "$tmp/client.out"
}

echo "UDP echo, $peers peers x $window in flight, $size-byte datagrams, ${dur}s; server taskset -c 0 GOMAXPROCS=1, client core 1"
echo
echo "| server | datagrams/s | server CPU µs/datagram | server CPU |"
echo "|---|---:|---:|---:|"
run "package net (ReadFrom/WriteTo loop)" -impl std
run "netpoll sessions, batch 16 (recvmmsg)" -impl session -batch 16
run "netpoll sessions, batch 1" -impl session -batch 1
run "netpoll packets, batch 16 (recvmmsg)" -impl packet -batch 16
run "netpoll packets, batch 1" -impl packet -batch 1
