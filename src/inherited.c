/* SPDX-License-Identifier: MIT */
/*
 * inherited.c — server "addresses" that name a socket this process was
 * given instead of one to bind:
 *
 *   systemd:        the first socket of socket activation (listen_fds.c)
 *   systemd:NAME    the passed socket named NAME in LISTEN_FDNAMES
 *   fd:N            descriptor N, already bound by whoever started us
 *
 * Whoever bound the socket chose its address and options, and may hold
 * privileges we lack (port 80, a socket file in /run): so the socket is
 * checked, never re-bound. It must be an open socket of a family and type
 * sockserve serves, of the type the server wants (a stream handler given a
 * datagram socket would fail on the first packet, far from the cause),
 * bound (listen() on an unbound TCP socket would pick a random port), and
 * not a connection (systemd's Accept=yes passes those). Every check comes
 * before the first change, so a refused socket is left as it was.
 */
#include "inherited.h"
#include "listen_fds.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

/* LISTEN_FDNAMES entries: systemd's limit (FDNAME_MAX). */
#define NAME_MAX_LEN 255

/* What the text names: a descriptor number, or a passed socket's name
 * (name[0] == '\0': the first one). */
typedef struct inherited_form {
    bool systemd;
    int fd;
    char name[NAME_MAX_LEN + 1];
} inherited_form;

/* systemd's rule for names (fdname_is_valid): printable ASCII but ':', the
 * separator of LISTEN_FDNAMES. */
static bool valid_name(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > NAME_MAX_LEN)
        return false;
    for (size_t i = 0; i < n; i++)
        if (name[i] < 0x20 || name[i] > 0x7e || name[i] == ':')
            return false;
    return true;
}

/* `text` is systemd:... or fd:... (ss_addr_is_inherited, in addr.c with the
 * rest of the syntax, said so). */
static int parse_form(inherited_form *f, const char *text, ss_error *err)
{
    memset(f, 0, sizeof *f);
    f->fd = -1;
    if (strncasecmp(text, "systemd:", strlen("systemd:")) == 0) {
        const char *name = text + strlen("systemd:");
        f->systemd = true;
        if (name[0] != '\0' && !valid_name(name))
            return ss__bad_addr(err, text,
                                "a socket name is 1..%d printable ASCII "
                                "characters other than ':'",
                                NAME_MAX_LEN);
        snprintf(f->name, sizeof f->name, "%s", name);
        return 0;
    }
    const char *num = text + strlen("fd:");
    long v = num[0] != '\0' ? 0 : -1;
    for (const char *p = num; *p != '\0' && v >= 0; p++) {
        if (*p < '0' || *p > '9')
            v = -1;
        else if ((v = v * 10 + (*p - '0')) > 0x7fffffffL)
            v = -1;
    }
    if (v < 0)
        return ss__bad_addr(err, text, "fd:N needs a descriptor number (0..2147483647)");
    f->fd = (int)v;
    return 0;
}

static ss_addr_kind kind_of(int family, int type)
{
    if (family == AF_INET || family == AF_INET6)
        return type == SOCK_STREAM ? SS_ADDR_TCP : type == SOCK_DGRAM ? SS_ADDR_UDP : SS_ADDR_NONE;
    if (family != AF_UNIX)
        return SS_ADDR_NONE;
    switch (type) {
    case SOCK_STREAM: return SS_ADDR_UNIX;
    case SOCK_DGRAM: return SS_ADDR_UNIXGRAM;
    case SOCK_SEQPACKET: return SS_ADDR_SEQPACKET;
    default: return SS_ADDR_NONE;
    }
}

static const char *type_name(int type)
{
    switch (type) {
    case SOCK_STREAM: return "stream";
    case SOCK_DGRAM: return "datagram";
    case SOCK_SEQPACKET: return "seqpacket";
    default: return "other";
    }
}

static bool is_bound(const ss_addr *a)
{
    if (a->u.sa.sa_family == AF_UNIX)
        return a->len > offsetof(struct sockaddr_un, sun_path);
    return ss_addr_port(a) > 0;
}

