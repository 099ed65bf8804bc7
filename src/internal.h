/* SPDX-License-Identifier: MIT */
/* internal.h — helpers shared by the library's own files (not installed). */
#ifndef SS_INTERNAL_H
#define SS_INTERNAL_H

#include "sockserve.h"

#include <stdarg.h>
#include <stdint.h>

#define SS__ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Fill `err` (if not NULL) with `code` and a printf-style message; returns
 * `code` so callers can write `return ss__fail(err, rc, "...")`. */
int ss__fail(ss_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Monotonic clock in milliseconds. */
int64_t ss__now_ms(void);
/* An accept() error about the connection at hand (it went away, or Linux
 * passed on a network error), not about the listener: try the next one. */
bool ss__accept_retryable(int e);

/* A deadline `seconds` from now, or -1 for SS_TIMEOUT_NONE (any negative). */
int64_t ss__deadline(double seconds);
/* Milliseconds left until `deadline` for poll(): -1 when there is none,
 * 0 when it has passed. */
int ss__remaining_ms(int64_t deadline);

/*
 * Wait until `fd` is ready for `events` (POLLIN/POLLOUT) or `deadline`
 * passes. Returns 0 when ready (including POLLERR/POLLHUP: the next I/O call
 * reports them), SS_ETIMEOUT, or a negative errno. Retries EINTR.
 */
int ss__wait_fd(int fd, short events, int64_t deadline);

/*
 * Set on a thread while a coroutine runs there (coro_sched.c), NULL
 * otherwise: the library's blocking waits (ss__wait_fd, ss_sleep, the
 * blocking-socket paths of sock.c) go through it to the coroutine's loop
 * instead of poll(). A pointer, so this file and its users need nothing of
 * the coroutine code.
 */
typedef struct ss__wait_hooks {
    int (*wait_fd)(int fd, short events, int64_t deadline);
    int (*sleep_ms)(int64_t ms);
    int (*poll)(struct pollfd *fds, nfds_t nfds, int timeout_ms);
    /* After a short read of stream socket `fd`: may the next read be
     * taken as EAGAIN without trying (transport_fd.c says when)? */
    bool (*read_would_block)(int fd);
} ss__wait_hooks;
extern _Thread_local const ss__wait_hooks *ss__wait_hook;

/* O_NONBLOCK on or off. */
int ss__set_nonblocking(int fd, int on);

/* SS_EBADADDR with err->msg "bad address 'TEXT': REASON", TEXT quoted
 * bounded and printable (addr.c). */
int ss__bad_addr(ss_error *err, const char *text, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The canonical text of `a` for an error message (never fails: a placeholder
 * when the address cannot be formatted). */
void ss__addr_text(const ss_addr *a, char *buf, size_t len);

/* In a child just forked: make the TLS context usable whatever the
 * parent's other threads held at fork() (tls.c). NULL is fine. */
void ss__tls_ctx_after_fork(ss_tls_ctx *ctx);

/* Bytes the stream's transport has read and written so far (for the one
 * log line at the end of a connection; stream.c). */
void ss__stream_counts(const ss_stream *s, uint64_t *in, uint64_t *out);
/* ss_stream_write then ss_stream_flush (ss_request_reply): the same result,
 * but with nothing buffered the bytes go straight from `buf` to the
 * transport, with no copy through the stream's buffer (stream.c). */
int ss__stream_write_flush(ss_stream *s, const void *buf, size_t len);

#endif
