# pinned.sh: sourced by interleave.sh and perfstat.sh (not run).
#
# start_pinned SERVER SIZE LOG starts an echo server of bench/bin the way
# run.sh does (GOMAXPROCS=1, CPU 0; SERVER ending in @uring runs it with
# NETPOLL_ENGINE=io_uring) and waits for its listening line. It sets port,
# pid, and mark (the loadgen flag that asks a Go server for its STATS; none
# for the C server). The caller runs loadgen on CPU 1 and stops the server.

[ -x bin/loadgen ] || gcc -O2 -Wall -o bin/loadgen c/loadgen.c

start_pinned() {
	local server=$1 size=$2 log=$3
	local bin=${server%@uring} engine=() flags=(-msgsize "$size")
	[ "$bin" != "$server" ] && engine=(NETPOLL_ENGINE=io_uring)
	mark=(-k)
	[ "$bin" = bin/c ] && flags=() && mark=()
	port=$((20000 + RANDOM % 10000))
	env GOMAXPROCS=1 "${engine[@]}" taskset -c 0 "$bin" -addr "127.0.0.1:$port" "${flags[@]}" >"$log" 2>&1 &
	pid=$!
	local _
	for _ in $(seq 100); do grep -q listening "$log" && break; sleep 0.05; done
}
