#!/bin/bash
# interleave.sh: A/B windows of echo servers, interleaved, for comparing two
# builds or engines when the host drifts (run.sh measures each server's reps
# apart; here every round runs each server once, back to back).
#
#   bash bench/interleave.sh ROUNDS "LOADGEN FLAGS" SERVER...
#   bash bench/interleave.sh 2 "-m closed -c 100" bin/ours bin/ours@uring bin/gain
#   SIZE=1024 bash bench/interleave.sh 2 "-m closed -c 1000" bin/ours bin/ours@uring
#   bash bench/interleave.sh 2 "-m open -c 1000 -r 10000" bin/c bin/ours
#
# SERVER is a binary under bench/ (built by run.sh, or go build -o bin/X
# ./servers/X); a name ending in @uring runs it with NETPOLL_ENGINE=io_uring.
# Each window: the server as GOMAXPROCS=1 on CPU 0, loadgen on CPU 1, 1 s
# warm-up and DUR (default 4) seconds measured; one line per window.
set -u
[ $# -ge 3 ] || { sed -n 2,16p "$0"; exit 2; }
rounds=$1; load=$2; shift 2
cd "$(dirname "$0")"
. ./pinned.sh
size=${SIZE:-64}
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for _ in $(seq "$rounds"); do
	for server in "$@"; do
		start_pinned "$server" "$size" "$log"
		# shellcheck disable=SC2086 # the load flags are words
		line=$(timeout 120 taskset -c 1 bin/loadgen -a "127.0.0.1:$port" -s "$size" -w 1 -d "${DUR:-4}" -p "$pid" $load "${mark[@]}" 2>/dev/null | grep RESULT)
		kill -TERM "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
		echo "$server $(grep -o 'rps=[^ ]*\|mbps=[^ ]*\|cpu_us_per_req=[^ ]*\|p50_us=[^ ]*\|p99_us=[^ ]*\|gen_util=[^ ]*' <<<"$line" | tr '\n' ' ')"
	done
done
