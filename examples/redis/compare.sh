#!/usr/bin/env bash
# compare.sh loads examples/redis and a real redis-server, one after the other
# in the same run, with redis-benchmark -t ping,set,get -P 16, and prints a
# markdown table for the README. REQUESTS (1000000) and CONNS (50) tune the load.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
. "$root/examples/internal/compare-lib.sh"
need go redis-server redis-benchmark redis-cli taskset
requests=${REQUESTS:-1000000}
conns=${CONNS:-50}
tmp=$(mktemp -d)
trap 'for p in "$tmp"/*.pid; do [ -e "$p" ] && stop_pid "${p%.pid}"; done; rm -rf "$tmp"' EXIT
(cd "$root" && go build -o "$tmp/redis" ./examples/redis)

# bench_rows LABEL HOST PORT prints one row per redis-benchmark test.
bench_rows() {
	local label=$1 host=$2 port=$3
	taskset -c "$CLIENT_CPU" redis-benchmark -h "$host" -p "$port" -t ping,set,get -P 16 \
		-n "$requests" -c "$conns" --csv 2>/dev/null |
		awk -F'"' -v label="$label" 'NR > 1 {printf "| %s, %s | %s | %s | %s |\n", label, $2, $4, $6, $14}'
}

# start_redis_server starts redis-server pinned to the server core on a free
# port (tried at random: redis-server exits if the port is taken).
start_redis_server() {
	for _ in $(seq 10); do
		port=$((20000 + RANDOM % 20000))
		taskset -c "$SERVER_CPU" redis-server --port "$port" --bind 127.0.0.1 --save "" \
			--appendonly no --dir "$tmp" >"$tmp/redis-server" 2>&1 &
		echo $! >"$tmp/redis-server.pid"
		for _ in $(seq 50); do
			if redis-cli -p "$port" ping >/dev/null 2>&1; then
				return 0
			fi
			kill -0 "$(cat "$tmp/redis-server.pid")" 2>/dev/null || break
			sleep 0.1
		done
		stop_pid "$tmp/redis-server"
	done
	echo "compare: redis-server did not start" >&2
	return 1
}

header
echo "load: redis-benchmark -t ping,set,get -P 16 -n $requests -c $conns"
echo "redis-server: $(redis-server --version | cut -d' ' -f3), persistence off"
echo
echo "| server, test | requests/s | avg latency ms | p99 latency ms |"
echo "|---|---|---|---|"
start_example "$tmp/redis" "$tmp/netpoll" -addr 127.0.0.1:0
bench_rows "netpoll example" "${addr%:*}" "${addr##*:}"
stop_pid "$tmp/netpoll"
start_redis_server
bench_rows "redis-server" 127.0.0.1 "$port"
stop_pid "$tmp/redis-server"
