#!/usr/bin/env bash
# rpc/run.sh: Kitex and Hertz on cloudwego/netpoll and on this library, side
# by side in one run. See bench/README.md, "RPC benchmarks".
#
#   bash bench/rpc/run.sh --out DIR            # what bench/run.sh --rpc calls
#   bash bench/rpc/run.sh --quick --out DIR    # shorter windows, fewer scenarios
#   options: --reps N, --libs "cloudwego ours", --rates "5000 10000 20000",
#            --callers "1 100 1000", --rate-callers 100, --muxconns 2,
#            --frameworks "kitex hertz hertz-client", --hertz-conns "100 1000", --retries N
#
# Each framework is built twice from the same source: plainly (Kitex v0.16.3
# and Hertz v0.10.4 on cloudwego/netpoll v0.7.2) and with
#   replace github.com/cloudwego/netpoll => <this library, renamed>
# The renamed copy is written by cmd/netpoll-switch when the tree has it, else
# by the sed recipe of compat/run.sh, in a temporary directory that is removed
# on exit. Servers run as GOMAXPROCS=1 taskset -c 0, clients (kitexclient,
# hertzclient, hertzcaller, wrk) on CPU 1; all traffic is to 127.0.0.1; every
# load is bounded in time. Kitex runs the default, mux and streaming (gRPC)
# transports; hertz-client measures Hertz's own client on each library.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bench=$(cd "$here/.." && pwd)
root=$(cd "$bench/.." && pwd)

quick=0
reps=""
out=""
libs="cloudwego ours"
rates=""
callers=""
rate_callers=100
muxconns=2
frameworks="kitex hertz hertz-client"
hertz_conns=""
retries=""
while [ $# -gt 0 ]; do
	case "$1" in
	--quick) quick=1 ;;
	--reps) reps=$2; shift ;;
	--out) out=$2; shift ;;
	--libs) libs=$2; shift ;;
	--rates) rates=$2; shift ;;
	--callers) callers=$2; shift ;;
	--rate-callers) rate_callers=$2; shift ;;
	--muxconns) muxconns=$2; shift ;;
	--frameworks) frameworks=$2; shift ;;
	--hertz-conns) hertz_conns=$2; shift ;;
	--retries) retries=$2; shift ;;
	-h | --help) sed -n '2,17p' "$0"; exit 0 ;;
	*) echo "rpc/run.sh: unknown argument $1" >&2; exit 2 ;;
	esac
	shift
done

if [ "$quick" = 1 ]; then
	# Quick: every framework, transport and library once, at fewer loads.
	reps=${reps:-1}; warm=0.5; dur=1; gate=1; rates=${rates:-"5000"}; callers=${callers:-"100"}
	hertz_conns=${hertz_conns:-"1000"}
	retries=${retries:-0}; retry_budget=$((retries * 6))
else
	# One caller: the latency-bound case (sequential calls).
	reps=${reps:-3}; warm=1; dur=5; gate=3; rates=${rates:-"5000 10000 20000 30000"}; callers=${callers:-"1 100 1000"}
	hertz_conns=${hertz_conns:-"100 1000"}
	retries=${retries:-2}; retry_budget=$((retries * 6))
fi
out=${out:-$bench/results/rpc-$(date -u +%Y-%m-%dT%H%M%SZ)}
mkdir -p "$out"
out=$(cd "$out" && pwd)
csv=$out/rpc.csv
log=$out/rpc.log
: >"$log"
say() { echo "[$(date -u +%H:%M:%S)] rpc: $*" | tee -a "$log" >&2; }

# Priority: inherited from bench/run.sh (its own session, autogroup nice).
prio=()
[ -n "${BENCH_PRIO:-}" ] && read -r -a prio <<<"$BENCH_PRIO"

command -v wrk >/dev/null || {
	say "installing wrk"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update >>"$log" 2>&1
	apt-get install -y wrk >>"$log" 2>&1
}

# The copies must resolve modules on their own, as compat/run.sh's do.
export GOWORK=off
export GOFLAGS="-mod=mod ${GOFLAGS:-}"

