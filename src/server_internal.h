/* SPDX-License-Identifier: MIT */
/* server_internal.h — the server object and the seam between the socketserver
 * core (server.c, server_request.c) and the concurrency models (model_*.c).
 * Private: not installed. */
#ifndef SS_SERVER_INTERNAL_H
#define SS_SERVER_INTERNAL_H

#include "internal.h"
#include "peer_limits.h"

#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/types.h>

typedef struct ss__req ss__req;
typedef struct ss__pending ss__pending;

/* The acceptor (server_accept.c): connections accepted and admitted but
 * not yet requests. `waiting` have sent nothing yet (registered in epfd,
 * oldest first), or with proxy_protocol are still sending their PROXY
 * header (and are admitted only once it is in); `ready` have, and wait for
 * a worker (oldest first). */
typedef struct ss__acceptor {
    int epfd; /* -1 for datagram servers and server_speaks_first without
                 proxy_protocol */
    ss__pending *waiting, *waiting_tail;
    ss__pending *ready, *ready_tail;
    int nwaiting, nready;
} ss__acceptor;

/* What the acceptor knows of a connection, handed to its request. */
typedef struct ss__conn_info {
    ss_addr peer;
    int64_t accepted_ms;
    ss__peer_key key;
    bool holds_key; /* counted in max_per_ip: released when it ends */
    bool proxied;   /* peer is what a PROXY header carried, not the socket's */
    ss_addr local;  /* proxied: the header's destination (len 0: none) */
} ss__conn_info;

/* Why a peer was turned away (server_admit.c's summary line). */
typedef enum ss__refusal {
    SS__REFUSED_DENIED = 1, /* 0 is "admitted" in ss__admit_conn's return */
    SS__REFUSED_OVER_IP,
    SS__REFUSED_VERIFY,
    SS__REFUSED_EVICTED,
    SS__REFUSED_SILENT,
    SS__REFUSED_RATE,
    SS__REFUSED_BAD_HEADER, /* proxy_protocol: no valid PROXY header */
    SS__REFUSED_KINDS
} ss__refusal;

/*
 * The model operations table: how a concurrency model runs requests.
 *
 * The core owns the listening (or datagram) socket, the wake-up eventfd, the
 * registry of live requests and the generic loop behind serve_forever and
 * handle_request. The loop polls the wake fd, the listener, the acceptor
 * (connections admitted but silent so far) and whatever descriptors the
 * model adds. It accepts a bounded batch into the acceptor (server_accept.c:
 * get_request and verify_request); a connection that has sent its first
 * byte becomes an ss__req and goes to the model's `dispatch` (process_request)
 * only while the model has room and max_conns is not reached. A model that
 * needs a loop of its own (prefork's datagram supervisor, the event model's
 * epoll loops) sets `serve` and the core calls it from serve_forever.
 *
 * Adding a model means one new file defining one `const ss__model_ops
 * ss__model_NAME` and a line in ss__model_ops_for (server.c).
 *
 * Every member but `name` and `dispatch` may be NULL (= nothing to do).
 * All are called on the thread that calls the public entry point (the main
 * thread for start/drain/abort/destroy; serve_forever's thread for the rest).
 */
