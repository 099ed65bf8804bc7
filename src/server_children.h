/* SPDX-License-Identifier: MIT */
/* server_children.h — child-process bookkeeping shared by the forking and
 * prefork models (private). */
#ifndef SS_SERVER_CHILDREN_H
#define SS_SERVER_CHILDREN_H

#include "server_internal.h"

typedef struct ss__child {
    pid_t pid;
    int pidfd; /* -1 when the kernel has no pidfd_open */
    int slot;  /* the model's own index (prefork: worker number) */
    int64_t started_ms;
    ss__peer_key key; /* forking: the request's max_per_ip slot */
    bool holds_key;
} ss__child;

typedef struct ss__children {
    ss__child *kids;
    int n, cap;
} ss__children;

typedef void (*ss__child_exited)(void *arg, const ss__child *child,
                                 int status);

int ss__children_init(ss__children *c, int cap);
void ss__children_free(ss__children *c);
/* Track `pid`: its record, or NULL when full. */
ss__child *ss__children_add(ss__children *c, pid_t pid, int slot);
/* pidfds to poll (POLLIN = exited); *tick_ms set when some have none. */
int ss__children_pollfds(const ss__children *c, struct pollfd *p, int max,
                         int *tick_ms);
/* waitpid(WNOHANG) each child; `on_exit` (may be NULL) hears of each one
 * gone. Returns how many were reaped. Never blocks. */
int ss__children_reap(ss__children *c, ss__child_exited on_exit, void *arg);
/* Reap until none is left (true) or `deadline` passes (false). */
bool ss__children_wait(ss__children *c, int64_t deadline,
                       ss__child_exited on_exit, void *arg);
void ss__children_signal(ss__children *c, int sig);
/* SIGTERM, up to 1 s, then SIGKILL; returns with every child reaped. */
void ss__children_stop(ss__children *c, ss__child_exited on_exit, void *arg);

#endif
