/* SPDX-License-Identifier: MIT */
/*
 * listen_fds.c — systemd's socket-activation protocol (sd_listen_fds(3)),
 * read without libsystemd: it is three environment variables.
 *
 *   LISTEN_PID      the process the sockets are for. The variables are
 *                   inherited by every child until someone unsets them, so a
 *                   process that is not LISTEN_PID must not touch the
 *                   descriptors: they may be anything in it.
 *   LISTEN_FDS      how many: descriptors 3, 4, ... (SS_LISTEN_FDS_START)
 *   LISTEN_FDNAMES  their names, ':'-separated (FileDescriptorName=,
 *                   systemd-socket-activate --fdname); optional
 *
 * Taking them means making every descriptor close-on-exec (a command the
 * server runs must not keep its listeners open after the server is gone)
 * and unsetting the variables (so that nothing it starts believes they are
 * its own). Everything is checked before anything is changed: a refused
 * environment is left exactly as it was.
 */
#include "listen_fds.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* How much of a variable an error message quotes. */
#define QUOTE_MAX 64

/* A bounded, printable copy of an environment value for a message. */
static const char *quote(char buf[QUOTE_MAX + 4], const char *value)
{
    size_t n = 0;
    for (; value[n] != '\0' && n < QUOTE_MAX; n++)
        buf[n] = (value[n] < 0x20 || value[n] == 0x7f) ? '?' : value[n];
    if (value[n] != '\0')
        memcpy(buf + n, "...", 4);
    else
        buf[n] = '\0';
    return buf;
}

/* A decimal number with nothing around it, at most `max`; -1 otherwise. */
static long parse_decimal(const char *s, long max)
{
    if (s == NULL || *s == '\0')
        return -1;
    long v = 0;
    for (const char *p = s; *p != '\0'; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        v = v * 10 + (*p - '0');
        if (v > max)
            return -1;
    }
    return v;
}

static int count_names(const char *names)
{
    int n = 1;
    for (const char *p = names; *p != '\0'; p++)
        n += *p == ':';
    return n;
}

int ss__listen_env_parse(ss__listen_env *out, const char *pid, const char *fds, const char *names,
                         pid_t self, ss_error *err)
{
    char q[QUOTE_MAX + 4];
    out->count = 0;
    out->names = NULL;
    if (fds == NULL)
        return 0;
    long count = parse_decimal(fds, SS_LISTEN_FDS_MAX);
    if (count < 0)
        return ss__fail(err, -EINVAL,
                        "bad LISTEN_FDS '%s': expected a count of descriptors "
                        "(0..%d)",
                        quote(q, fds), SS_LISTEN_FDS_MAX);
    if (count == 0)
        return 0;
    if (pid == NULL)
        return ss__fail(err, -ESRCH,
                        "LISTEN_FDS is set but LISTEN_PID is not: the sockets "
                        "are not known to be this process's");
    long owner = parse_decimal(pid, 0x7fffffffL);
    if (owner <= 0)
        return ss__fail(err, -EINVAL, "bad LISTEN_PID '%s': expected a process id", quote(q, pid));
    if ((pid_t)owner != self)
        return ss__fail(err, -ESRCH,
                        "LISTEN_PID=%ld is not this process (pid %ld): the "
                        "sockets were passed to another one",
                        owner, (long)self);
    if (names != NULL) {
        int n = count_names(names);
        if (n != count)
            return ss__fail(err, -EINVAL,
                            "LISTEN_FDNAMES '%s' has %d name%s for "
                            "LISTEN_FDS=%ld",
                            quote(q, names), n, n == 1 ? "" : "s", count);
    }
    out->count = (int)count;
    out->names = names;
    return out->count;
}

