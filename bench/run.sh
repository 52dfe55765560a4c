#!/usr/bin/env bash
# run.sh: the side-by-side echo benchmark. See bench/README.md.
#
#   bash bench/run.sh --quick          # every part, short windows, 1 rep, < 5 min
#   bash bench/run.sh                  # echo suite, fixed-rate sweep, RPC benchmarks, 3 reps
#   bash bench/run.sh --sweep          # only the fixed-rate latency sweep (and the peaks it caps at)
#   bash bench/run.sh --rpc            # only Kitex and Hertz on both libraries (bench/rpc/run.sh)
#   bash bench/run.sh --reps 5 --servers "ours cloudwego c"
#   bash bench/run.sh --workloads open:1000:64 --rate 55000   # tails at one load for all
#   bash bench/run.sh --sweep --sweep-rates "10000 20000"     # a sweep at other rates
#   bash bench/run.sh --baseline b9a13eb --servers "ours ours-base"   # this tree against a commit
#
# Each server runs pinned to CPU 0 with GOMAXPROCS=1, the load generator to
# CPU 1. Every load is bounded in time and goes to 127.0.0.1 only. Servers are
# started fresh for every workload and always killed on exit.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$here"

# A session of our own, so that our scheduling priority is ours alone (see
# "autogroup" below). The new session has no terminal, so this outer shell
# forwards Ctrl-C and SIGTERM to it.
if [ -z "${BENCH_OWN_SESSION:-}" ] && command -v setsid >/dev/null; then
	export BENCH_OWN_SESSION=1
	setsid bash "$here/run.sh" "$@" &
	inner=$!
	trap 'kill -TERM "$inner" 2>/dev/null' INT TERM
	rc=0
	wait "$inner" || rc=$?
	# A forwarded signal interrupts the first wait; wait again for the cleanup.
	kill -0 "$inner" 2>/dev/null && { wait "$inner" || rc=$?; }
	exit "$rc"
fi

quick=0
reps=""
servers="c ours ours-inline cloudwego gnet nbio gonet gain"
out=""
nice_level=-10
only=""
fixed_rate=
only_sweep=0
only_rpc=0
sweep_rates=""
baseline=""
while [ $# -gt 0 ]; do
	case "$1" in
	--quick) quick=1 ;;
	--reps) reps=$2; shift ;;
	--servers) servers=$2; shift ;;
	--out) out=$2; shift ;;
	--nice) nice_level=$2; shift ;;
	--workloads) only=$2; shift ;;
	--rate) fixed_rate=$2; shift ;;
	--sweep) only_sweep=1 ;;
	--rpc) only_rpc=1 ;;
	--sweep-rates) sweep_rates=$2; shift ;;
	--baseline) baseline=$2; shift ;;
	-h | --help) sed -n '2,15p' "$0"; exit 0 ;;
	*) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
	esac
	shift
done

if [ "$quick" = 1 ]; then
	reps=${reps:-1}; warm=0.5; dur=1; hold=1; gate=1; retries=0; retry_budget=0
	workloads="closed:100:64 closed:1000:64 closed:1000:1024 stream:10:65536 idle:10000:0 open:1000:64"
	sweep_rates=${sweep_rates:-"10000 50000"}
else
	reps=${reps:-3}; warm=1; dur=5; hold=3; gate=3; retries=2; retry_budget=12
	workloads="closed:100:64 closed:1000:64 closed:1000:1024 stream:10:65536 idle:10000:0 idle:19000:0 open:1000:64"
	sweep_rates=${sweep_rates:-"10000 25000 50000 75000 100000"}
fi
# Which parts run: all three by default; --sweep and --rpc pick theirs. The
# sweep needs each server's closed-loop peak at 64 B x 1,000 to cap its rates,
# so a sweep without the echo suite measures that workload first.
run_echo=1 run_sweep=1 run_rpc=1
if [ "$only_sweep" = 1 ] || [ "$only_rpc" = 1 ]; then
	run_echo=0
	run_sweep=$only_sweep
	run_rpc=$only_rpc
