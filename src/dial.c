/* SPDX-License-Identifier: MIT */
/*
 * dial.c — the two calls most programs need instead of the sock primitives:
 * ss_listen (a ready server socket) and ss_dial (a connected client).
 */
#include "internal.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#define DEFAULT_BACKLOG 128
#define DIAL_MAX_ADDRS 16

static int set_option_or_fail(ss_sock *s, ss_sockopt opt, int value, const char *optname,
                              const ss_addr *a, ss_error *err)
{
    int rc = ss_sock_set_option(s, opt, value);
    if (rc < 0) {
        char text[SS_ADDR_STRLEN];
        ss__addr_text(a, text, sizeof text);
        ss__fail(err, rc, "cannot set %s on %s: %s", optname, text, ss_strerror(rc));
    }
    return rc;
}

static int listen_options(ss_sock *s, const ss_addr *a, const ss_listen_opts *o, ss_error *err)
{
    int family = a->u.sa.sa_family;
    int rc = 0;
    if (o->reuse_address && family != AF_UNIX)
        rc = set_option_or_fail(s, SS_OPT_REUSEADDR, 1, "SO_REUSEADDR", a, err);
    if (rc == 0 && o->reuse_port)
        rc = set_option_or_fail(s, SS_OPT_REUSEPORT, 1, "SO_REUSEPORT", a, err);
    /* Set both ways: the system default (net.ipv6.bindv6only) may be either,
     * and "[::]" must mean dual-stack unless the caller asked otherwise. */
    if (rc == 0 && family == AF_INET6)
        rc = set_option_or_fail(s, SS_OPT_V6ONLY, o->v6only, "IPV6_V6ONLY", a, err);
    return rc;
}

int ss_listen(ss_sock *out, const ss_addr *a, const ss_listen_opts *opts, ss_error *err)
{
    static const ss_listen_opts defaults = {0};
    const ss_listen_opts *o = opts != NULL ? opts : &defaults;
    char text[SS_ADDR_STRLEN];

    int rc = ss_sock_open_for(out, a);
    if (rc < 0) {
        ss__addr_text(a, text, sizeof text);
        return ss__fail(err, rc, "cannot open a socket for %s: %s", text, ss_strerror(rc));
    }
    rc = listen_options(out, a, o, err);
    if (rc == 0)
        rc = ss_sock_bind(out, a, err);
    if (rc < 0) {
        ss_sock_close(out);
        return rc;
    }
    if (ss_addr_is_stream(a->kind)) {
        rc = ss_sock_listen(out, o->backlog > 0 ? o->backlog : DEFAULT_BACKLOG);
        if (rc < 0) {
            ss__addr_text(a, text, sizeof text);
            ss__fail(err, rc, "cannot listen on %s: %s", text, ss_strerror(rc));
            ss_sock_close(out);
            /* we made the file; do not leave it behind a socket that is gone */
            if (a->u.sa.sa_family == AF_UNIX && a->u.un.sun_path[0] != '\0')
                unlink(a->u.un.sun_path);
            return rc;
        }
    }
    return 0;
}

/* A unix datagram client needs a name of its own, or the server's replies
 * have nowhere to go: bind with only the family and Linux picks a unique
 * abstract one (autobind). */
static int autobind_unix(ss_sock *s)
{
    struct sockaddr_un un;
    memset(&un, 0, sizeof un);
    un.sun_family = AF_UNIX;
    if (bind(s->fd, (struct sockaddr *)&un, sizeof(sa_family_t)) < 0)
        return -errno;
    return 0;
}

static int dial_one(ss_sock *out, const ss_addr *a, double timeout)
{
    int rc = ss_sock_open_for(out, a);
    if (rc < 0)
        return rc;
    rc = ss_sock_settimeout(out, timeout);
    if (rc == 0 && a->kind == SS_ADDR_UNIXGRAM)
        rc = autobind_unix(out);
    if (rc == 0)
        rc = ss_sock_connect_ex(out, a);
    if (rc < 0)
        ss_sock_close(out);
    return rc;
}

int ss_dial(ss_sock *out, const char *address, double timeout, ss_error *err)
{
    ss_addr addrs[DIAL_MAX_ADDRS];
    ss_sock s = SS_SOCK_INIT;
    *out = s;

    int n = ss_addr_resolve(address, 0, addrs, DIAL_MAX_ADDRS, err);
    if (n < 0)
        return n;
    if (n == 0)
        return ss__fail(err, SS_ENORESOLVE, "cannot connect to %s: %s", address,
                        ss_strerror(SS_ENORESOLVE));
    int rc = SS_ENORESOLVE;
    int failed = 0;
    for (int i = 0; i < n; i++) {
        rc = dial_one(&s, &addrs[i], timeout);
        if (rc == 0) {
            *out = s;
            return 0;
        }
        failed = i;
    }
    /* name the last address tried: with "localhost" it is the one most
     * likely meant (after ::1, 127.0.0.1) */
    char text[SS_ADDR_STRLEN];
    ss__addr_text(&addrs[failed], text, sizeof text);
    return ss__fail(err, rc, "cannot connect to %s: %s", text, ss_strerror(rc));
}
