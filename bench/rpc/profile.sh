#!/usr/bin/env bash
# rpc/profile.sh: where a Kitex or Hertz process spends its CPU per call, by
# code owner (the network library, the framework, the Go runtime, the
# kernel), on cloudwego/netpoll and on this library, in one run. It answers
# "how much faster could the framework get if the network library cost
# nothing": the library's share of the busier process bounds what any
# change of the library can buy (bench/README.md, "How far the library can
# move a framework").
#
#   bash bench/rpc/profile.sh [--libs "cloudwego ours"] [--reps N] [--keep DIR] [--rate R] SCENARIO CONNS
#   bash bench/rpc/profile.sh kitex-default 100
#   bash bench/rpc/profile.sh hertz-get 100
#   bash bench/rpc/profile.sh --rate 10000 hertz-get 100
#
# SCENARIO: kitex-default, kitex-mux (2 connections), kitex-stream (thrift
# streaming over gRPC, one stream per caller), hertz-get (wrk; with
# --rate, hertzclient in open loop at R requests/s). Without --rate the
# client runs closed loop (saturation).
# Needs the binaries of rpc/run.sh (bench/bin/rpc-LIB; `bash bench/rpc/run.sh
# --quick` builds them), perf (Debian: linux-perf) and python3. Each rep
# starts the server (GOMAXPROCS=1, CPU 0) and the client (kitexclient,
# GOMAXPROCS=1, or wrk -t1, on CPU 1), waits 2 s, then perf-records both
# for 3 s (perf record -F 999 -g); the client's window is 9 s. It prints, per
# process, the calls per second, the CPU per call, and each owner's share
# and microseconds of it. perf slows both processes a little; the shares
# are what to read, not the rates. --keep DIR keeps each rep's perf.data
# there (SCENARIO-CONNS-LIB-REP-{server,client}.data) for perf report.
# --syscalls counts instead (perf stat, 3 s): system calls by kind and
# context switches per call, which tell whether a library's kernel time is
# at the floor (one read and one write per call).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bench=$(cd "$here/.." && pwd)
libs="cloudwego ours"
reps=2
keep=""
rate=""
syscalls=0
while [ $# -gt 2 ]; do
	case "$1" in
	--libs) libs=$2; shift 2 ;;
	--reps) reps=$2; shift 2 ;;
	--keep) keep=$2; mkdir -p "$keep"; shift 2 ;;
	--rate) rate=$2; shift 2 ;;
	--syscalls) syscalls=1; shift ;;
	*) break ;;
	esac
done
[ $# -eq 2 ] || { sed -n 2,30p "$0"; exit 2; }
scenario=$1 conns=$2
case "$scenario" in kitex-default | kitex-mux | kitex-stream | hertz-get) ;; *) sed -n 2,30p "$0"; exit 2 ;; esac
command -v perf >/dev/null || { echo "profile.sh: perf is required (apt-get install linux-perf)" >&2; exit 1; }
for lib in $libs; do
	[ -x "$bench/bin/rpc-$lib/kitexserver" ] || { echo "profile.sh: no bench/bin/rpc-$lib; run bash bench/rpc/run.sh --quick first" >&2; exit 1; }
done
if [ "$scenario" = hertz-get ] && [ -z "$rate" ] && ! command -v wrk >/dev/null; then
	echo "profile.sh: wrk is required (apt-get install wrk)" >&2
	exit 1
fi

count_events=raw_syscalls:sys_enter,syscalls:sys_enter_read,syscalls:sys_enter_write,syscalls:sys_enter_readv
count_events=$count_events,syscalls:sys_enter_writev,syscalls:sys_enter_sendmsg,syscalls:sys_enter_epoll_wait
count_events=$count_events,syscalls:sys_enter_epoll_pwait,syscalls:sys_enter_futex,context-switches

# ticks_of PID: the process's utime+stime in clock ticks (as rpc/run.sh's).
ticks_of() { awk '{sub(/^.*\) /, ""); print $12 + $13}' "/proc/$1/stat" 2>/dev/null; }