fi
[ "$run_echo" = 0 ] && [ "$run_sweep" = 1 ] && workloads="closed:1000:64"
[ "$run_echo" = 0 ] && [ "$run_sweep" = 0 ] && workloads=""
# --workloads "mode:conns:size …" runs only those; --rate R drives the
# open-loop (latency) workload at R req/s for every server instead of at
# half of each one's own 64 B x 1,000 peak, to compare tails at one load.
[ -n "$only" ] && workloads=$only
[ "$run_echo" = 0 ] && [ "$run_sweep" = 0 ] && servers=""
stamp=$(date -u +%Y-%m-%dT%H%M%SZ)
[ "$quick" = 1 ] && stamp="$stamp-quick"
out=${out:-results/$stamp}
mkdir -p "$out" bin
csv="$out/results.csv"
log="$out/run.log"
: >"$log"
say() { echo "[$(date -u +%H:%M:%S)] $*" | tee -a "$log" >&2; }

# Tools: installed from Debian when missing. Plotting uses Debian's python3
# with python3-matplotlib, not whatever python3 comes first on PATH.
py=/usr/bin/python3
need=()
command -v gcc >/dev/null || need+=(build-essential)
command -v taskset >/dev/null || need+=(util-linux)
[ -x "$py" ] && "$py" -c 'import matplotlib' 2>/dev/null || need+=(python3-matplotlib)
if [ ${#need[@]} -gt 0 ]; then
	say "installing ${need[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update >>"$log" 2>&1
	apt-get install -y "${need[@]}" >>"$log" 2>&1
fi
command -v go >/dev/null || { echo "run.sh: Go is required (go.mod names the version)" >&2; exit 1; }

# Build. A server that does not build is reported, not fatal: the others run.
say "building into bench/bin"
gcc -O2 -Wall -o bin/loadgen c/loadgen.c
gcc -O2 -Wall -o bin/c c/epoll_echo.c
built=""
# --baseline REV: the library as of commit REV, built from a scratch
# worktree as the server "ours-base", so a change is measured against what
# it replaces in one run.
if [ -n "$baseline" ]; then
	base_tree=$(mktemp -d)
	git -C "$here" worktree add --detach "$base_tree" "$baseline" >"$out/build-ours-base.log" 2>&1
	if (cd "$base_tree/bench" && go build -o "$here/bin/ours-base" ./servers/ours) >>"$out/build-ours-base.log" 2>&1; then
		rm -f "$out/build-ours-base.log"
		git -C "$here" rev-parse --short "$baseline" >"$out/baseline.txt"
	fi
	git -C "$here" worktree remove --force "$base_tree" >/dev/null 2>&1 || true
	case " $servers " in *" ours-base "*) ;; *) servers="$servers ours-base" ;; esac
fi
for s in $servers; do
	[ "$s" = c ] && { built="$built c"; continue; }
	if [ "$s" = ours-base ]; then
		[ -x bin/ours-base ] && [ -n "$baseline" ] && built="$built ours-base" || say "BUILD FAILED: ours-base (needs --baseline REV)"
		continue
	fi
	# gain reaches syscall.anyToSockaddr through go:linkname, which the Go
	# linker refuses since Go 1.23 unless told not to check (bench/README.md).
	ldflags=()
	[ "$s" = gain ] && ldflags=(-ldflags=-checklinkname=0)
	# ours-uring is the ours binary run on the io_uring engine (start_server).
	src=$s
	[ "$s" = ours-uring ] && src=ours
	if go build "${ldflags[@]}" -o "bin/$s" "./servers/$src" >"$out/build-$s.log" 2>&1; then
		built="$built $s"
		rm -f "$out/build-$s.log"
	else
		say "BUILD FAILED: $s (see $out/build-$s.log)"
		echo "$s,build_failed" >>"$out/failures.csv"
	fi
done

