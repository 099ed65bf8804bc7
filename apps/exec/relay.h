/* SPDX-License-Identifier: MIT */
/*
 * relay.h — copy a connection both ways between two transports, for
 * `sockserve exec` when the program cannot be given the connection itself
 * (TLS: the program gets one end of a socketpair and the relay moves
 * plaintext between the other end and the connection's ss_transport).
 *
 * Two directions, each with one bounded buffer: "up" from the peer (the
 * client's connection) to the program, "down" from the program to the peer.
 * A direction reads its source only while its buffer has room, so a side
 * that does not read slows the other down (backpressure) and memory never
 * grows past the two buffers. End of file is passed on as a half-close: once
 * a source has ended and its buffer is written out, the other side's write
 * direction is shut down (shutdown_write: SHUT_WR on a socket, close_notify
 * on TLS), and the opposite direction goes on until it ends too. A write
 * that fails (the receiver is gone) ends its direction, and its source is
 * read no more.
 *
 * Both transports are polled through their wait_events(), so a TLS read
 * that needs to write (or the reverse) is waited for correctly.
 *
 * The relay is single-threaded and owns neither transport: the caller
 * closes both. One relay per connection, used by one thread.
 */
#ifndef SS_APPS_EXEC_RELAY_H
#define SS_APPS_EXEC_RELAY_H

#include "sockserve.h"

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EXEC_RELAY_BUFFER_DEFAULT (64 * 1024)

typedef struct exec_relay_opts {
    size_t buffer;             /* bytes per direction; 0 = 64 KiB */
    int idle_timeout_ms;       /* nothing moved either way for this long:
                                  end with SS_ETIMEOUT; 0 = never */
    int peer_write_timeout_ms; /* the peer takes none of the bytes waiting
                                  for it for this long: SS_ETIMEOUT; 0 = never */
} exec_relay_opts;

/* One direction (private to relay.c; in the header so a relay embeds). */
typedef struct exec_relay_dir {
    ss_transport *src, *dst;
    unsigned char *buf;
    size_t cap, start, len; /* bytes waiting are buf[start, start + len) */
    bool src_done;          /* end of file (or an error) from src */
    bool dst_done;          /* dst's write side shut down, or dst is gone */
    bool read_blocked;      /* src said -EAGAIN: wait for its events */
    bool write_blocked;     /* dst said -EAGAIN (write or shutdown) */
    int error;              /* first error seen in this direction, 0 if none */
    uint64_t bytes;         /* delivered to dst */
} exec_relay_dir;

typedef struct exec_relay {
    exec_relay_dir up;   /* peer -> program */
    exec_relay_dir down; /* program -> peer */
    exec_relay_opts opts;
    int64_t last_moved_ms;   /* for idle_timeout_ms */
    int64_t peer_stalled_ms; /* since when down's writes wait (0 = they do not) */
    const char *why;         /* after SS_ETIMEOUT: "idle" or "peer not reading" */
} exec_relay;

/* What exec_relay_run returns besides 0 (both directions ended) and
 * negative codes. */
enum {
    EXEC_RELAY_WATCH = 1,    /* a watched descriptor is ready (see revents) */
    EXEC_RELAY_DEADLINE = 2, /* the caller's deadline passed */
};

/* Set up a relay between `peer` and `prog` (both must outlive it; their
 * descriptors non-blocking, as ss_transport_fd_init makes them). `opts` may
 * be NULL. Returns 0 or -ENOMEM. */
int exec_relay_init(exec_relay *r, ss_transport *peer, ss_transport *prog,
                    const exec_relay_opts *opts);
void exec_relay_free(exec_relay *r);

/* Queue bytes as if read from the peer (what a stream had buffered before
 * the relay started). Returns 0, or SS_ETOOLONG when they do not fit. */
int exec_relay_push_up(exec_relay *r, const void *data, size_t len);

/*
 * Move bytes until both directions have ended (returns 0), a descriptor of
 * `watch` (at most 8; may be NULL with nwatch 0) is ready (EXEC_RELAY_WATCH,
 * its revents set), `deadline_ms` (ss-style monotonic ms, -1 = none) passes
 * (EXEC_RELAY_DEADLINE), a timeout of the options runs out (SS_ETIMEOUT, and
 * r->why says which), or poll itself fails (a negative errno). Errors of
 * the transports end their direction and are kept in r->up.error and
 * r->down.error; they are not returned. After a non-zero return the relay
 * may be run again: nothing is lost.
 */
int exec_relay_run(exec_relay *r, struct pollfd *watch, int nwatch, int64_t deadline_ms);

/* Both directions have ended. */
bool exec_relay_finished(const exec_relay *r);

/* Monotonic clock in milliseconds (the clock of deadline_ms). */
int64_t exec_relay_now_ms(void);

#endif