work=$(mktemp -d "${TMPDIR:-/tmp}/netpoll-profile.XXXXXX")
srv=""
cli=""
cleanup() {
	for p in $srv $cli; do kill -KILL "$p" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT

port=$((20000 + RANDOM % 10000))
for rep in $(seq "$reps"); do
	for lib in $libs; do
		port=$((port + 1))
		bin=$bench/bin/rpc-$lib
		sflags=() cflags=() client=""
		[ "$scenario" = kitex-mux ] && sflags=(-mux) && cflags=(-mux 2)
		[ "$scenario" = kitex-stream ] && sflags=(-stream) && cflags=(-stream)
		server=kitexserver
		[ "$scenario" = hertz-get ] && server=hertzserver
		GOMAXPROCS=1 taskset -c 0 "$bin/$server" -addr "127.0.0.1:$port" "${sflags[@]}" >"$work/server.log" 2>&1 &
		srv=$!
		for _ in $(seq 200); do grep -q listening "$work/server.log" && break; sleep 0.05; done
		client=kitexclient
		[ "$scenario" = hertz-get ] && client=hertzclient
		[ -n "$rate" ] && cflags+=(-r "$rate")
		[ "$client" = kitexclient ] && cflags+=(-size 1024)
		if [ "$scenario" = hertz-get ] && [ -z "$rate" ]; then
			WRK_METHOD=GET taskset -c 1 wrk -t1 "-c$conns" -d9s -s "$here/wrk/check.lua" --timeout 5s \
				"http://127.0.0.1:$port/" >"$work/client.out" 2>&1 &
		else
			GOMAXPROCS=1 taskset -c 1 "$bin/$client" -addr "127.0.0.1:$port" -c "$conns" \
				-w 1s -d 8s -p "$srv" "${cflags[@]}" >"$work/client.out" 2>&1 &
		fi
		cli=$!
		sleep 2
		t0=$(date +%s.%N)
		s0=$(ticks_of "$srv")
		c0=$(ticks_of "$cli")
		if [ "$syscalls" = 1 ]; then
			perf stat -x, -e "$count_events" -p "$srv" -o "$work/server.csv" -- sleep 3 >/dev/null 2>&1 &
			perf_srv=$!
			perf stat -x, -e "$count_events" -p "$cli" -o "$work/client.csv" -- sleep 3 >/dev/null 2>&1 || true
		else
			perf record -F 999 -g -p "$srv" -o "$work/server.data" -- sleep 3 >/dev/null 2>&1 &
			perf_srv=$!
			perf record -F 999 -g -p "$cli" -o "$work/client.data" -- sleep 3 >/dev/null 2>&1 || true
		fi
		wait "$perf_srv" || true
		s1=$(ticks_of "$srv" || echo "$s0")
		c1=$(ticks_of "$cli" || echo "$c0")
		t1=$(date +%s.%N)
		wait "$cli" 2>/dev/null || true
		cli=""
		kill -TERM "$srv" 2>/dev/null || true
		wait "$srv" 2>/dev/null || true
		srv=""
		# Calls over the client's whole measured window (kitexclient's RESULT,
		# wrk's WRK line): the recorded 3 s lie inside it.
		rps=$(sed -n 's/.* rps=\([0-9.]*\).*/\1/p' "$work/client.out" | head -1)
		[ -n "$rps" ] || { echo "profile.sh: $lib rep $rep: no result from the client" >&2; cat "$work/client.out" >&2; continue; }
		echo "== $scenario x$conns${rate:+ at $rate/s}, $lib, rep $rep: $rps calls/s"
		for proc in server client; do
			[ "$proc" = client ] && [ "$scenario" = hertz-get ] && [ -z "$rate" ] && continue
			if [ "$proc" = server ]; then a=$s0 b=$s1; else a=$c0 b=$c1; fi
			# CPU between the two reads around the recording, per call at the
			# window's rate.
			us=$(awk -v a="$a" -v b="$b" -v r="$rps" -v t="$(getconf CLK_TCK)" -v s="$(awk -v x="$t0" -v y="$t1" 'BEGIN{print y-x}')" \
				'BEGIN{printf "%.2f", (b-a)/t*1e6/(r*s)}')
			if [ "$syscalls" = 1 ]; then
				# perf stat counted 3 s; per call = count / (rate * 3).
				awk -F, -v label="$proc" -v us="$us" -v calls="$(awk -v r="$rps" 'BEGIN{print r*3}')" '
					BEGIN { printf "  %s: %s us CPU per call;", label, us }
					$1 ~ /^[0-9]/ && $1 > 0 { n = $3; sub(/.*:/, "", n); sub(/^sys_enter_?/, "", n); if (n == "") n = "all syscalls"
						printf " %s %.2f,", n, $1 / calls }
					END { print " per call" }' "$work/$proc.csv"
				continue
			fi
			python3 "$here/profile_owners.py" "$work/$proc.data" "$proc" "$us"
			if [ -n "$keep" ]; then cp "$work/$proc.data" "$keep/$scenario-$conns-$lib-$rep-$proc.data"; fi
		done
	done
done
