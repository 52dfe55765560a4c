#!/usr/bin/env bash
# TLS echo: netpoll (WithTLS) against crypto/tls over Go's net, same run.
# Server pinned to core 0 with GOMAXPROCS=1, client on core 1; the figure
# that matters is the server's CPU time per request (and per MB in bulk).
#
#   bash bench/tls/run.sh            # 3 reps, 5 s windows
#   REPS=1 WINDOW=2s bash bench/tls/run.sh
set -euo pipefail
cd "$(dirname "$0")"
REPS=${REPS:-3}
WINDOW=${WINDOW:-5s}
BIN=$(mktemp -d)
trap 'rm -rf "$BIN"' EXIT
go build ${GOFLAGS_EXTRA:-} -o "$BIN/tlsbench" .

run() { # impl mode conns size
	local port log pid
	port=$((20000 + RANDOM % 20000))
	log="$BIN/server-$1-$2-$port.log"
	taskset -c 0 env GOMAXPROCS=1 "$BIN/tlsbench" server -impl "$1" -addr "127.0.0.1:$port" -write-ca "$BIN/ca-$port.pem" >"$log" 2>&1 &
	pid=$!
	for _ in $(seq 200); do grep -q ready "$log" 2>/dev/null && break; sleep 0.05; done
	if ! grep -q ready "$log"; then
		echo "server $1 did not start:" >&2; cat "$log" >&2; kill "$pid" 2>/dev/null; return 1
	fi
	taskset -c 1 env GOMAXPROCS=1 "$BIN/tlsbench" client -mode "$2" -conns "$3" -size "$4" \
		-addr "127.0.0.1:$port" -ca "$BIN/ca-$port.pem" -pid "$pid" -duration "$WINDOW" -label "$1"
	kill -INT "$pid"; wait "$pid" 2>/dev/null || true
}

echo "| server | load | throughput | server CPU | server core busy |"
echo "|---|---|---|---|---|"
for rep in $(seq "$REPS"); do
	for impl in net netpoll; do run "$impl" echo 100 1024; done
done
for rep in $(seq "$REPS"); do
	for impl in net netpoll; do run "$impl" bulk 4 65536; done
done
