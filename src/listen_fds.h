/* SPDX-License-Identifier: MIT */
/* listen_fds.h — systemd's socket-activation variables, parsed (listen_fds.c).
 * Private: not installed. The parsing is split from the environment so the
 * unit tests can feed it any text. */
#ifndef SS_LISTEN_FDS_H
#define SS_LISTEN_FDS_H

#include "internal.h"

#include <sys/types.h>

/* What LISTEN_PID / LISTEN_FDS / LISTEN_FDNAMES said, once checked. */
typedef struct ss__listen_env {
    int count;         /* descriptors SS_LISTEN_FDS_START .. + count - 1 */
    const char *names; /* LISTEN_FDNAMES as given (count entries), or NULL */
} ss__listen_env;

/*
 * Check the three values as getenv() gave them (NULL = not set) for the
 * process `self`. Returns the count (> 0), 0 when LISTEN_FDS is not set or
 * "0" (nothing passed), or -ESRCH (LISTEN_PID missing or not `self`) /
 * -EINVAL (a malformed value; a name count that is not LISTEN_FDS) with
 * err->msg. Looks at no descriptor.
 */
int ss__listen_env_parse(ss__listen_env *out, const char *pid, const char *fds, const char *names,
                         pid_t self, ss_error *err);

/* Name of entry `i` (0-based) into buf (truncated to len; "unknown" when
 * LISTEN_FDNAMES is not set, as libsystemd says). */
void ss__listen_env_name(const ss__listen_env *e, int i, char *buf, size_t len);

/* Index of the first entry named `name`, or -1. */
int ss__listen_env_find(const ss__listen_env *e, const char *name);

/*
 * Read the environment and find a passed descriptor: the first one (name
 * NULL) or the first named `name`. Changes nothing (see ss__listen_fds_take).
 * Returns the descriptor, or a negative code with err->msg (no prefix):
 * -ENOENT when nothing was passed or no entry has that name, or one of
 * ss__listen_env_parse's, or -EBADF when a passed descriptor is not open.
 */
int ss__listen_fds_find(const char *name, ss_error *err);

/* Take what the environment passed, as ss_listen_fds does, without copying
 * names out. Returns the count, 0, or a code (as ss_listen_fds). */
int ss__listen_fds_take(ss_error *err);

#endif