typedef struct ss__model_ops {
    const char *name;
    /* ss_server_new, after bind + activate: allocate state, start workers. On
     * failure return a code with err filled; destroy is then still called. */
    int (*start)(ss_server *srv, ss_error *err);
    /* Replace the generic serve_forever loop. Returns like serve_forever; must
     * return promptly once ss__shutdown_requested() is true. */
    int (*serve)(ss_server *srv);
    /* Run one request (ownership passes: the model must end it with
     * ss__req_run + ss__req_end, or ss__req_end alone to drop it). */
    void (*dispatch)(ss_server *srv, ss__req *req);
    /* May the loop give out another request now? (forking: max_children;
     * pool: queue room; prefork: an idle worker.) When false, ready
     * connections wait in the acceptor. */
    bool (*has_room)(ss_server *srv);
    /* Descriptors to watch beside the listener (forking: child pidfds).
     * Writes at most `max` entries, returns how many; a positive *tick_ms asks
     * for a wake-up within that many ms even if nothing is ready. */
    int (*pollfds)(ss_server *srv, struct pollfd *p, int max, int *tick_ms);
    /* Collect what has finished (threads to join, children to wait for).
     * Never blocks. Called once per loop turn. */
    void (*reap)(ss_server *srv);
    /* Wait for running requests until `deadline` (ss__deadline; -1 forever).
     * Returns true when none is left. */
    bool (*drain)(ss_server *srv, int64_t deadline);
    /* Make what still runs stop soon (shut connections down, signal children)
     * and wait until it has. */
    void (*abort)(ss_server *srv);
    /* Free the model's state; nothing runs any more. */
    void (*destroy)(ss_server *srv);
} ss__model_ops;

extern const ss__model_ops ss__model_serial;
extern const ss__model_ops ss__model_threading;
extern const ss__model_ops ss__model_forking;
extern const ss__model_ops ss__model_pool;
extern const ss__model_ops ss__model_prefork;
extern const ss__model_ops ss__model_coroutine;

/* workers = 0 means this (documented in docs/models.md). */
int ss__default_workers(ss_model m);

/* NULL when the model is not linked into this library. */
const ss__model_ops *ss__model_ops_for(ss_model m);

/* Counters behind ss_server_stats(). */
typedef struct ss__counters {
    atomic_ullong accepted, refused, rejected, errors, evicted;
    atomic_ullong denied, over_ip, timed_out, dropped, tls_failed;
    atomic_ullong bad_header;
} ss__counters;

struct ss_server {
    ss_server_opts opts;
    ss_handler handler;
    const ss__model_ops *model;
    void *model_state;

    ss_sock sock; /* listener (stream kinds) or the datagram socket */
    ss_addr addr; /* as bound */
    char addr_text[SS_ADDR_STRLEN];
    bool stream; /* connection-oriented kind */
    bool inherited; /* the socket was given (systemd:, fd:N), not opened */
    atomic_bool notified_ready; /* opts.notify: READY=1 was sent */

    /* the unix socket file we created, removed by server_close in this
     * process only (not in forked children) and only if it is still ours */
    char unix_path[sizeof(((struct sockaddr_un *)0)->sun_path) + 1];
    dev_t unix_dev;
    ino_t unix_ino;
    pid_t owner_pid;

    /* Wakes the loop: shutdown requests (async-signal-safe write) and
     * requests that end while the loop is waiting for room. */
    int wake_fd;
    atomic_int shutdown_req; /* lock-free: safe in a signal handler */
    atomic_bool in_child; /* this process is a forked child/worker */

    pthread_mutex_t lock; /* guards everything below */
    pthread_cond_t cond;  /* broadcast when `serving` or `active` change */
    bool serving;         /* serve_forever is running */
    bool closed;          /* server_close has run */
    ss__req *live;        /* registry of requests alive in this process */
    atomic_size_t active; /* requests being served (forking: children) */
    atomic_size_t unadmitted; /* of those, not yet admitted (opts.max_unadmitted) */

    ss__counters counters;

    /* admission (server_admit.c): any thread */
    pthread_mutex_t admit_lock; /* guards access and the note clock */
    ss_access *access;          /* NULL = no rules */
    atomic_uint access_generation; /* bumped by ss_server_set_access */
    ss__peer_count *per_ip;     /* max_per_ip > 0 */
    ss__rate *rate;             /* datagram, reply_rate > 0 */
    atomic_ullong notes[SS__REFUSED_KINDS]; /* refusals not yet logged */
    atomic_int notes_pending;
    int64_t note_last_ms;

    /* the acceptor (server_accept.c): the loop's thread only */
    ss__acceptor acceptor;