# Server lifetime: every pid we start is killed on any exit.
pids=()
cleanup() {
	for p in "${pids[@]:-}"; do
		[ -n "$p" ] && kill -KILL "$p" 2>/dev/null || true
	done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The machine may be shared. With autogroup scheduling (the default on
# desktop and many cloud kernels) a plain nice value only ranks processes
# within one session; across sessions every autogroup gets an equal share,
# whatever its nice. So run.sh puts itself in a session of its own (setsid,
# above) and, as root, lowers that session's autogroup nice: the server and
# the load generator then get the CPUs they are pinned to even when other
# sessions are busy. Other load is still measured and reported.
prio=()
priority=none
if [ "$(id -u)" = 0 ] && [ "$nice_level" != 0 ]; then
	if [ -w /proc/self/autogroup ] && echo "$nice_level" >/proc/self/autogroup 2>/dev/null; then
		priority="autogroup nice $nice_level ($(cat /proc/self/autogroup))"
	else
		prio=(nice -n "$nice_level")
		priority="nice $nice_level"
	fi
fi

# wait_quiet: before each workload, wait up to $gate seconds for the rest of
# the machine to use less than half a CPU; prints the load it saw.
tck=$(getconf CLK_TCK)
busy_ticks() { awk '/^cpu /{print $2+$3+$4+$7+$8+$9}' /proc/stat; }
wait_quiet() {
	local deadline=$((SECONDS + gate)) b0 b1 load
	while :; do
		b0=$(busy_ticks); sleep 0.3; b1=$(busy_ticks)
		load=$(awk -v a="$b0" -v b="$b1" -v t="$tck" 'BEGIN{printf "%.2f", (b-a)/t/0.3}')
		if awk -v l="$load" 'BEGIN{exit !(l < 0.5)}' || [ "$SECONDS" -ge "$deadline" ]; then
			break
		fi
	done
	echo "$load"
}

port=$((20000 + RANDOM % 10000))
srv_pid=""
srv_log=""
# start_server NAME [extra flags...]: starts it pinned to CPU 0 and waits for
# its listening line; sets srv_pid and srv_log.
start_server() {
	local name=$1; shift
	local try
	local engine=()
	[ "$name" = ours-uring ] && engine=(env NETPOLL_ENGINE=io_uring)
	for try in 1 2 3; do
		port=$((port + 1))
		srv_log="$out/server-$name.log"
		GOMAXPROCS=1 "${engine[@]}" "${prio[@]}" taskset -c 0 "bin/$name" -addr "127.0.0.1:$port" "$@" >"$srv_log.cur" 2>&1 &
		srv_pid=$!
		pids+=("$srv_pid")
		local i
		for i in $(seq 100); do
			grep -q listening "$srv_log.cur" 2>/dev/null && return 0
			kill -0 "$srv_pid" 2>/dev/null || break
			sleep 0.05
		done
		cat "$srv_log.cur" >>"$srv_log"
		kill -KILL "$srv_pid" 2>/dev/null || true
		wait "$srv_pid" 2>/dev/null || true
	done
	return 1
}

# stop_server: SIGTERM (our Go servers print STATS), then KILL after 5 s.
stop_server() {
	kill -TERM "$srv_pid" 2>/dev/null || true
	local i
	for i in $(seq 100); do
		kill -0 "$srv_pid" 2>/dev/null || break
		sleep 0.05
	done
	kill -KILL "$srv_pid" 2>/dev/null || true
	wait "$srv_pid" 2>/dev/null || true
	cat "$srv_log.cur" >>"$srv_log"
}

# field KEY LINE: the value of key=value in a RESULT or STATS line.
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<" $2"; }

echo "rep,server,workload,mode,conns,size,load_before,status,rps,mbps,cpu_us_per_req,server_util,gen_util,other_util,p50_us,p99_us,p999_us,bytes_per_conn,mallocs_per_req,errors,rate" >"$csv"

declare -A peak peaks
run_one() { # rep server mode conns size [rate]
	local rep=$1 s=$2 mode=$3 conns=$4 size=$5
	local wl="$mode-${conns}x$size" rate=${6:-}
	[ "$mode" = idle ] && wl="idle-$conns"
	[ "$mode" = stream ] && wl="stream-${conns}x64KiB"
	[ "$mode" = open ] && wl="latency-${conns}x$size"
	[ "$mode" = open ] && [ -n "$rate" ] && wl="sweep-${conns}x$size"
	if [ "$mode" = open ] && [ -n "$rate" ]; then
		:
	elif [ "$mode" = open ] && [ -n "$fixed_rate" ]; then
		rate=$fixed_rate
	elif [ "$mode" = open ]; then
		local p=${peak[$s]:-}
		if [ -z "$p" ]; then
			say "skip $s $wl: no peak measured"
			return
		fi
		rate=$((p / 2))
	fi
	# A window in which other processes used more than 0.35 CPU is run again
	# (up to $retries times, $retry_budget times in the whole run, so a busy
	# machine cannot stretch the run without bound); the discarded attempt
	# stays in the CSV as "noisy".
	local attempt
	for attempt in $(seq 0 "$retries"); do
		measure "$rep" "$s" "$wl" "$mode" "$conns" "$size" "$rate"
		[ "$status" = ok ] || return 0
		[ "$attempt" -lt "$retries" ] || return 0
		awk -v o="${other:-0}" 'BEGIN{exit !(o > 0.35)}' || return 0
		[ "$retry_budget" -gt 0 ] || return 0
		retry_budget=$((retry_budget - 1))
		sed -i '$ s/,ok,/,noisy,/' "$csv"
		say "  other load ${other} during the window: measuring again"
	done
}

# measure: one server start, one load, one CSV row; sets status and other.
measure() {
	local rep=$1 s=$2 wl=$3 mode=$4 conns=$5 size=$6 rate=$7
	local args line stats mark="" before
	status=ok
	other=""
	[ "$s" != c ] && mark=-k
	before=$(wait_quiet)
	local sflags=()
	[ "$s" != c ] && [ "$mode" != idle ] && [ "$mode" != stream ] && sflags=(-msgsize "$size")
	if ! start_server "$s" "${sflags[@]}"; then
		say "$s failed to start"
		status=start_failed
		echo "$rep,$s,$wl,$mode,$conns,$size,$before,start_failed,,,,,,,,,,,,$rate" >>"$csv"
		return
	fi
	args=(-a "127.0.0.1:$port" -m "$mode" -c "$conns" -w "$warm" -d "$dur" -p "$srv_pid" $mark)
	[ "$mode" = idle ] && args+=(-t "$hold")
	[ "$mode" != idle ] && args+=(-s "$size")
	[ -n "$rate" ] && args+=(-r "$rate")
	local limit
	limit=$(awk -v w="$warm" -v d="$dur" -v h="$hold" 'BEGIN{print int(w+d+h+60)}')
	line=$(timeout "$limit" "${prio[@]}" taskset -c 1 bin/loadgen "${args[@]}" 2>>"$log") || status=loadgen_failed
	kill -0 "$srv_pid" 2>/dev/null || status=server_died
	stop_server
	line=$(grep '^RESULT' <<<"$line" || true)
	[ -z "$line" ] && [ "$status" = ok ] && status=no_result
	# An open-loop window in which no request completed has no latency to show.
	[ "$mode" = open ] && [ "$status" = ok ] && [ "$(field reqs "$line")" = 0 ] && status=none_completed
	stats=$(grep '^STATS' "$srv_log.cur" | tail -1 || true)
	rm -f "$srv_log.cur"
	local rps reqs mallocs mpr=""
	rps=$(field rps "$line"); reqs=$(field reqs "$line")
	other=$(field other_util "$line")
	mallocs=$(field mallocs "$stats")
	# The server's own count (mallocs over the requests it echoed) when it
	# printed one, else its mallocs over the requests loadgen completed.
	mpr=$(field mallocs_per_req "$stats")
	if [ -z "$mpr" ] && [ -n "$mallocs" ] && [ -n "$reqs" ] && [ "$reqs" != 0 ]; then
		mpr=$(awk -v m="$mallocs" -v r="$reqs" 'BEGIN{printf "%.4f", m/r}')
	fi
	if [ "$mode" = closed ] && [ "$conns" = 1000 ] && [ "$size" = 64 ] && [ -n "$rps" ] && [ "$status" = ok ]; then
		peak[$s]=${rps%.*}
		peaks[$s]="${peaks[$s]:-} ${rps%.*}"
	fi
	echo "$rep,$s,$wl,$mode,$conns,$size,$before,$status,$rps,$(field mbps "$line"),$(field cpu_us_per_req "$line"),$(field cpu_util "$line"),$(field gen_util "$line"),$other,$(field p50_us "$line"),$(field p99_us "$line"),$(field p999_us "$line"),$(field bytes_per_conn "$line"),$mpr,$(field errors "$line"),$rate" >>"$csv"
	say "rep $rep $s $wl: $status (other load before: $before) ${line#RESULT } ${stats:+| $stats}"
}

{
	echo "date: $stamp"
	echo "machine: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) CPUs"
	echo "kernel: $(uname -r)"
	echo "go: $(go version)"
	echo "gcc: $(gcc --version | head -1)"
	echo "mode: $([ "$quick" = 1 ] && echo quick || echo full), reps=$reps, warmup=${warm}s, duration=${dur}s, idle hold=${hold}s"
	echo "servers: $servers"
	echo "parts: echo suite $([ "$run_echo" = 1 ] && echo yes || echo no), fixed-rate sweep $([ "$run_sweep" = 1 ] && echo "at $sweep_rates req/s (64 B x 1,000)" || echo no), RPC $([ "$run_rpc" = 1 ] && echo yes || echo no)"
	echo "priority: $priority, quiet gate: ${gate}s"
	echo "built: $built"
	echo "peers: $(grep -E 'cloudwego/netpoll|gnet/v2|lesismal/nbio|pawelgaczynski/gain' go.mod | tr -s '\t ' ' ' | tr '\n' ';')"
	echo "library: $(git -C .. log -1 --format='%h %s' 2>/dev/null || echo 'no commit')" \
		"($(git -C .. status --porcelain -- . ':!bench' 2>/dev/null | wc -l) uncommitted paths outside bench/)"
	echo "loadavg at start: $(cat /proc/loadavg)"
} >"$out/env.txt"

for rep in $(seq "$reps"); do
	for s in $built; do
		for w in $workloads; do
			IFS=: read -r mode conns size <<<"$w"
			run_one "$rep" "$s" "$mode" "$conns" "$size"
		done
	done
done

# The fixed-rate sweep: open loop at 64 B x 1,000, every server at the same
# total rates, servers interleaved within each rate. A rate above 90% of the
# slowest server's closed-loop peak (the median of its peaks in this run) is
# dropped, and the output says so: every server must be able to carry it.
slowest=""
slowest_name=""
if [ "$run_sweep" = 1 ]; then
	for s in $built; do
		p=$(tr ' ' '\n' <<<"${peaks[$s]:-}" | sed '/^$/d' | sort -n | awk '{v[NR] = $1} END {if (NR) print v[int((NR + 1) / 2)]}')
		if [ -z "$p" ]; then
			say "sweep: no closed-loop peak measured for $s; it does not cap the rates"
			continue
		fi
		if [ -z "$slowest" ] || [ "$p" -lt "$slowest" ]; then slowest=$p; slowest_name=$s; fi
	done
	rates_run=""
	for r in $sweep_rates; do
		if [ -n "$slowest" ] && [ "$r" -gt $((slowest * 9 / 10)) ]; then
			say "sweep: rate $r req/s dropped: above 90% of the slowest server's peak ($slowest_name, $slowest req/s at 64 B x 1,000)"
			echo "sweep_dropped,$r,$slowest_name,$slowest" >>"$out/sweep-dropped.csv"
			continue
		fi
		rates_run="$rates_run $r"
	done
	echo "sweep: rates run:${rates_run:- none}; slowest peak: ${slowest_name:-none} ${slowest:-}" >>"$out/env.txt"
	for rep in $(seq "$reps"); do
		for r in $rates_run; do
			for s in $built; do
				run_one "$rep" "$s" open 1000 64 "$r"
			done
		done
	done
fi

# Profiles of our servers for 64 B x 1,000: a separate run, since sampling
# costs CPU that must not enter the measured figures.
for s in ours ours-inline ours-uring; do
	[ "$run_echo" = 1 ] || break
	case " $built " in *" $s "*) ;; *) continue ;; esac
	if start_server "$s" -cpuprofile "$out/$s.cpu.pprof" -memprofile "$out/$s.heap.pprof"; then
		line=$(timeout 120 "${prio[@]}" taskset -c 1 bin/loadgen -a "127.0.0.1:$port" -m closed -c 1000 -s 64 \
			-w "$warm" -d "$dur" -p "$srv_pid" -k 2>>"$log") || true
		stop_server
		rm -f "$srv_log.cur"
		say "profile $s: ${line#RESULT }"
		if [ -s "$out/$s.cpu.pprof" ]; then
			go tool pprof -top -nodecount=40 "bin/$s" "$out/$s.cpu.pprof" >"$out/$s.cpu.top.txt" 2>&1 || true
			go tool pprof -top -sample_index=alloc_space -nodecount=25 "bin/$s" "$out/$s.heap.pprof" \
				>"$out/$s.heap.top.txt" 2>&1 || true
		fi
	fi
done

# Kitex and Hertz, each on both libraries: bench/rpc/run.sh, in this session
# and at this priority; its rpc.csv lands beside results.csv.
if [ "$run_rpc" = 1 ]; then
	rflags=(--out "$out" --reps "$reps")
	[ "$quick" = 1 ] && rflags+=(--quick)
	BENCH_PRIO="${prio[*]}" bash rpc/run.sh "${rflags[@]}" 2>&1 | tee -a "$log" >&2 || say "rpc/run.sh failed"
fi

echo "loadavg at end: $(cat /proc/loadavg)" >>"$out/env.txt"
"$py" report.py "$out"
say "done: $out/results.md"
