#!/usr/bin/env bash
# compat/run.sh runs the netpoll-facing tests of the real consumers, Hertz and
# Kitex, against this library (issues #4, #16). Each consumer's module source
# is copied from the module proxy and switched to this library with the
# README's documented command (cmd/netpoll-switch, run from this checkout);
# its own netpoll transport tests run; then a Hertz server answers a real HTTP
# client and Kitex makes echo RPCs (plain and mux), switched the same way, and
# the documented -revert is shown to bring cloudwego/netpoll back.
#
#   compat/run.sh               against this library (the working tree's files)
#   compat/run.sh --reference   the same steps without the switch: cloudwego/netpoll itself
#   compat/run.sh --quick       the switch proof CI runs: the two programs, the revert, ttstream
#   compat/run.sh --keep        keep the scratch directory (printed at the end)
#
# Needs the Go toolchain and the module proxy (curl is used when present).
# Prints one PASS/FAIL line per step and a summary; exits 1 if any step failed.
# Environment: HERTZ_VERSION, KITEX_VERSION (default latest, falling back to
# the *_FALLBACK version when the proxy will not list versions), TEST_TIMEOUT
# (per go test, default 10m), COMPAT_RACE=1 to add -race.
set -uo pipefail

mode=ours
keep=0
quick=0
for arg in "$@"; do
	case $arg in
	--reference) mode=reference ;;
	--keep) keep=1 ;;
	--quick) quick=1 ;;
	-h | --help)
		sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'
		exit 0
		;;
	*)
		echo "run.sh: unknown argument $arg (try --help)" >&2
		exit 2
		;;
	esac
done

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
HERTZ_VERSION=${HERTZ_VERSION:-latest}
HERTZ_FALLBACK=${HERTZ_FALLBACK:-v0.10.4}
KITEX_VERSION=${KITEX_VERSION:-latest}
KITEX_FALLBACK=${KITEX_FALLBACK:-v0.16.3}
TEST_TIMEOUT=${TEST_TIMEOUT:-10m}
race=()
[[ ${COMPAT_RACE:-0} == 1 ]] && race=(-race)

# Upstream tests that fail with cloudwego/netpoll itself (see README.md), so
# they say nothing about us; they are skipped in both modes. go test -skip
# patterns, one per consumer.
HERTZ_SKIP=''
KITEX_SKIP=''

work=$(mktemp -d "${TMPDIR:-/tmp}/netpoll-compat.XXXXXX")
logs=$work/logs
mkdir -p "$logs"
cleanup() {
	if [[ $keep == 1 ]]; then
		echo "scratch kept in $work"
	else
		chmod -R u+w "$work" 2>/dev/null
		rm -rf "$work"
	fi
}
trap cleanup EXIT

# The copies below must resolve modules on their own; an inherited -mod
# setting or a parent go.work would change what they build.
export GOWORK=off
export GOFLAGS="-mod=mod ${GOFLAGS:-}"

passed=0
failed=0
failures=()

# step NAME CMD... runs CMD with its output in a log, prints PASS or FAIL with
# the time taken, and on failure the tail of the log.
step() {
	local name=$1
	shift
	local log
	log=$logs/$(echo "$name" | tr -c 'A-Za-z0-9._-' '_').log
	local start=$SECONDS
	if "$@" >"$log" 2>&1; then
		echo "PASS $name ($((SECONDS - start))s)$(test_counts "$log")$(retried_in "$log")"
		passed=$((passed + 1))
	else
		echo "FAIL $name ($((SECONDS - start))s)"
		failure_excerpt "$log" | sed 's/^/    /'
		failed=$((failed + 1))
		failures+=("$name")
	fi
}

# failure_excerpt LOG prints what a reader needs to see of a failed step:
# each failed test's own output (go test -v prints it just before its
# "--- FAIL" line), any panic, and the last lines of the log.
failure_excerpt() {
	grep -n -B 12 -E '^[[:space:]]*--- FAIL|^panic:' "$1" | head -n 120
	echo "... last lines of the log:"
	tail -n 15 "$1"
}

# retried_in LOG names the tests that failed once and passed on their re-run.
retried_in() {
	local names
	names=$(sed -n 's/^compat-retried: //p' "$1" | paste -sd ' ' -)
	[[ -n $names ]] && echo " (timing flake, passed on re-run: $names)"
	return 0
}