    /* A request the model could not start for want of a task (fork or
     * pthread_create said EAGAIN): the loop holds it and gives it again
     * (server_loop.c, ss__req_defer). The loop's thread only. */
    ss__req *deferred, *retrying;
    int64_t deferred_since, deferred_retry_at;
    int deferred_backoff_ms;

    /* accept back-off after EMFILE/ENFILE/ENOMEM (never spin) */
    int64_t accept_resume_at;
    int accept_backoff_ms;
    bool accept_fail_logged;

    unsigned char *dgram_buf; /* serial datagram buffer (max_packet_size) */
    struct pollfd *pfd;       /* poll set, grown on demand */
    int pfd_cap;
    int model_nfds; /* most descriptors the model's pollfds() may add */
    pthread_t serving_thread;
};

/*
 * One request in flight. `pub` is what the handler sees. A stream request
 * owns its connection, transport and stream; a datagram request owns a copy
 * of the packet (models that hand it to another thread or process need one).
 */
struct ss__req {
    ss_request pub;
    ss_sock conn;
    ss_transport transport;
    char peer_text[SS_ADDR_STRLEN];
    unsigned char *packet_copy;
    ss__req *prev, *next; /* the live registry */
    bool registered;
    atomic_bool aborted; /* its connection was shut down by a drain */
    atomic_bool unadmitted; /* counts in srv->unadmitted until admitted or ended */
    int64_t started_ms;  /* accept time, for the one log line at the end */
    ss__peer_key key;    /* max_per_ip: released at the end while holds_key */
    bool holds_key;
    bool proxied;        /* client_address came from a PROXY header */
    ss_addr proxied_local; /* and what the client connected to (len 0: none) */
    char end_note[160];  /* why it ended, when not by itself ("idle for 30s") */
    bool tls_failed;     /* its TLS handshake failed: no close_notify */
    ss__req *pool_next;  /* a model's own list (pool: dropped on abort) */
};

/* ---- server.c ---------------------------------------------------------- */

static inline bool ss__shutdown_requested(ss_server *srv)
{
    return atomic_load_explicit(&srv->shutdown_req, memory_order_relaxed) != 0;
}
/* Wake the loop (any thread; async-signal-safe). */
void ss__wake(ss_server *srv);
/* Drain the wake fd's counter (the loop's side). */
void ss__wake_consume(ss_server *srv);
/* active += delta; broadcast and wake the loop so it re-checks its room. */
void ss__active_add(ss_server *srv, long delta);
/* opts.notify: READY=1 (once, as serving starts) and STOPPING=1 (once, as
 * server_close begins, only after READY=1), from the owner process only. */
void ss__notify_ready(ss_server *srv);
void ss__notify_stopping(ss_server *srv);

/* Would a line at `level` reach anyone? False for no sink, and for INFO and
 * DEBUG with the default stderr sink: callers skip formatting then. */
bool ss__log_wanted(const ss_server *srv, ss_log_level level);
/* Become a forked child (forking per request, prefork worker): close what
 * the child must not keep and reset the signals the parent's handlers own. */
void ss__enter_child(ss_server *srv);

/* Default drain/abort for models whose requests run on threads in this
 * process: wait for `active` to reach 0; shut every live connection down. */
bool ss__drain_threads(ss_server *srv, int64_t deadline);
void ss__shutdown_live(ss_server *srv);

/* One serial request cycle on the datagram socket: used by prefork's
 * datagram workers. Waits for the socket or `stop_fd` (POLLIN/HUP = stop)
 * and serves one packet inline. Returns 0, or SS_ESHUTDOWN when stop_fd
 * fired, or a fatal code. */
int ss__serve_one_inline(ss_server *srv, int stop_fd);

/* The generic loop (server.c) with the model's hooks: what serve_forever
 * runs unless the model has a loop of its own; prefork's `serve` calls it
 * for stream sockets. */
int ss__serve_generic(ss_server *srv);

/* ---- server_accept.c: get_request ----------------------------------------- */

