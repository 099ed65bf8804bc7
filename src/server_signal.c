/* SPDX-License-Identifier: MIT */
/* server_signal.c — ss_server_serve_until_signal: what every command-line
 * server does by hand (SIGINT/SIGTERM stop it, accepted requests drain),
 * once, with the previous signal actions put back afterwards. */
#include "server_internal.h"

#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>

/*
 * A signal handler gets no argument, so the server it stops has to be found
 * somewhere global: this one pointer, set only while the call runs (hence
 * one server at a time per process). Lock-free atomics are
 * async-signal-safe.
 */
static _Atomic(ss_server *) signal_target;

static void on_stop_signal(int sig)
{
    (void)sig;
    ss_server *srv = atomic_load(&signal_target);
    if (srv != NULL)
        ss_server_shutdown_nowait(srv); /* an atomic store and an eventfd write */
}

int ss_server_serve_until_signal(ss_server *srv)
{
    if (srv == NULL)
        return SS_EUSAGE;
    ss_server *none = NULL;
    if (!atomic_compare_exchange_strong(&signal_target, &none, srv))
        return SS_EBUSY;

    struct sigaction sa = {.sa_handler = on_stop_signal};
    sa.sa_flags = SA_RESTART; /* the handlers' other system calls go on */
    sigemptyset(&sa.sa_mask);
    struct sigaction old_int, old_term;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    /* A thread that blocked them would never see them: let this one. */
    sigset_t stop, old_mask;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_UNBLOCK, &stop, &old_mask);

    int rc = ss_server_serve_forever(srv);

    /* Back to the caller's actions before the drain, so a second Ctrl-C
     * during a long drain does what the program had it do (by default:
     * end it). */
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
    atomic_store(&signal_target, NULL);

    ss_server_close(srv); /* stop accepting; wait for requests, drain_timeout */
    return rc;
}