work=$(mktemp -d "${TMPDIR:-/tmp}/netpoll-rpc.XXXXXX")
pids=()
cleanup() {
	for p in "${pids[@]:-}"; do
		[ -n "$p" ] && kill -KILL "$p" 2>/dev/null || true
	done
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# app_copy DIR copies this module's source (not its results or binaries) to DIR.
app_copy() {
	mkdir -p "$1"
	(cd "$here" && tar --exclude=./bin -cf - .) | (cd "$1" && tar -xf -)
}

# renamed_library APP points the module in APP at this library under the
# reference's module path, and says how it did.
renamed_library() {
	local app=$1
	if [ -f "$root/cmd/netpoll-switch/main.go" ]; then
		(cd "$root" && go run ./cmd/netpoll-switch -project "$app") >>"$log" 2>&1 || return 1
		echo "cmd/netpoll-switch (copy in $app/third_party/netpoll, removed on exit)"
		return 0
	fi
	# compat/run.sh's recipe: the library's files (tracked and untracked, not
	# the separate modules and examples) with the module path rewritten.
	local dst=$work/netpoll f
	mkdir -p "$dst"
	(cd "$root" && git ls-files --cached --others --exclude-standard) |
		grep -Ev '^(bench|cmd|compat|conformance|examples)/' |
		while IFS= read -r f; do
			[ -f "$root/$f" ] || continue
			mkdir -p "$dst/$(dirname "$f")"
			cp "$root/$f" "$dst/$f"
		done
	sed -i 's#^module github.com/ccb70390/netpoll$#module github.com/cloudwego/netpoll#' "$dst/go.mod"
	find "$dst" -name '*.go' -exec sed -i 's#github.com/ccb70390/netpoll#github.com/cloudwego/netpoll#g' {} +
	(cd "$app" && go mod edit -replace "github.com/cloudwego/netpoll=$dst" && go mod tidy) >>"$log" 2>&1 || return 1
	echo "sed of the module path, as compat/run.sh does (copy in $dst, removed on exit)"
}

# Build: bin/rpc-LIB/{kitexserver,kitexclient,hertzserver,hertzclient,hertzcaller} for each library.
built=""
: >"$out/rpc-env.txt"
for lib in $libs; do
	app=$work/app-$lib
	app_copy "$app"
	how="cloudwego/netpoll as Kitex and Hertz require it (no replace)"
	if [ "$lib" = ours ]; then
		if ! how=$(renamed_library "$app"); then
			say "BUILD FAILED: could not put this library in place (see $log)"
			continue
		fi
	fi
	dst=$bench/bin/rpc-$lib
	mkdir -p "$dst"
	if (cd "$app" && go build -o "$dst/" ./kitexserver ./kitexclient ./hertzserver ./hertzclient ./hertzcaller) >>"$log" 2>&1; then
		built="$built $lib"
		{
			echo "$lib: $how"
			go version -m "$dst/kitexserver" | grep -E 'dep\s+github.com/cloudwego/kitex\s' | sed 's/^/    /'
			go version -m "$dst/kitexserver" | grep -E 'dep\s+github.com/cloudwego/netpoll\s|=>' | sed 's/^/    /'
			go version -m "$dst/hertzserver" | grep -E 'dep\s+github.com/cloudwego/hertz\s' | sed 's/^/    /'
		} >>"$out/rpc-env.txt"
		say "built $lib: $how"
	else
		say "BUILD FAILED: $lib (see $log)"
	fi
done
echo "library: $(git -C "$root" log -1 --format='%h %s' 2>/dev/null || echo 'no commit')" \
	"($(git -C "$root" status --porcelain -- . ':!bench' 2>/dev/null | wc -l) uncommitted paths outside bench/)" >>"$out/rpc-env.txt"
echo "mode: $([ "$quick" = 1 ] && echo quick || echo full), reps=$reps, warmup=${warm}s, duration=${dur}s, kitex callers: $callers, hertz connections: $hertz_conns, fixed rates: $rates at $rate_callers callers (Kitex) or connections (Hertz), mux connections: $muxconns" >>"$out/rpc-env.txt"

# Below the kernel's ephemeral ports (32768-60999 by default), which the clients'
# own sockets use: a server port among them can be taken (bench/run.sh does the same).
port=$((20000 + RANDOM % 10000))
srv_pid=""
# start_server LIB BIN [flags...]: pinned to CPU 0, waits for "listening".
start_server() {
	local lib=$1 bin=$2 try i
	shift 2
	for try in 1 2 3; do
		port=$((port + 1))
		srv_log=$out/server-rpc-$lib-$bin.log
		GOMAXPROCS=1 "${prio[@]}" taskset -c 0 "$bench/bin/rpc-$lib/$bin" -addr "127.0.0.1:$port" "$@" >"$srv_log.cur" 2>&1 &
		srv_pid=$!
		pids+=("$srv_pid")
		for i in $(seq 200); do
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

stop_server() {
	kill -TERM "$srv_pid" 2>/dev/null || true
	local i
	for i in $(seq 60); do
		kill -0 "$srv_pid" 2>/dev/null || break
		sleep 0.05
	done
	kill -KILL "$srv_pid" 2>/dev/null || true
	wait "$srv_pid" 2>/dev/null || true
	cat "$srv_log.cur" >>"$srv_log"
	rm -f "$srv_log.cur"
}

field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<" $2"; }
ticks_of() { awk '{sub(/^.*\) /, ""); print $12 + $13}' "/proc/$1/stat" 2>/dev/null || echo 0; }
busy_ticks() { awk '/^cpu /{print $2+$3+$4+$7+$8+$9}' /proc/stat; }
# child_ticks: user+system CPU of this shell's reaped children (wrk), in
# ticks. times must run in this shell, not in a $(...) subshell, whose own
# children are none.
tck=$(getconf CLK_TCK)
child_ticks() {
	times >"$work/times"
	tail -1 "$work/times" | awk -v t="$tck" '{
		n = 0
		for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); n += a[1] * 60 + a[2] }
		printf "%.0f", n * t }'
}

