/* SPDX-License-Identifier: MIT */
/* sockpeer.h — small helpers shared by the sock and stream unit tests:
 * a loopback listener and a client connected to it, parsed from text. */
#ifndef SS_TEST_SOCKPEER_H
#define SS_TEST_SOCKPEER_H

#include "testutil.h"

#include <string.h>
#include <time.h>

/* Parse `text` (numeric) into `a`, failing the test if it does not parse. */
static inline void tp_parse(ss_addr *a, const char *text)
{
    ss_error err = {0};
    int rc = ss_addr_parse(a, text, SS_ADDR_NUMERIC, &err);
    if (rc != 0)
        fail_msg("parse %s: %s", text, err.msg);
}

/* A listening (or bound datagram) socket on `text`; `bound` gets the address
 * really bound (port 0 resolved). Returns ss_listen's code. */
static inline int tp_listen(ss_sock *srv, const char *text, ss_addr *bound)
{
    ss_addr a;
    ss_error err = {0};
    tp_parse(&a, text);
    int rc = ss_listen(srv, &a, NULL, &err);
    if (rc == 0 && bound != NULL)
        assert_int_equal(ss_sock_getsockname(srv, bound), 0);
    return rc;
}

/* A client connected (blocking) to `a`. */
static inline void tp_connect(ss_sock *cli, const ss_addr *a)
{
    assert_int_equal(ss_sock_open_for(cli, a), 0);
    ss_error err = {0};
    int rc = ss_sock_connect(cli, a, &err);
    if (rc != 0)
        fail_msg("connect: %s", err.msg);
}

/* A connected pair over `text` (a stream kind): client and accepted server
 * side. The listener is closed again. */
static inline void tp_pair(const char *text, ss_sock *cli, ss_sock *conn)
{
    ss_sock srv;
    ss_addr bound;
    assert_int_equal(tp_listen(&srv, text, &bound), 0);
    tp_connect(cli, &bound);
    assert_int_equal(ss_sock_accept(&srv, conn, NULL), 0);
    ss_sock_close(&srv);
}

/* Seconds on the monotonic clock. */
static inline double tp_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

#endif
