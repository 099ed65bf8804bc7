/* SPDX-License-Identifier: MIT */
/* engine.h — the load generator behind `sockserve bench`.
 *
 * One thread, one epoll set, N connections each keeping D messages of S bytes
 * in flight against an echo server. Every echoed byte is checked against a
 * deterministic per-connection pattern and every message's round trip goes
 * into a histogram. The engine never prints: progress goes to a callback,
 * errors into `result->error`. */
#ifndef SS_BENCH_ENGINE_H
#define SS_BENCH_ENGINE_H

#include "bench/histogram.h"
#include "sockserve.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BENCH_MAX_CONNS 100000
#define BENCH_MAX_DEPTH 4096
#define BENCH_MAX_SIZE (16u << 20)
#define BENCH_MAX_WINDOW (64u << 20) /* depth * size: bytes in flight per connection */

typedef struct bench_opts {
    ss_addr addr;
    long conns;
    long depth;
    size_t size;
    double duration;   /* measured window, seconds */
    double warmup_max; /* bound on connecting + the first echo of every connection */
    bool idle;         /* after the warm-up send nothing: hold the connections idle */
    long server_pid;   /* > 0: report the server's CPU time over the window */
    ss_tls_ctx *tls;   /* a client context: every connection does a TLS
                          handshake first (counted in the warm-up) */
    const char *server_name; /* TLS: SNI and the name verified (NULL: none) */
    bool resume;       /* TLS: one connection first to get a session ticket,
                          then every connection resumes it */
} bench_opts;

/* What a progress callback sees, about once a second. */
typedef struct bench_progress {
    bool warming;         /* still in the warm-up */
    long warmed;          /* connections that have had their first echo */
    double elapsed;       /* seconds since the clock started (or since start) */
    uint64_t messages;    /* in the measured window so far */
    double interval_rate; /* messages/s over the last interval */
    uint64_t p99_ns;      /* of the window so far */
} bench_progress;

typedef void (*bench_progress_fn)(const bench_progress *p, void *arg);
/* Called once when the warm-up ends (used by --idle to announce itself). */
typedef void (*bench_warm_fn)(long conns, double warmup_seconds, void *arg);

typedef struct bench_result {
    uint64_t messages;    /* completed inside the measured window */
    uint64_t bytes;       /* echoed payload received inside the window */
    double seconds;       /* length of the measured window */
    double warmup;        /* seconds from the first connect to the last first echo */
    long conns;           /* connections that took part */
    long errors;          /* 0, or 1 when the run stopped on an error */
    double server_cpu;    /* seconds of server CPU (utime+stime) in the window, or -1 */
    double client_cpu;    /* seconds of our own CPU in the window */
    long resumed;         /* TLS: connections whose session was resumed */
    bench_hist hist;      /* round trips of messages sent and answered in the window */
    char error[SS_ERROR_MSG_MAX];
} bench_result;

/*
 * Run one benchmark. Returns 0 or a negative code with result->error set to
 * one line (a refused connection, a mismatched byte, a peer that closed, a
 * warm-up that ran out of time). `progress` (may be NULL) is called about
 * once a second; `warm` (may be NULL) once when the clock starts.
 */
int bench_run(const bench_opts *o, bench_result *result, bench_progress_fn progress,
              bench_warm_fn warm, void *arg);

#endif
