#!/usr/bin/env bash
# compare.sh loads examples/http and the same routes served by net/http
# (-impl nethttp, in the same binary) with wrk, one after the other in the same
# run, and prints a markdown table for the README. DURATION (10s) and CONNS
# (64) tune the load.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
. "$root/examples/internal/compare-lib.sh"
need go wrk taskset
duration=${DURATION:-10s}
conns=${CONNS:-64}
tmp=$(mktemp -d)
trap 'for p in "$tmp"/*.pid; do [ -e "$p" ] && stop_pid "${p%.pid}"; done; rm -rf "$tmp"' EXIT
(cd "$root" && go build -o "$tmp/http" ./examples/http)

cat >"$tmp/pipeline.lua" <<'LUA'
init = function(args)
  local r = {}
  for i = 1, 16 do r[i] = wrk.format(nil, "/") end
  req = table.concat(r)
end
request = function() return req end
LUA
cat >"$tmp/echo.lua" <<'LUA'
wrk.method = "POST"
wrk.path = "/echo"
wrk.body = string.rep("e", 4096)
LUA

header
echo "load: wrk -t1 -c$conns -d$duration --latency"
echo
echo "| server, workload | requests/s | avg latency | p99 latency | errors |"
echo "|---|---|---|---|---|"
for impl in netpoll nethttp; do
	start_example "$tmp/http" "$tmp/$impl" -impl "$impl" -addr 127.0.0.1:0
	url="http://$addr/"
	wrk_row "$impl, GET / keep-alive" -t1 -c"$conns" -d"$duration" "$url"
	wrk_row "$impl, GET / pipelined x16" -t1 -c"$conns" -d"$duration" -s "$tmp/pipeline.lua" "$url"
	wrk_row "$impl, POST /echo 4 KiB" -t1 -c"$conns" -d"$duration" -s "$tmp/echo.lua" "$url"
	stop_pid "$tmp/$impl"
done
