#!/usr/bin/env bash
# Install the build and test tools `make test` needs, by Debian package
# name, when missing (root on Debian 12).  Tests' own tools are installed by
# tests/run.sh the same way.
set -u
missing=()
command -v musl-gcc >/dev/null || missing+=(musl-tools)
/usr/bin/python3 -c 'import kconfiglib' 2>/dev/null || missing+=(python3-kconfiglib)
command -v gcc >/dev/null || missing+=(gcc)
command -v make >/dev/null || missing+=(make)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
	echo "deps: please install: ${missing[*]}" >&2
	exit 1
fi
echo "deps: installing ${missing[*]}"
apt-get update -q >/dev/null
DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -q "${missing[@]}" >/dev/null
