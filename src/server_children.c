/* SPDX-License-Identifier: MIT */
/* server_children.c — the child processes of the forking and prefork models:
 * started, watched through pidfds (so the loop wakes the moment one exits
 * and no zombie waits for the next connection), signalled and reaped. */
#include "server_children.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* How often to look for exited children when a pidfd could not be had. */
#define CHILD_TICK_MS 100

int ss__children_init(ss__children *c, int cap)
{
    c->kids = calloc((size_t)cap, sizeof *c->kids);
    if (c->kids == NULL)
        return -ENOMEM;
    c->cap = cap;
    c->n = 0;
    return 0;
}

void ss__children_free(ss__children *c)
{
    for (int i = 0; i < c->n; i++)
        if (c->kids[i].pidfd >= 0)
            close(c->kids[i].pidfd);
    free(c->kids);
    c->kids = NULL;
    c->n = c->cap = 0;
}

ss__child *ss__children_add(ss__children *c, pid_t pid, int slot)
{
    if (c->n >= c->cap)
        return NULL;
    ss__child *k = &c->kids[c->n++];
    memset(k, 0, sizeof *k);
    k->pid = pid;
    k->slot = slot;
    k->started_ms = ss__now_ms();
    k->pidfd = (int)syscall(SYS_pidfd_open, pid, 0); /* always close-on-exec */
    return k;
}

int ss__children_pollfds(const ss__children *c, struct pollfd *p, int max,
                         int *tick_ms)
{
    int n = 0;
    for (int i = 0; i < c->n && n < max; i++) {
        if (c->kids[i].pidfd >= 0)
            p[n++] = (struct pollfd){.fd = c->kids[i].pidfd, .events = POLLIN};
        else
            *tick_ms = CHILD_TICK_MS;
    }
    return n;
}

int ss__children_reap(ss__children *c, ss__child_exited on_exit, void *arg)
{
    int reaped = 0;
    for (int i = 0; i < c->n;) {
        int status;
        pid_t r = waitpid(c->kids[i].pid, &status, WNOHANG);
        if (r == 0 || (r < 0 && errno == EINTR)) {
            i++;
            continue;
        }
        /* r == pid, or ECHILD (someone else reaped it): either way it is gone */
        ss__child gone = c->kids[i];
        if (gone.pidfd >= 0)
            close(gone.pidfd);
        c->kids[i] = c->kids[--c->n];
        reaped++;
        if (on_exit != NULL)
            on_exit(arg, &gone, r > 0 ? status : 0);
    }
    return reaped;
}

bool ss__children_wait(ss__children *c, int64_t deadline,
                       ss__child_exited on_exit, void *arg)
{
    for (;;) {
        ss__children_reap(c, on_exit, arg);
        if (c->n == 0)
            return true;
        int left = ss__remaining_ms(deadline);
        if (left == 0)
            return false;
        struct pollfd p[64];
        int tick = -1;
        int n = ss__children_pollfds(c, p, 64, &tick);
        /* more than 64 children, or some without a pidfd: poll in ticks */
        if (n < c->n && tick < 0)
            tick = CHILD_TICK_MS;
        int timeout = left;
        if (tick > 0 && (timeout < 0 || tick < timeout))
            timeout = tick;
        if (poll(p, (nfds_t)n, timeout) < 0 && errno != EINTR)
            return false;
    }
}

void ss__children_signal(ss__children *c, int sig)
{
    for (int i = 0; i < c->n; i++)
        kill(c->kids[i].pid, sig);
}

void ss__children_stop(ss__children *c, ss__child_exited on_exit, void *arg)
{
    if (c->n == 0)
        return;
    ss__children_signal(c, SIGTERM);
    if (ss__children_wait(c, ss__deadline(1.0), on_exit, arg))
        return;
    ss__children_signal(c, SIGKILL);
    ss__children_wait(c, -1, on_exit, arg);
}
