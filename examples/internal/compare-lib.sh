# compare-lib.sh holds what the compare.sh scripts of the examples share.
# Source it; it needs bash. Servers run on core 0 with GOMAXPROCS=1, clients
# on core 1, as the machine has two cores.

SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}

# need checks that every named program is installed.
need() {
	for p in "$@"; do
		command -v "$p" >/dev/null 2>&1 || {
			echo "compare: $p not found; run examples/install-clients.sh" >&2
			exit 1
		}
	done
}

# start_example BIN LOGFILE ARGS... runs a built example pinned to the server
# core and waits for its "listening on ADDR" line; ADDR goes in the variable
# addr. Not to be called in a subshell: stop_pid waits for the process.
start_example() {
	local bin=$1 log=$2
	shift 2
	GOMAXPROCS=1 taskset -c "$SERVER_CPU" "$bin" "$@" >"$log" 2>&1 &
	echo $! >"$log.pid"
	for _ in $(seq 100); do
		addr=$(sed -n 's/.*listening on \([^ ,]*\).*/\1/p' "$log" 2>/dev/null | head -1)
		if [ -n "$addr" ]; then
			return 0
		fi
		sleep 0.1
	done
	echo "compare: $bin did not start:" >&2
	cat "$log" >&2
	return 1
}

# stop_pid LOGFILE stops what start_example started, with SIGINT, and waits.
stop_pid() {
	local pid
	pid=$(cat "$1.pid")
	rm -f "$1.pid"
	kill -INT "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

# header prints the facts a measured table needs.
header() {
	echo "date: $(date -u +%Y-%m-%dT%H:%MZ)"
	echo "machine: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores"
	echo "kernel: $(uname -r)"
	echo "go: $(go version | cut -d' ' -f3)"
	echo "pinning: server taskset -c $SERVER_CPU with GOMAXPROCS=1, client taskset -c $CLIENT_CPU"
}

# wrk_row LABEL ARGS... runs wrk pinned to the client core and prints a
# markdown row: requests/s, average and 99th percentile latency, errors.
wrk_row() {
	local label=$1 out
	shift
	out=$(taskset -c "$CLIENT_CPU" wrk --latency "$@")
	local rps avg p99 errs
	rps=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
	avg=$(awk '$1 == "Latency" {print $2; exit}' <<<"$out")
	p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
	errs=$(grep -E 'Socket errors|Non-2xx' <<<"$out" | tr '\n' ' ' || true)
	echo "| $label | $rps | $avg | $p99 | ${errs:-none} |"
}