# wait_quiet: before each window, wait up to $gate seconds for the rest of
# the machine to use less than half a CPU (as bench/run.sh does); sets before.
wait_quiet() {
	local deadline=$((SECONDS + gate)) b0 b1
	while :; do
		b0=$(busy_ticks); sleep 0.3; b1=$(busy_ticks)
		before=$(awk -v a="$b0" -v b="$b1" -v t="$tck" 'BEGIN{printf "%.2f", (b-a)/t/0.3}')
		if awk -v l="$before" 'BEGIN{exit !(l < 0.5)}' || [ "$SECONDS" -ge "$deadline" ]; then
			return 0
		fi
	done
}

echo "rep,lib,bench,transport,conns,size,rate,status,rps,cpu_us_per_req,server_util,gen_util,other_util,p50_us,p99_us,p999_us,errors,load_before,gen_us_per_req" >"$csv"

# row LIB BENCH TRANSPORT CONNS SIZE RATE STATUS LINE: one CSV row from a RESULT line.
row() {
	local l=$8
	echo "$rep,$1,$2,$3,$4,$5,$6,$7,$(field rps "$l"),$(field cpu_us_per_req "$l"),$(field cpu_util "$l"),$(field gen_util "$l"),$(field other_util "$l"),$(field p50_us "$l"),$(field p99_us "$l"),$(field p999_us "$l"),$(field errors "$l"),$before,$(field gen_us_per_req "$l")" >>"$csv"
	say "rep $rep $1 $2 $3 ${4}x$5${6:+ at $6/s}: $7 (other load before: $before) ${l#RESULT }"
}

declare -A peak
# client_window LIB BENCH TRANSPORT CONNS SIZE RATE SERVER_LIB SERVER [SERVER_FLAGS...] -- CLIENT [CLIENT_FLAGS...]:
# one measured window of a Go client (bench/bin/rpc-LIB/CLIENT, which prints
# a RESULT line) against SERVER built on SERVER_LIB; writes its row. The
# client gets -addr, -c CONNS, -w, -d, -p and, with RATE, -r RATE. In closed
# loop (no RATE) a clean window's req/s is kept in peak[BENCH-TRANSPORT-LIB-CONNS].
client_window() {
	local lib=$1 b=$2 tr=$3 c=$4 size=$5 rate=$6 slib=$7 sbin=$8 sflags=() client flags=() line status=ok limit
	shift 8
	while [ "$1" != -- ]; do sflags+=("$1"); shift; done
	client=$2
	shift 2
	flags=("$@")
	[ -n "$rate" ] && flags+=(-r "$rate")
	wait_quiet
	if ! start_server "$slib" "$sbin" "${sflags[@]}"; then
		row "$lib" "$b" "$tr" "$c" "$size" "$rate" start_failed ""
		return
	fi
	limit=$(awk -v w="$warm" -v d="$dur" 'BEGIN{print int(w+d+30)}')
	line=$(GOMAXPROCS=1 timeout "$limit" "${prio[@]}" taskset -c 1 "$bench/bin/rpc-$lib/$client" \
		-addr "127.0.0.1:$port" -c "$c" -w "${warm}s" -d "${dur}s" -p "$srv_pid" "${flags[@]}" 2>>"$log") ||
		status=client_failed
	kill -0 "$srv_pid" 2>/dev/null || status=server_died
	stop_server
	line=$(grep '^RESULT' <<<"$line" || true)
	[ -z "$line" ] && [ "$status" = ok ] && status=no_result
	[ "$status" = ok ] && [ "$(field errors "$line")" != 0 ] && status=errors
	[ -z "$rate" ] && [ "$status" = ok ] && peak[$b-$tr-$lib-$c]=$(field rps "$line")
	row "$lib" "$b" "$tr" "$c" "$size" "$rate" "$status" "$line"
}

