#!/bin/sh
# SPDX-License-Identifier: MIT
# bench/rcmd/run.sh — sockserve rcmd against OpenSSH on 127.0.0.1 (issue 5).
#
#   bench/rcmd/run.sh            3 rounds: 50 fresh connections, 200 commands on
#                                one connection, 1 GiB of output (~3-4 min)
#   bench/rcmd/run.sh --quick    1 round, small sizes: checks the script, writes to
#                                bench/out/rcmd-quick/
#   bench/rcmd/run.sh --rounds 5 --fresh 200 --session 1000 --bytes 268435456
#
# Run from anywhere, as root (it starts its own sshd on 127.0.0.1). Writes
# bench/rcmd/results.md and results.json. See bench/README.md.
set -eu
cd "$(dirname "$0")/../.."

if [ "$(id -u)" -ne 0 ]; then
    echo "bench/rcmd/run.sh: run as root (it starts its own sshd, PermitRootLogin yes)" >&2
    exit 1
fi
PACKAGES="openssh-server openssh-client cmake make gcc pkg-config libssl-dev libedit-dev"
missing=""
for p in $PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
        missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo "bench/rcmd/run.sh: installing:$missing" >&2
    DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $missing
fi
# sshd's privilege separation directory (absent until the ssh service has run)
mkdir -p /run/sshd

# The same optimised build as bench/run.sh, never a Debug or sanitizer build.
BUILD="${BENCH_BUILD:-build-bench}"
echo "bench/rcmd/run.sh: building sockserve in $BUILD/" >&2
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD" -j "$(nproc)" --target sockserve >/dev/null

exec /usr/bin/python3 bench/rcmd/runner.py --sockserve "$BUILD/sockserve" "$@"