int ss__acceptor_init(ss_server *srv);
/* Close every connection still in the acceptor (the server ends). */
void ss__acceptor_free(ss_server *srv);
/* In a forked child: close our copies, touch nothing of the parent's. */
void ss__acceptor_forget(ss_server *srv);
size_t ss__acceptor_count(const ss_server *srv);
/* Accept up to `budget` connections into the acceptor. Returns how many
 * the listener gave, or a fatal code. */
int ss__acceptor_accept(ss_server *srv, int budget);
/* Move connections that have spoken from waiting to ready (with
 * proxy_protocol: read their header, then admit them). */
void ss__acceptor_collect(ss_server *srv);
/* Close waiting connections older than handshake_timeout. */
void ss__acceptor_expire(ss_server *srv, int64_t now);
/* ms until the next expiry (-1: none). */
int ss__acceptor_timeout(const ss_server *srv, int64_t now);
bool ss__acceptor_has_ready(const ss_server *srv);
/* The oldest ready connection as a request: 1 (*out may be NULL if it could
 * not be made), 0 when none is ready. */
int ss__acceptor_take(ss_server *srv, ss__req **out);
/* Receive one datagram and make it a request if admitted: 1 when one was
 * received (*out NULL if refused), 0 when none, or a fatal code. */
int ss__receive_packet(ss_server *srv, bool copy_packet, ss__req **out);

/* ---- server_admit.c: may this peer be served? ---------------------------- */

int ss__admit_init(ss_server *srv);
void ss__admit_free(ss_server *srv);
/* Access rules, max_per_ip, verify_request for an accepted connection.
 * 0 = admitted (*holds_key: a max_per_ip slot was taken for *key), else the
 * ss__refusal, already counted and noted. Any thread. */
int ss__admit_conn(ss_server *srv, int fd, const ss_addr *peer, ss__peer_key *key,
                   bool *holds_key);
void ss__admit_release(ss_server *srv, const ss__peer_key *key);
/* Access rules and reply_rate for a datagram (counted, noted). */
bool ss__admit_packet(ss_server *srv, const ss_addr *from);
/* Count a refusal for the once-a-second summary line. Any thread. */
void ss__refusal_note(ss_server *srv, ss__refusal kind);
/* Log the summary if a second has passed since the last (or `force`). */
void ss__refusal_flush(ss_server *srv, bool force);
/* Are refusals waiting to be summarised? (the loop then wakes within 1 s) */
bool ss__refusal_due(const ss_server *srv);

/* ---- server_request.c --------------------------------------------------- */

/* A request for an accepted connection (takes ownership of `conn` and of
 * info's max_per_ip slot, giving both back on failure). Registers it as
 * live, counts it, logs "connected". */
int ss__req_from_conn(ss_server *srv, ss_sock *conn, const ss__conn_info *info,
                      ss__req **out);
/* A request for a received packet; `copy` makes it own a copy. */
int ss__req_from_packet(ss_server *srv, const void *buf, size_t len,
                        const ss_addr *from, bool copy, ss__req **out);
/* setup -> handle -> finish (+ handle_error), then flush the stream. */
void ss__req_run(ss_server *srv, ss__req *req);
/* Unregister, close (shutting the write side first unless `detach`, as the
 * forking parent must not touch the child's connection), log, free. */
void ss__req_end(ss_server *srv, ss__req *req, bool detach);
/* For a model's dispatch: fork() or pthread_create() failed with `e`
 * (`what` says which) for want of a task. When the shortage may pass
 * (EAGAIN, ENOMEM) and the request has not waited too long, the loop takes
 * it back, gives out nothing else meanwhile, and dispatches it again after
 * a short back-off: true. False: the model logs and ends it as before. */
bool ss__req_defer(ss_server *srv, ss__req *req, const char *what, int e);
/* End a request still held by ss__req_defer (the server closes). */
void ss__deferred_drop(ss_server *srv);

#endif
