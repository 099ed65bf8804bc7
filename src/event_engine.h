/* SPDX-License-Identifier: MIT */
/* event_engine.h — N loops on N threads serving one socket: what the event
 * model runs, testable without the server core. Private. */
#ifndef SS_EVENT_ENGINE_H
#define SS_EVENT_ENGINE_H

#include "event_internal.h"

typedef struct ss__engine ss__engine;

typedef struct ss__engine_opts {
    int workers; /* loops (threads); 0 = the number of online cores */
    int fd;      /* listening stream socket or datagram socket; stays the
                    caller's. Shared by every loop with EPOLLEXCLUSIVE. */
    /* Alternative for measurements: one descriptor per loop (e.g. bound
       with SO_REUSEPORT); `workers` of them. NULL = share `fd`. */
    const int *per_loop_fds;
    const struct ss_event_handler *handler; /* must outlive the engine */
    int max_conns;                          /* total, split evenly over the loops; 0 = none */
    double idle_timeout;                    /* seconds; 0 = never */
    double write_timeout;                   /* output stuck this long closes; 0 = never */
    size_t max_packet;                      /* datagram sockets; 0 = 65536 */
    bool (*verify)(void *arg, int fd, const ss_addr *peer);
    void *verify_arg;
    void (*unopened)(void *arg, const ss_addr *peer, int reason, const char *why);
    ss_tls_ctx *tls;          /* stream: serve TLS (ss_listener_opts.tls) */
    double handshake_timeout; /* TLS handshake bound, seconds (0 = 10) */
    /* PROXY protocol on every loop's listener (ss_listener_opts says how):
       proxy_refused is called with verify_arg. */
    bool proxy_protocol;
    double proxy_timeout;
    void (*proxy_refused)(void *arg, const ss_addr *peer, int reason, const char *why);
    /* Called on each loop's thread before it runs / after it stops: e.g.
       to give each loop its own state. May be NULL. */
    void (*loop_init)(ss_loop *loop, int index, void *arg);
    void *loop_arg;
    ss_backend backend; /* every loop's (auto: decided once, for all) */
    bool held;  /* start without accepting: ss__engine_start_accepting() */
    void *user; /* anything: ss__engine_user_of() */
} ss__engine_opts;

/* Make the loops, register the socket on each, start the threads. */
int ss__engine_start(ss__engine **out, const ss__engine_opts *o, ss_error *err);
/* Stop accepting (stream) / receiving (datagram) on every loop; open
 * connections go on. Returns once every loop has done it: from then on no
 * loop touches the socket, so its owner may close it. Any thread but a
 * loop's. */
void ss__engine_stop_accepting(ss__engine *e);
/* Accept again (or for the first time, after `held`). */
void ss__engine_start_accepting(ss__engine *e);
/* Stop accepting, then wait until no connection is left or `deadline`
 * (ss__deadline; -1 = forever) passes. True when none is left. */
bool ss__engine_drain(ss__engine *e, int64_t deadline);
/* Close every connection (on_close gets `reason`) and wait until done. */
void ss__engine_abort(ss__engine *e, int reason);
/* Stop the loops, join the threads, free everything (what is still open is
 * closed with reason 0). NULL is fine. */
void ss__engine_free(ss__engine *e);
/* Connections open across all loops (any thread). */
size_t ss__engine_conns(const ss__engine *e);
int ss__engine_workers(const ss__engine *e);
/* The loops' backend, and why auto fell back to epoll (NULL: it did not). */
ss_backend ss__engine_backend(const ss__engine *e);
const char *ss__engine_fallback(const ss__engine *e);
/* opts.user of the engine running `loop` (from any of its callbacks). */
void *ss__engine_user_of(ss_loop *loop);
ss_loop *ss__engine_loop(ss__engine *e, int index);
/* Serve a connection the caller accepted and admitted (its PROXY header
 * read: `peer`) on the first loop, as its listener would (TLS, timeouts,
 * max_conns, counted by drain). Any thread; takes fd (closed on failure). */
int ss__engine_adopt(ss__engine *e, int fd, const ss_addr *peer);
/* The datagram socket of loop `index` (NULL for stream engines); use it on
 * that loop only. */
ss_dgram *ss__engine_dgram(ss__engine *e, int index);

#endif
