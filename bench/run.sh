#!/bin/sh
# SPDX-License-Identifier: MIT
# bench/run.sh — build every echo server and run the side-by-side benchmark.
#
#   bench/run.sh            full run: 3 rounds x 5 s per cell, 10,000 idle conns
#   bench/run.sh --quick    one round, 1 s cells, 1,000 idle conns: checks the script
#   bench/run.sh --rounds 5 --duration 10 --only epoll,sockserve-event --scenarios S3,S4
#
# Writes bench/results.md, bench/results.json and bench/results.png. Needs two
# CPUs (server on CPU 0, load generator on CPU 1). See bench/README.md.
set -eu
cd "$(dirname "$0")/.."

PACKAGES="libuv1-dev libevent-dev liburing-dev sockperf gnuplot-nox python3-uvloop
cmake make gcc pkg-config libssl-dev libcmocka-dev libedit-dev util-linux"
missing=""
for p in $PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
        missing="$missing $p"
done
if [ -n "$missing" ]; then
    cmd="apt-get install -y --no-install-recommends$missing"
    if [ "$(id -u)" -ne 0 ]; then
        echo "bench/run.sh: missing packages:$missing" >&2
        echo "run as root:  apt-get update && $cmd" >&2
        exit 1
    fi
    echo "bench/run.sh: installing:$missing" >&2
    DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive $cmd
fi
if [ "$(nproc)" -lt 2 ]; then
    echo "bench/run.sh: needs at least 2 CPUs (server on CPU 0, client on CPU 1)" >&2
    exit 1
fi

# sockserve: an optimised build of its own, so a Debug or sanitizer build in
# build/ never ends up measured.
BUILD="${BENCH_BUILD:-build-bench}"
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD" -j "$(nproc)" --target sockserve >/dev/null

# The peers: the same compiler and -O2 as sockserve's RelWithDebInfo build.
OUT=bench/out
mkdir -p "$OUT"
CC="${CC:-cc}"
CFLAGS="-O2 -Wall -Wextra"
$CC $CFLAGS -o "$OUT/epoll_echo" bench/peers/epoll_echo.c
$CC $CFLAGS -pthread -o "$OUT/thread_echo" bench/peers/thread_echo.c
$CC $CFLAGS -o "$OUT/libuv_echo" bench/peers/libuv_echo.c $(pkg-config --cflags --libs libuv)
$CC $CFLAGS -o "$OUT/libevent_echo" bench/peers/libevent_echo.c \
    $(pkg-config --cflags --libs libevent)
$CC $CFLAGS -o "$OUT/uring_echo" bench/peers/uring_echo.c $(pkg-config --cflags --libs liburing)

exec /usr/bin/python3 bench/runner.py --sockserve "$BUILD/sockserve" "$@"