# kitex LIB TRANSPORT CALLERS [RATE]: TRANSPORT is default, mux, or stream
# (thrift streaming over gRPC: one bidirectional stream per caller).
kitex() {
	local lib=$1 tr=$2 c=$3 rate=${4:-} flags=() sflags=()
	case "$tr" in
	mux) flags=(-mux "$muxconns"); sflags=(-mux) ;;
	stream) flags=(-stream); sflags=(-stream) ;;
	esac
	client_window "$lib" kitex "$tr" "$c" 1024 "$rate" "$lib" kitexserver "${sflags[@]}" -- kitexclient -size 1024 "${flags[@]}"
}

# hertz LIB get|post CONNS: a warm-up wrk, then the measured one; the server's
# CPU and wrk's are read around the measured run.
hertz() {
	local lib=$1 what=$2 c=$3 wenv=() line status=ok
	local size=13
	[ "$what" = post ] && size=4096
	if [ "$what" = post ]; then wenv=(WRK_METHOD=POST WRK_SIZE=4096); else wenv=(WRK_METHOD=GET); fi
	wait_quiet
	if ! start_server "$lib" hertzserver; then
		row "$lib" "hertz-$what" http "$c" "$size" "" start_failed ""
		return
	fi
	local url="http://127.0.0.1:$port/" wargs=(-t1 "-c$c" -s "$here/wrk/check.lua" --timeout 5s)
	env "${wenv[@]}" timeout 60 "${prio[@]}" taskset -c 1 wrk "${wargs[@]}" "-d${warm}s" "$url" >>"$log" 2>&1 || true
	local s0 b0 g0 s1 b1 g1 t0 t1
	child_ticks >"$work/g0"
	s0=$(ticks_of "$srv_pid"); b0=$(busy_ticks); t0=$(date +%s.%N)
	env "${wenv[@]}" timeout 120 "${prio[@]}" taskset -c 1 wrk "${wargs[@]}" "-d${dur}s" "$url" >"$work/wrk.out" 2>>"$log" ||
		status=client_failed
	s1=$(ticks_of "$srv_pid"); b1=$(busy_ticks); t1=$(date +%s.%N)
	child_ticks >"$work/g1"
	g0=$(cat "$work/g0"); g1=$(cat "$work/g1"); line=$(cat "$work/wrk.out")
	echo "$line" >>"$log"
	kill -0 "$srv_pid" 2>/dev/null || status=server_died
	stop_server
	line=$(grep '^WRK' <<<"$line" || true)
	[ -z "$line" ] && [ "$status" = ok ] && status=no_result
	local reqs errors
	reqs=$(field reqs "$line")
	errors=$(awk -v l=" $line" 'BEGIN{n = 0; split("mismatches connect_errors read_errors write_errors timeouts", k, " ")
		for (i in k) if (match(l, " " k[i] "=[0-9]+")) n += substr(l, RSTART + length(k[i]) + 2, RLENGTH - length(k[i]) - 2)
		print n}')
	[ "$status" = ok ] && [ "$errors" != 0 ] && status=errors
	# wrk's reply count is only meaningful when every reply was checked.
	[ "$status" = ok ] && [ "$(field checked "$line")" != "$reqs" ] && status=unchecked
	[ "$status" = ok ] && peak[hertz-$what-$lib-$c]=$(field rps "$line")
	line="RESULT $line errors=$errors $(awk -v s0="$s0" -v s1="$s1" -v b0="$b0" -v b1="$b1" -v g0="$g0" -v g1="$g1" \
		-v t0="$t0" -v t1="$t1" -v n="${reqs:-0}" -v t="$tck" 'BEGIN{
		secs = t1 - t0; srv = s1 - s0; gen = g1 - g0
		if (n > 0) printf "cpu_us_per_req=%.2f ", srv * 1e6 / t / n
		o = (b1 - b0 - srv - gen) / t / secs; if (o < 0) o = 0
		printf "cpu_util=%.2f gen_util=%.2f other_util=%.2f", srv / t / secs, gen / t / secs, o}')"
	row "$lib" "hertz-$what" http "$c" "$size" "" "$status" "$line"
}

# hertz_rate LIB get|post CONNS RATE: hertzclient in open loop at RATE req/s.
hertz_rate() {
	local lib=$1 what=$2 c=$3 rate=$4 flags=() size=13
	[ "$what" = post ] && { flags=(-post -size 4096); size=4096; }
	client_window "$lib" "hertz-$what" http "$c" "$size" "$rate" "$lib" hertzserver -- hertzclient "${flags[@]}"
}

