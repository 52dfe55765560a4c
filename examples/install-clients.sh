#!/usr/bin/env bash
# install-clients.sh installs the real clients that drive the example servers in
# tests and in compare.sh: curl, wrk, redis-cli, redis-benchmark and redis-server,
# all from Debian's packages. It is idempotent: when every tool is already on PATH
# it does nothing, and it runs apt-get update only when an install needs it.
set -euo pipefail

need=()
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v wrk >/dev/null 2>&1 || need+=(wrk)
command -v redis-cli >/dev/null 2>&1 || need+=(redis-tools)
command -v redis-benchmark >/dev/null 2>&1 || need+=(redis-tools)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v taskset >/dev/null 2>&1 || need+=(util-linux)
if [ ${#need[@]} -eq 0 ]; then
	exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
	sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
# Try the install from the cached lists first; refresh them only if that fails
# (a fresh image has empty lists, so the first try fails fast there).
if ! $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null 2>&1; then
	$sudo apt-get update -qq >/dev/null
	$sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# The redis-server package starts a system instance on port 6379 where an init
# system runs; the tests start their own on a free port, so stop that one if it runs.
if command -v service >/dev/null 2>&1; then
	$sudo service redis-server stop >/dev/null 2>&1 || true
fi