/* The checks, on descriptor `fd`; changes nothing. Messages have no prefix. */
static int check_socket(int fd, int want_type, ss_addr *addr, bool *listening, ss_error *err)
{
    if (fcntl(fd, F_GETFD) < 0)
        return ss__fail(err, -EBADF, "descriptor %d is not open", fd);
    int family = 0, type = 0;
    socklen_t len = sizeof family;
    if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &family, &len) < 0) {
        int e = errno;
        if (e == ENOTSOCK)
            return ss__fail(err, -ENOTSOCK, "descriptor %d is not a socket", fd);
        return ss__fail(err, -e, "descriptor %d: %s", fd, strerror(e));
    }
    len = sizeof type;
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0)
        return ss__fail(err, -errno, "descriptor %d: %s", fd, strerror(errno));
    ss_addr_kind kind = kind_of(family, type);
    if (kind == SS_ADDR_NONE)
        return ss__fail(err, -EAFNOSUPPORT,
                        "descriptor %d is a socket sockserve does not "
                        "serve (family %d, type %d)",
                        fd, family, type);

    struct sockaddr_storage ss;
    len = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
        return ss__fail(err, -errno, "descriptor %d: getsockname: %s", fd, strerror(errno));
    if (ss_addr_from_sockaddr(addr, kind, (struct sockaddr *)&ss, len) < 0)
        return ss__fail(err, -EAFNOSUPPORT,
                        "descriptor %d: an address sockserve cannot "
                        "read",
                        fd);
    char text[SS_ADDR_STRLEN];
    ss__addr_text(addr, text, sizeof text);
    if (want_type != 0 && type != want_type)
        return ss__fail(err, -EPROTOTYPE,
                        "descriptor %d is a %s socket (%s), but this server "
                        "serves %s sockets only",
                        fd, type_name(type), text, type_name(want_type));
    if (!is_bound(addr))
        return ss__fail(err, -EDESTADDRREQ,
                        "descriptor %d is a socket that is not bound to "
                        "an address",
                        fd);

    int accepting = 0;
    len = sizeof accepting;
    *listening = ss_addr_is_stream(kind) &&
                 getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &len) == 0 && accepting != 0;
    if (ss_addr_is_stream(kind) && !*listening) {
        len = sizeof ss;
        if (getpeername(fd, (struct sockaddr *)&ss, &len) == 0)
            return ss__fail(err, -EISCONN,
                            "descriptor %d is a connection (%s), not a "
                            "listening socket (a .socket unit with Accept=yes passes "
                            "connections: sockserve needs Accept=no)",
                            fd, text);
    }
    return 0;
}

int ss__inherited_take(const char *text, int want_type, ss_sock *out, ss_addr *addr,
                       bool *listening, ss_error *err)
{
    *out = (ss_sock)SS_SOCK_INIT;
    memset(addr, 0, sizeof *addr);
    *listening = false;
    if (!ss_addr_is_inherited(text))
        return ss__bad_addr(err, text, "not an inherited socket (systemd:, systemd:NAME, fd:N)");
    inherited_form f;
    int rc = parse_form(&f, text, err);
    if (rc < 0)
        return rc;

    ss_error why = {0};
    int fd = f.fd;
    if (f.systemd && (fd = ss__listen_fds_find(f.name[0] ? f.name : NULL, &why)) < 0)
        rc = fd;
    if (rc == 0)
        rc = check_socket(fd, want_type, addr, listening, &why);
    if (rc == 0 && f.systemd && (rc = ss__listen_fds_take(&why)) > 0)
        rc = 0;
    if (rc == 0)
        rc = ss_sock_from_fd(out, fd, addr->kind);
    if (rc < 0) {
        *out = (ss_sock)SS_SOCK_INIT;
        memset(addr, 0, sizeof *addr);
        if (why.msg[0] == '\0')
            snprintf(why.msg, sizeof why.msg, "%s", ss_strerror(rc));
        /* the form was checked above: printable, bounded */
        return ss__fail(err, rc, "'%s': %s", text, why.msg);
    }
    return 0;
}
