#!/usr/bin/env bash
# install-clients.sh installs the real clients that drive the example servers in
# tests and in compare.sh: curl, wrk, redis-cli, redis-benchmark, redis-server and openssl,
# all from Debian's packages. It is idempotent: when every tool is already on PATH
# it does nothing, and it runs apt-get update only when an install needs it.
#
# It never fails: where apt-get is missing, or the install fails (no network, no
# root and no sudo), it says which clients are missing and exits 0. The tests
# that need a missing client skip, naming it.
set -uo pipefail

need=()
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v wrk >/dev/null 2>&1 || need+=(wrk)
command -v redis-cli >/dev/null 2>&1 || need+=(redis-tools)
command -v redis-benchmark >/dev/null 2>&1 || need+=(redis-tools)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v taskset >/dev/null 2>&1 || need+=(util-linux)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
if [ ${#need[@]} -eq 0 ]; then
	exit 0
fi
# One name per package, in the order first needed.
mapfile -t need < <(printf '%s\n' "${need[@]}" | awk '!seen[$0]++')

skip() {
	echo "install-clients.sh: $1; not installed: ${need[*]}."
	echo "install-clients.sh: the example tests that need them will skip."
	exit 0
}

if ! command -v apt-get >/dev/null 2>&1; then
	skip "no apt-get on this machine (install the packages with your system's package manager)"
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
	if ! command -v sudo >/dev/null 2>&1; then
		skip "not root and no sudo"
	fi
	sudo="sudo -n"
fi
export DEBIAN_FRONTEND=noninteractive
# Try the install from the cached lists first; refresh them only if that fails
# (a fresh image has empty lists, so the first try fails fast there).
if ! $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null 2>&1; then
	if ! $sudo apt-get update -qq >/dev/null 2>&1 ||
		! $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null 2>&1; then
		skip "apt-get could not install them"
	fi
fi
# The redis-server package starts a system instance on port 6379 where an init
# system runs; the tests start their own on a free port, so stop that one if it runs.
if command -v service >/dev/null 2>&1; then
	$sudo service redis-server stop >/dev/null 2>&1 || true
fi
exit 0