/* Entry `i` of LISTEN_FDNAMES: its start and length. */
static const char *entry(const char *names, int i, size_t *len)
{
    const char *p = names;
    for (; i > 0; i--)
        p = strchr(p, ':') + 1; /* parse counted the separators */
    const char *end = strchr(p, ':');
    *len = end != NULL ? (size_t)(end - p) : strlen(p);
    return p;
}

void ss__listen_env_name(const ss__listen_env *e, int i, char *buf, size_t len)
{
    if (len == 0)
        return;
    size_t n = 7;
    const char *p = "unknown";
    if (e->names != NULL)
        p = entry(e->names, i, &n);
    if (n >= len)
        n = len - 1;
    memcpy(buf, p, n);
    buf[n] = '\0';
}

int ss__listen_env_find(const ss__listen_env *e, const char *name)
{
    size_t want = strlen(name);
    for (int i = 0; i < e->count; i++) {
        size_t n = 7;
        const char *p = "unknown";
        if (e->names != NULL)
            p = entry(e->names, i, &n);
        if (n == want && memcmp(p, name, n) == 0)
            return i;
    }
    return -1;
}

/* The environment, checked, with every passed descriptor open. */
static int read_env(ss__listen_env *e, ss_error *err)
{
    int rc = ss__listen_env_parse(e, getenv("LISTEN_PID"), getenv("LISTEN_FDS"),
                                  getenv("LISTEN_FDNAMES"), getpid(), err);
    if (rc <= 0)
        return rc;
    for (int i = 0; i < e->count; i++) {
        int fd = SS_LISTEN_FDS_START + i;
        if (fcntl(fd, F_GETFD) < 0)
            return ss__fail(err, -EBADF, "LISTEN_FDS=%d, but descriptor %d is not open", e->count,
                            fd);
    }
    return rc;
}

int ss__listen_fds_find(const char *name, ss_error *err)
{
    ss__listen_env e;
    int rc = read_env(&e, err);
    if (rc < 0)
        return rc;
    if (rc == 0)
        return ss__fail(err, -ENOENT,
                        "no socket was passed: LISTEN_FDS is not set (start it "
                        "from a .socket unit, or under systemd-socket-activate)");
    if (name == NULL)
        return SS_LISTEN_FDS_START;
    int i = ss__listen_env_find(&e, name);
    if (i >= 0)
        return SS_LISTEN_FDS_START + i;
    char q[QUOTE_MAX + 4];
    if (e.names == NULL)
        return ss__fail(err, -ENOENT,
                        "no socket named '%s': the %d passed have no names "
                        "(LISTEN_FDNAMES is not set; name them with FileDescriptorName=)",
                        name, e.count);
    return ss__fail(err, -ENOENT,
                    "no socket named '%s' among the %d passed "
                    "(LISTEN_FDNAMES=%s)",
                    name, e.count, quote(q, e.names));
}

int ss__listen_fds_take(ss_error *err)
{
    ss__listen_env e;
    int rc = read_env(&e, err);
    if (rc <= 0)
        return rc;
    for (int i = 0; i < e.count; i++) {
        int fd = SS_LISTEN_FDS_START + i;
        int flags = fcntl(fd, F_GETFD);
        /* it was open a moment ago; only a racing close could fail this */
        if (flags >= 0 && !(flags & FD_CLOEXEC))
            (void)fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
    }
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
    return e.count;
}

int ss_listen_fds(ss_listen_fd *out, size_t max, ss_error *err)
{
    if (out == NULL && max > 0)
        return ss__fail(err, SS_EUSAGE, "ss_listen_fds: no room for the results");
    ss__listen_env e;
    int rc = read_env(&e, err);
    if (rc <= 0)
        return rc;
    /* copied before taking: unsetenv may free the names' storage */
    for (size_t i = 0; i < max && i < (size_t)e.count; i++) {
        out[i].fd = SS_LISTEN_FDS_START + (int)i;
        ss__listen_env_name(&e, (int)i, out[i].name, sizeof out[i].name);
    }
    return ss__listen_fds_take(err);
}
