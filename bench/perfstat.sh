#!/bin/bash
# perfstat.sh: system calls and context switches per request of an echo
# server under load, from perf stat of the server process over 2 s in the
# middle of a loadgen window. This is how the io_uring engine's wake-ups of
# idle threads were found (0.25 context switches per request against
# epoll's 0.003).
#
#   bash bench/perfstat.sh SERVER "LOADGEN FLAGS"
#   bash bench/perfstat.sh bin/ours@uring "-m closed -c 100"
#   SIZE=1024 bash bench/perfstat.sh bin/ours "-m open -c 1000 -r 10000"
#
# SERVER as in interleave.sh (a name ending in @uring runs it with
# NETPOLL_ENGINE=io_uring). Needs perf (Debian: linux-perf) and root or
# kernel.perf_event_paranoid <= 1 for the syscalls: tracepoints.
set -u
[ $# -eq 2 ] || { sed -n 2,14p "$0"; exit 2; }
server=$1; load=$2
cd "$(dirname "$0")"
command -v perf >/dev/null || { echo "perfstat.sh: perf is required" >&2; exit 1; }
. ./pinned.sh
size=${SIZE:-64}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
start_pinned "$server" "$size" "$tmp/server.log"
# shellcheck disable=SC2086 # the load flags are words
taskset -c 1 bin/loadgen -a "127.0.0.1:$port" -s "$size" -w 1 -d 4 -p "$pid" $load "${mark[@]}" >"$tmp/load.out" 2>/dev/null &
load_pid=$!
sleep 2
events=raw_syscalls:sys_enter,syscalls:sys_enter_read,syscalls:sys_enter_write,syscalls:sys_enter_writev
events=$events,syscalls:sys_enter_epoll_pwait,syscalls:sys_enter_io_uring_enter,syscalls:sys_enter_futex
events=$events,context-switches
perf stat -x, -e "$events" -p "$pid" -o "$tmp/perf.csv" -- sleep 2 >/dev/null 2>&1
wait "$load_pid"
kill -TERM "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
line=$(grep RESULT "$tmp/load.out")
rps=$(sed -n 's/.* rps=\([0-9.]*\).*/\1/p' <<<" $line")
[ -n "$rps" ] || { echo "perfstat.sh: no RESULT from loadgen" >&2; exit 1; }
echo "$server: $(grep -o 'rps=[^ ]*\|cpu_us_per_req=[^ ]*' <<<"$line" | tr '\n' ' ')"
# perf counted 2 s; per request = count / (rps * 2).
awk -F, -v reqs="$(awk -v r="$rps" 'BEGIN{print r*2}')" '
	$3 != "" && $1 ~ /^[0-9]/ { name = $3; sub(/.*:/, "", name); sub(/^sys_enter_?/, "", name); if (name == "") name = "all syscalls"
		printf "  %-18s %.3f per request\n", name, $1 / reqs }' "$tmp/perf.csv"
