#!/bin/sh
# Installs the Debian packages cohort needs, if they are missing: the local
# driver's Jupyter, git (classes' materials), with "test" also what the tests use (Chromium for the
# browser tests, packer and shellcheck for the image template, Postgres), with
# "bench" what the benchmarks compare against (wrk, configurable-http-proxy).
# Safe to run again: it does nothing when all is there.
set -eu

missing=""
[ -x /usr/bin/jupyter-notebook ] || missing="$missing jupyter-notebook"
/usr/bin/python3 -c 'import ipykernel' 2>/dev/null || missing="$missing python3-ipykernel"
command -v pgrep >/dev/null 2>&1 || missing="$missing procps"
# Classes' materials are fetched from git repositories.
command -v git >/dev/null 2>&1 || missing="$missing git"
if [ "${1:-}" = bench ]; then
	command -v wrk >/dev/null 2>&1 || missing="$missing wrk"
	command -v configurable-http-proxy >/dev/null 2>&1 || missing="$missing node-configurable-http-proxy"
fi
if [ "${1:-}" = test ]; then
	[ -x /usr/bin/chromium ] || missing="$missing chromium"
	command -v packer >/dev/null 2>&1 || missing="$missing packer"
	command -v shellcheck >/dev/null 2>&1 || missing="$missing shellcheck"
	# The runtime image's kind of notebook server (Jupyter Server), tested
	# with the local driver.
	[ -x /usr/bin/jupyter-server ] || missing="$missing jupyter-server"
	# The agent's work disk: a loop device formatted and mounted as a VM's.
	command -v mkfs.ext4 >/dev/null 2>&1 || missing="$missing e2fsprogs"
	command -v losetup >/dev/null 2>&1 || missing="$missing mount"
	command -v blkid >/dev/null 2>&1 || missing="$missing util-linux"
fi
if [ "${1:-}" = test ] || [ "${1:-}" = bench ]; then
	# The Postgres store's tests run a server of their own (store/postgres/pgtest).
	ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || missing="$missing postgresql"
fi

[ -z "$missing" ] && exit 0

echo "cohort: installing Debian packages:$missing" >&2
if [ "$(id -u)" -eq 0 ]; then
	sudo=""
elif command -v sudo >/dev/null 2>&1; then
	sudo="sudo"
else
	echo "cohort: need root to install:$missing (apt-get install$missing)" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
# shellcheck disable=SC2086 # the package list is meant to split
$sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null