# hertz_client LIB get|post CONNS [RATE]: Hertz's own client (hertzcaller),
# built on LIB, against one server for every library: hertzserver on the
# first library built (cloudwego/netpoll in a default run), so that only the
# client differs. The row's cpu_us_per_req is that server's; gen_us_per_req
# is the client's.
hertz_client() {
	local lib=$1 what=$2 c=$3 rate=${4:-} flags=() size=13 slib
	slib=${built# }; slib=${slib%% *}
	[ "$what" = post ] && { flags=(-post -size 4096); size=4096; }
	client_window "$lib" "hertz-client-$what" http "$c" "$size" "$rate" "$slib" hertzserver -- hertzcaller "${flags[@]}"
}

# cap_rates NAME PEAK...: prints the rates of $rates at or below 90% of the
# lowest PEAK, and logs and records the others.
cap_rates() {
	local name=$1 cap="" p r
	shift
	for p in "$@"; do
		[ -z "$p" ] && continue
		p=${p%.*}
		{ [ -z "$cap" ] || [ "$p" -lt "$cap" ]; } && cap=$p
	done
	for r in $rates; do
		if [ -n "$cap" ] && [ "$r" -gt $((cap * 9 / 10)) ]; then
			say "rep $rep $name: rate $r/s dropped, above 90% of the slowest library's peak ($cap/s)"
			echo "$rep,$name,$r,$cap" >>"$out/rpc-dropped.csv"
			continue
		fi
		echo "$r"
	done
}

# measured FUNC ARGS...: runs one window, and again (up to $retries times,
# $retry_budget in the whole run) while other processes used more than 0.35
# CPU in it, as bench/run.sh does; a discarded window stays in rpc.csv as
# "noisy".
measured() {
	local attempt o
	for attempt in $(seq 0 "$retries"); do
		"$@"
		[ "$attempt" -lt "$retries" ] || return 0
		[ "$retry_budget" -gt 0 ] || return 0
		o=$(tail -1 "$csv" | awk -F, '$8 == "ok" {print $13}')
		[ -n "$o" ] && awk -v o="$o" 'BEGIN{exit !(o > 0.35)}' || return 0
		retry_budget=$((retry_budget - 1))
		sed -i '$ s/,ok,/,noisy,/' "$csv"
		say "  other load $o during the window: measuring again"
	done
}

# Libraries alternate inside each scenario, so that drift in the machine's
# load falls on both alike.
has() { case " $frameworks " in *" $1 "*) return 0 ;; esac; return 1; }
for rep in $(seq "$reps"); do
	has kitex && for tr in default mux stream; do
		for c in $callers; do
			for lib in $built; do measured kitex "$lib" "$tr" "$c"; done
		done
	done
	# Fixed rates, capped below the slowest library's peak at these callers.
	has kitex && for tr in default mux stream; do
		pk=()
		for lib in $built; do pk+=("${peak[kitex-$tr-$lib-$rate_callers]:-}"); done
		for r in $(cap_rates "kitex $tr at $rate_callers callers" "${pk[@]}"); do
			for lib in $built; do measured kitex "$lib" "$tr" "$rate_callers" "$r"; done
		done
	done
	has hertz && for what in get post; do
		for c in $hertz_conns; do
			for lib in $built; do measured hertz "$lib" "$what" "$c"; done
		done
		# Fixed rates with hertzclient, capped by wrk's lowest req/s for this request.
		pk=()
		for lib in $built; do for c in $hertz_conns; do pk+=("${peak[hertz-$what-$lib-$c]:-}"); done; done
		for r in $(cap_rates "hertz $what at $rate_callers connections" "${pk[@]}"); do
			for lib in $built; do measured hertz_rate "$lib" "$what" "$rate_callers" "$r"; done
		done
	done
	# Hertz's client: closed loop for both requests, fixed rates for GET.
	has hertz-client && for what in get post; do
		for c in $hertz_conns; do
			for lib in $built; do measured hertz_client "$lib" "$what" "$c"; done
		done
		[ "$what" = get ] || continue
		pk=()
		for lib in $built; do for c in $hertz_conns; do pk+=("${peak[hertz-client-$what-http-$lib-$c]:-}"); done; done
		for r in $(cap_rates "hertz client $what at $rate_callers connections" "${pk[@]}"); do
			for lib in $built; do measured hertz_client "$lib" "$what" "$rate_callers" "$r"; done
		done
	done
done
say "done: $csv"
