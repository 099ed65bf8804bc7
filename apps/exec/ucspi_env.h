/* SPDX-License-Identifier: MIT */
/*
 * ucspi_env.h — the environment `sockserve exec` gives a program: the
 * server's own, minus what describes another connection or another process,
 * plus UCSPI's description of this connection (as tcpserver and ucspi-unix's
 * unixserver set it):
 *
 *   TCP (the client has an IP address):
 *     PROTO=TCP, TCPREMOTEIP, TCPREMOTEPORT, TCPLOCALIP, TCPLOCALPORT
 *     (IPv6 in its usual text without brackets; an IPv4-mapped address as
 *     the IPv4 address it stands for). TCPREMOTEHOST, TCPREMOTEINFO and
 *     TCPLOCALHOST are never set (no DNS or ident lookups) and are removed
 *     from what the server inherited, as tcpserver -H -R does.
 *   UNIX:
 *     PROTO=UNIX, UNIXLOCALPATH (the socket's path, or @name), and from
 *     SO_PEERCRED when the kernel knows them UNIXREMOTEUID, UNIXREMOTEGID,
 *     UNIXREMOTEPID, with ucspi-unix's UNIXREMOTEEUID and UNIXREMOTEEGID
 *     (the same ids: the credentials the client connected with).
 *
 * Removed from the inherited environment: every name above and the service
 * manager's LISTEN_PID, LISTEN_FDS, LISTEN_FDNAMES, NOTIFY_SOCKET,
 * WATCHDOG_PID and WATCHDOG_USEC (they speak of sockserve, not of the
 * program: a program must not report readiness in the server's name).
 *
 * Pure functions of their input: no socket calls, so they are unit-tested.
 */
#ifndef SS_APPS_EXEC_UCSPI_ENV_H
#define SS_APPS_EXEC_UCSPI_ENV_H

#include "sockserve.h"

#include <stdbool.h>
#include <sys/types.h>

/* What is known of one connection. */
typedef struct exec_conn_info {
    ss_addr local;  /* getsockname(); len 0 when unknown */
    ss_addr remote; /* the client (after a PROXY header, the one it carried) */
    bool have_cred; /* unix: SO_PEERCRED answered */
    pid_t pid;      /* 0 when the client is in another pid namespace */
    uid_t uid;
    gid_t gid;
} exec_conn_info;

#define EXEC_ENV_MAX_VARS 10
#define EXEC_ENV_VAR_LEN (SS_ADDR_STRLEN + 32)

/* The variables of one connection, as "NAME=value" strings. */
typedef struct exec_env_vars {
    char text[EXEC_ENV_MAX_VARS][EXEC_ENV_VAR_LEN];
    char *vec[EXEC_ENV_MAX_VARS + 1]; /* pointers into text, NULL-terminated */
    int n;
} exec_env_vars;

/* Is this "NAME=value" entry one that the program must not inherit? */
bool exec_env_is_reserved(const char *entry);

/* Fill `v` for connection `c`. Any thread. */
void exec_env_describe(const exec_conn_info *c, exec_env_vars *v);

/*
 * The inherited part: a NULL-terminated copy of `env` (e.g. environ)
 * without the reserved entries. Returns 0 or -ENOMEM; free it with
 * exec_env_free_base.
 */
int exec_env_base(char *const *env, char ***out);
void exec_env_free_base(char **base);

/*
 * The program's envp: `base` then the connection's variables, in `out`,
 * which has room for exec_env_count(base) + EXEC_ENV_MAX_VARS + 1 entries.
 * The strings are not copied (they belong to `base` and `v`).
 */
size_t exec_env_count(char *const *base);
void exec_env_join(char *const *base, const exec_env_vars *v, char **out);

#endif
