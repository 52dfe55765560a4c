#!/usr/bin/env bash
# compat/run.sh runs the netpoll-facing tests of the real consumers, Hertz and
# Kitex, against this library (issue #4). Each consumer's module source is
# copied from the module proxy, its go.mod gets
#   replace github.com/cloudwego/netpoll => <a copy of this library renamed to that path>
# and its own netpoll transport tests run; then a small Hertz server answers a
# real HTTP client and a Kitex client makes echo RPCs, both over netpoll.
#
#   compat/run.sh               against this library (the working tree's files)
#   compat/run.sh --reference   the same steps without the replace: cloudwego/netpoll itself
#   compat/run.sh --keep        keep the scratch directory (printed at the end)
#
# Needs only the Go toolchain and the module proxy (curl is used when present).
# Prints one PASS/FAIL line per step and a summary; exits 1 if any step failed.
# Environment: HERTZ_VERSION (default latest), KITEX_VERSION (default latest,
# falling back to KITEX_FALLBACK when the proxy will not list versions),
# TEST_TIMEOUT (per go test, default 10m), COMPAT_RACE=1 to add -race.
set -uo pipefail

mode=ours
keep=0
for arg in "$@"; do
	case $arg in
	--reference) mode=reference ;;
	--keep) keep=1 ;;
	-h | --help)
		sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'
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

# Tests that pin a behaviour this library changes on purpose, skipped in our
# mode only (README.md, "Deliberate differences"): Kitex ttstream's
# TestTransportClose and TestSendFailed expect a read at the peer's close to
# fail with an error that does NOT match io.EOF, so that DecodeFrame turns it
# into errIllegalFrame; API.md makes our ErrEOF match io.EOF under errors.Is.
KITEX_OURS_SKIP='^(TestTransportClose|TestSendFailed)$'

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
		echo "PASS $name ($((SECONDS - start))s)"
		passed=$((passed + 1))
	else
		echo "FAIL $name ($((SECONDS - start))s)"
		tail -n 40 "$log" | sed 's/^/    /'
		failed=$((failed + 1))
		failures+=("$name")
	fi
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

# renamed_copy puts this library's files (tracked and untracked, without the
# separate modules and examples) in $work/netpoll under the reference's module
# path, so a replace directive can stand it in for cloudwego/netpoll.
renamed_copy() {
	local dst=$work/netpoll
	mkdir -p "$dst"
	(cd "$root" && git ls-files --cached --others --exclude-standard) |
		grep -Ev '^(bench|compat|conformance|examples)/' |
		while IFS= read -r f; do
			[[ -f $root/$f ]] || continue
			mkdir -p "$dst/$(dirname "$f")"
			cp "$root/$f" "$dst/$f"
		done
	sed -i 's#^module github.com/ccb70390/netpoll$#module github.com/cloudwego/netpoll#' "$dst/go.mod"
	find "$dst" -name '*.go' -exec sed -i 's#github.com/ccb70390/netpoll#github.com/cloudwego/netpoll#g' {} +
	(cd "$dst" && go build ./...)
}

# use_library DIR points the module in DIR at the library under test.
use_library() {
	[[ $mode == ours ]] || return 0
	(cd "$1" && go mod edit -replace "github.com/cloudwego/netpoll=$work/netpoll")
}

# go_line_kept DIR checks what resolving the consumer's dependencies with the
# library in place does to its go.mod's go line. cloudwego/netpoll v0.7.2
# says go 1.15; this library needs 1.25 (range over int, atomic Or,
# WaitGroup.Go), so a consumer below that is raised to it, and no further:
# a drop-in must not force its users past its own stated floor.
go_line_kept() {
	local before after floor
	before=$(cd "$1" && go mod edit -json | sed -n 's/^[[:space:]]*"Go": "\(.*\)",$/\1/p')
	(cd "$1" && go list -deps ./... >/dev/null) || return 1
	after=$(cd "$1" && go mod edit -json | sed -n 's/^[[:space:]]*"Go": "\(.*\)",$/\1/p')
	# The library's own go line is its stated floor (README): a consumer's
	# line may rise to it, never past it.
	floor=$(cd "$here/.." && go mod edit -json | sed -n 's/^[[:space:]]*"Go": "\(.*\)",$/\1/p')
	echo "go line before: $before, after: $after, the library's floor: $floor"
	[[ $before == "$after" ]] || [[ $(printf '%s\n%s\n' "$after" "$floor" | sort -V | tail -n 1) == "$floor" ]]
}

# app_module NAME REQUIREMENTS... makes a scratch module from compat/testdata/NAME.
app_module() {
	local name=$1
	shift
	local dir=$work/$name
	mkdir -p "$dir"
	cp "$here/testdata/$name/main.go" "$dir/"
	(cd "$dir" && go mod init "compat.example/$name" && go get "$@") || return 1
	use_library "$dir" && (cd "$dir" && go mod tidy && go build -o "$name" .)
}