# test_counts LOG summarises a go test -v log: packages ok, top-level tests
# passed and skipped; nothing for a log of another kind.
test_counts() {
	local pkgs
	pkgs=$(grep -c '^ok ' "$1")
	[[ $pkgs -gt 0 ]] || return 0
	echo ": $pkgs packages ok, $(grep -c '^--- PASS' "$1") tests passed, $(grep -c '^--- SKIP' "$1") skipped"
}

# source_of MODULE VERSION copies the module's source into $work/NAME,
# writable, and prints the version it got.
source_of() {
	local mod=$1 version=$2 name=${1##*/} info dir
	info=$(cd "$work" && go mod download -json "$mod@$version") || return 1
	dir=$(sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p' <<<"$info")
	[[ -n $dir && -d $dir ]] || return 1
	cp -r "$dir" "$work/$name" && chmod -R u+w "$work/$name"
	sed -n 's/^[[:space:]]*"Version": "\(.*\)",$/\1/p' <<<"$info"
}

# switch_in DIR switches the module in DIR to this library with the command
# the README documents for a checkout (issue #16): it writes
# DIR/third_party/netpoll, adds the replace and runs go mod tidy.
switch_in() {
	(cd "$1" && go run -C "$root" ./cmd/netpoll-switch -project "$PWD")
}

# revert_in DIR switches back with the README's revert command.
revert_in() {
	(cd "$1" && go run -C "$root" ./cmd/netpoll-switch -project "$PWD" -revert)
}

# go_line DIR prints the go line of DIR's go.mod.
go_line() {
	(cd "$1" && go mod edit -json | sed -n 's/^[[:space:]]*"Go": "\(.*\)",$/\1/p')
}

# go_line_kept DIR BEFORE checks what resolving the consumer's dependencies
# with the library in place did to its go.mod's go line (BEFORE is the line
# before the switch). cloudwego/netpoll v0.7.2 says go 1.15; this library
# needs 1.25 (range over int, atomic Or, WaitGroup.Go), so a consumer below
# that is raised to it, and no further: a drop-in must not force its users
# past its own stated floor.
go_line_kept() {
	local before=$2 after floor
	(cd "$1" && go list -deps ./... >/dev/null) || return 1
	after=$(go_line "$1")
	# The library's own go line is its stated floor (README): a consumer's
	# line may rise to it, never past it.
	floor=$(go_line "$root")
	echo "go line before: $before, after: $after, the library's floor: $floor"
	[[ $before == "$after" ]] || [[ $(printf '%s\n%s\n' "$after" "$floor" | sort -V | tail -n 1) == "$floor" ]]
}

# uses_library DIR BIN WANT checks which netpoll the built program BIN has:
# WANT=ours wants go version -m to show the replace by the switch's copy,
# WANT=reference wants github.com/cloudwego/netpoll with no replace.
uses_library() {
	local info
	info=$(go version -m "$2") || return 1
	grep -A1 $'\tdep\tgithub.com/cloudwego/netpoll\t' <<<"$info"
	if [[ $3 == ours ]]; then
		grep -q $'^\t=>\t./third_party/netpoll\t' <<<"$info"
	else
		grep -q $'\tdep\tgithub.com/cloudwego/netpoll\t' <<<"$info" &&
			! grep -q $'^\t=>\t./third_party/netpoll\t' <<<"$info" &&
			! grep -q 'replace' "$1/go.mod" && [[ ! -e $1/third_party ]]
	fi
}

# announced LOG WANT checks the program's log for the line this library
# writes at its first EventLoop: present for ours, absent for the reference.
announced() {
	if [[ $2 == ours ]]; then
		grep 'github.com/ccb70390/netpoll in use' "$1"
	else
		! grep 'github.com/ccb70390/netpoll in use' "$1"
	fi
}

# app_module NAME REQUIREMENTS... makes a scratch module from
# compat/testdata/NAME, a service as a user writes it against the framework;
# in our mode it is switched with the documented command, then built.
app_module() {
	local name=$1
	shift
	local dir=$work/$name
	mkdir -p "$dir"
	cp "$here/testdata/$name/main.go" "$dir/"
	(cd "$dir" && go mod init "compat.example/$name" && go get "$@" && go mod tidy) || return 1
	if [[ $mode == ours ]]; then
		switch_in "$dir" || return 1
	fi
	(cd "$dir" && go build -o "$name" .) && uses_library "$dir" "$dir/$name" "$mode"
}

# app_revert NAME switches the scratch module back with the documented
# -revert and rebuilds it: it must be on cloudwego/netpoll again.
app_revert() {
	local dir=$work/$1
	revert_in "$dir" && (cd "$dir" && go build -o "$1" .) && uses_library "$dir" "$dir/$1" reference
}

# kitex_echo WANT runs kitexecho (160 RPCs over netpoll, 160 over netpollmux)
# and checks which library logged.
kitex_echo() {
	local out=$work/kitexecho/run.out
	"$work/kitexecho/kitexecho" >"$out" 2>&1
	local rc=$?
	cat "$out"
	[[ $rc == 0 ]] && grep -q '^ECHO OK$' "$out" && announced "$out" "$1"
}

# hertz_http runs hertzping and checks it with curl (or its own net/http
# client when curl is missing): 10 GETs on one connection, a 1 MiB echo.
# Which library it runs on is checked on the binary (uses_library): Hertz
# sends netpoll's log to io.Discard, so the library's line never shows.
hertz_http() {
	local dir=$work/hertzping
	if ! command -v curl >/dev/null; then
		echo "curl not found: using the net/http client"
		"$dir/hertzping" -check
		return
	fi
	"$dir/hertzping" -life 2m >"$dir/server.out" 2>&1 &
	local pid=$! addr=""
	for _ in $(seq 100); do
		addr=$(sed -n 's/^ADDR //p' "$dir/server.out")
		[[ -n $addr ]] && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	local ok=1
	if [[ -z $addr ]]; then
		echo "hertzping did not start"
		ok=0
	else
		local urls=() i
		for i in $(seq 10); do urls+=("http://$addr/ping"); done
		local out
		out=$(curl -sS -m 10 -w ' %{http_code}\n' "${urls[@]}")
		echo "GET /ping x10 on one connection:"
		echo "$out"
		[[ $(grep -c '^pong 200$' <<<"$out") == 10 ]] || ok=0
		head -c 1048576 /dev/urandom >"$dir/payload"
		local code
		code=$(curl -sS -m 10 -o "$dir/echoed" -w '%{http_code}' --data-binary @"$dir/payload" \
			-H 'Content-Type: application/octet-stream' "http://$addr/echo")
		echo "POST /echo 1 MiB: status $code"
		[[ $code == 200 ]] && cmp "$dir/payload" "$dir/echoed" || ok=0
	fi
	kill -TERM "$pid" 2>/dev/null
	wait "$pid"
	echo "--- server output"
	cat "$dir/server.out"
	[[ $ok == 1 ]]
}

# gotest_in DIR SKIP PACKAGES... runs go test in DIR, skipping the tests that
# match SKIP when it is not empty.
gotest_in() {
	local dir=$1 skip=$2
	shift 2
	# -vet=off: vet judges the consumer's test code, and how strictly depends on
	# the go line of its go.mod (see go_line_kept), not on netpoll.
	local args=(-v -vet=off ${race[@]+"${race[@]}"} -count=1 -timeout "$TEST_TIMEOUT" ${skip:+-skip "$skip"})
	local out rc
	out=$(mktemp "$work/gotest.XXXXXX")
	(cd "$dir" && go test "${args[@]}" "$@") 2>&1 | tee "$out"
	rc=${PIPESTATUS[0]}
	[[ $rc == 0 ]] && return 0
	# Some upstream tests race wall-clock sleeps against each other (Kitex
	# ttstream's Test_handlerReturnCauseCascadedCancel fails about 1 run in 60
	# on a loaded 2-core machine with cloudwego/netpoll itself). A failure of
	# named top-level tests only, with no panic or build error, gets one re-run
	# of exactly those tests; the step passes only if they all pass then, and
	# says which ones needed it. A test that fails twice fails the step.
	local failed_tests
	failed_tests=$(sed -n 's/^--- FAIL: \([^ ]*\) .*/\1/p' "$out" | sort -u | paste -sd '|' -)
	if [[ -z $failed_tests ]] || grep -qE '^panic:|build failed|\[setup failed\]|^FAIL.*\[build' "$out"; then
		return "$rc"
	fi
	echo "compat-retry: $failed_tests failed; re-running them once"
	(cd "$dir" && go test "${args[@]}" -run "^($failed_tests)\$" "$@") || return 1
	echo "compat-retried: $failed_tests"
}

echo "compat: mode=$mode library=$([[ $mode == ours ]] && echo "$root" || echo "github.com/cloudwego/netpoll (as required by each consumer)")"
echo "compat: scratch=$work"

# download_consumer NAME VERSION FALLBACK copies a consumer's source and
# prints its version; the proxy refuses to list some modules' versions, so
# "latest" falls back to a pinned one.
download_consumer() {
	local v
	v=$(source_of "github.com/cloudwego/$1" "$2" 2>/dev/null)
	if [[ -z $v && $2 == latest ]]; then
		echo "compat: the proxy did not resolve $1@latest; using $3" >&2
		v=$(source_of "github.com/cloudwego/$1" "$3")
	fi
	echo "$v"
}

# consumer_switched NAME switches the consumer's source copy (ours mode) and
# checks its go line.
consumer_switched() {
	local dir=$work/$1 before
	before=$(go_line "$dir")
	if [[ $mode == ours ]]; then
		step "$1: switch to this library (documented command)" switch_in "$dir"
	fi
	step "$1: go line raised no further than the library's floor" go_line_kept "$dir" "$before"
}

hertz_version=$(download_consumer hertz "$HERTZ_VERSION" "$HERTZ_FALLBACK")
if [[ -z $hertz_version ]]; then
	step "hertz: download $HERTZ_VERSION" false
else
	echo "compat: hertz $hertz_version"
	if [[ $quick == 0 ]]; then
		consumer_switched hertz
		# The packages that import netpoll directly (grep '"github.com/cloudwego/netpoll'):
		# the transport, and HTTP/1 whose readers and writers wrap netpoll buffers.
		step "hertz: go test ./pkg/network/netpoll/..." \
			gotest_in "$work/hertz" "$HERTZ_SKIP" ./pkg/network/netpoll/...
		step "hertz: go test ./pkg/protocol/http1/..." \
			gotest_in "$work/hertz" "$HERTZ_SKIP" ./pkg/protocol/http1/... ./pkg/common/test/mock/...
	fi
	step "hertz: build hertzping (server.Default, netpoll transport)$([[ $mode == ours ]] && echo ', switched')" \
		app_module hertzping "github.com/cloudwego/hertz@$hertz_version"
	step "hertz: real HTTP client gets 200 pong and a 1 MiB echo" hertz_http
	if [[ $mode == ours ]]; then
		step "hertz: -revert puts hertzping back on cloudwego/netpoll" app_revert hertzping
		step "hertz: after -revert, the same HTTP checks on cloudwego/netpoll" hertz_http
	fi
fi

kitex_version=$(download_consumer kitex "$KITEX_VERSION" "$KITEX_FALLBACK")
if [[ -z $kitex_version ]]; then
	step "kitex: download $KITEX_VERSION" false
else
	echo "compat: kitex $kitex_version"
	consumer_switched kitex
	# Every package that imports netpoll (grep '"github.com/cloudwego/netpoll')
	# except ./client, whose tests only use a mock netpoll connection.
	if [[ $quick == 0 ]]; then
		step "kitex: go test ./pkg/remote/trans/netpoll/... ./pkg/remote/trans/netpollmux/..." \
			gotest_in "$work/kitex" "$KITEX_SKIP" ./pkg/remote/trans/netpoll/... ./pkg/remote/trans/netpollmux/...
		step "kitex: go test ./pkg/remote/trans/nphttp2/..." \
			gotest_in "$work/kitex" "$KITEX_SKIP" ./pkg/remote/trans/nphttp2/...
		step "kitex: go test ./pkg/remote/trans/{ttstream,invoke,gonet}/... ./pkg/remote/codec/..." \
			gotest_in "$work/kitex" "$KITEX_SKIP" ./pkg/remote/trans/ttstream/... ./pkg/remote/trans/invoke/... \
			./pkg/remote/trans/gonet/... ./pkg/remote/codec/...
	else
		# The streaming transport: its TestSendFailed and TestTransportClose
		# tell a cut stream from a clean end by ErrEOF not matching io.EOF.
		step "kitex: go test ./pkg/remote/trans/ttstream/..." \
			gotest_in "$work/kitex" "$KITEX_SKIP" ./pkg/remote/trans/ttstream/...
	fi
	step "kitex: build kitexecho (JSON generic client and server)$([[ $mode == ours ]] && echo ', switched')" \
		app_module kitexecho "github.com/cloudwego/kitex@$kitex_version"
	step "kitex: 160 echo RPCs over netpoll, 160 over netpollmux" kitex_echo "$mode"
	if [[ $mode == ours ]]; then
		step "kitex: -revert puts kitexecho back on cloudwego/netpoll" app_revert kitexecho
		step "kitex: after -revert, the same RPCs on cloudwego/netpoll" kitex_echo reference
	fi
fi

echo
echo "compat summary ($mode): $passed passed, $failed failed"
for f in "${failures[@]}"; do echo "  failed: $f"; done
[[ $failed == 0 ]]