# hertz_http runs hertzping and checks it with curl (or its own net/http
# client when curl is missing): 10 GETs on one connection, a 1 MiB echo.
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

# skip_for_mode BOTH OURS joins the skip patterns that apply in this mode.
skip_for_mode() {
	if [[ $mode == ours && -n $2 ]]; then
		echo "${1:+$1|}$2"
	else
		echo "$1"
	fi
}

# gotest_in DIR SKIP PACKAGES... runs go test in DIR, skipping the tests that
# match SKIP when it is not empty.
gotest_in() {
	local dir=$1 skip=$2
	shift 2
	# -vet=off: vet judges the consumer's test code, and how strictly depends on
	# the go line of its go.mod (see go_line_kept), not on netpoll.
	(cd "$dir" && go test -vet=off ${race[@]+"${race[@]}"} -count=1 -timeout "$TEST_TIMEOUT" ${skip:+-skip "$skip"} "$@")
}

echo "compat: mode=$mode library=$([[ $mode == ours ]] && echo "$root" || echo "github.com/cloudwego/netpoll (as required by each consumer)")"
echo "compat: scratch=$work"

if [[ $mode == ours ]]; then
	step "netpoll: renamed copy builds as github.com/cloudwego/netpoll" renamed_copy
fi

hertz_version=$(source_of github.com/cloudwego/hertz "$HERTZ_VERSION")
if [[ -z $hertz_version ]]; then
	step "hertz: download $HERTZ_VERSION" false
else
	echo "compat: hertz $hertz_version"
	[[ $mode == ours ]] && step "hertz: replace cloudwego/netpoll with ours" use_library "$work/hertz"
	step "hertz: go line raised no further than the library's floor" go_line_kept "$work/hertz"
	# The packages that import netpoll directly (grep '"github.com/cloudwego/netpoll'):
	# the transport, and HTTP/1 whose readers and writers wrap netpoll buffers.
	step "hertz: go test ./pkg/network/netpoll/..." \
		gotest_in "$work/hertz" "$HERTZ_SKIP" ./pkg/network/netpoll/...
	step "hertz: go test ./pkg/protocol/http1/..." \
		gotest_in "$work/hertz" "$HERTZ_SKIP" ./pkg/protocol/http1/... ./pkg/common/test/mock/...
	step "hertz: build hertzping (server.Default, netpoll transport)" \
		app_module hertzping "github.com/cloudwego/hertz@$hertz_version"
	step "hertz: real HTTP client gets 200 pong and a 1 MiB echo" hertz_http
fi

kitex_version=$(source_of github.com/cloudwego/kitex "$KITEX_VERSION" 2>/dev/null)
if [[ -z $kitex_version && $KITEX_VERSION == latest ]]; then
	echo "compat: the proxy did not resolve kitex@latest; using $KITEX_FALLBACK"
	kitex_version=$(source_of github.com/cloudwego/kitex "$KITEX_FALLBACK")
fi
if [[ -z $kitex_version ]]; then
	step "kitex: download $KITEX_VERSION" false
else
	echo "compat: kitex $kitex_version"
	[[ $mode == ours ]] && step "kitex: replace cloudwego/netpoll with ours" use_library "$work/kitex"
	step "kitex: go line raised no further than the library's floor" go_line_kept "$work/kitex"
	# Every package that imports netpoll (grep '"github.com/cloudwego/netpoll')
	# except ./client, whose tests only use a mock netpoll connection.
	step "kitex: go test ./pkg/remote/trans/netpoll/... ./pkg/remote/trans/netpollmux/..." \
		gotest_in "$work/kitex" "$KITEX_SKIP" ./pkg/remote/trans/netpoll/... ./pkg/remote/trans/netpollmux/...
	step "kitex: go test ./pkg/remote/trans/nphttp2/..." \
		gotest_in "$work/kitex" "$KITEX_SKIP" ./pkg/remote/trans/nphttp2/...
	step "kitex: go test ./pkg/remote/trans/{ttstream,invoke,gonet}/... ./pkg/remote/codec/..." \
		gotest_in "$work/kitex" "$(skip_for_mode "$KITEX_SKIP" "$KITEX_OURS_SKIP")" ./pkg/remote/trans/ttstream/... ./pkg/remote/trans/invoke/... \
		./pkg/remote/trans/gonet/... ./pkg/remote/codec/...
	step "kitex: build kitexecho (JSON generic client and server)" \
		app_module kitexecho "github.com/cloudwego/kitex@$kitex_version"
	step "kitex: 160 echo RPCs over netpoll" "$work/kitexecho/kitexecho"
fi

echo
echo "compat summary ($mode): $passed passed, $failed failed"
for f in "${failures[@]}"; do echo "  failed: $f"; done
[[ $failed == 0 ]]
