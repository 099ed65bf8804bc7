/* SPDX-License-Identifier: MIT */
/* ucspi_env.c — the program's environment (ucspi_env.h). */
#include "ucspi_env.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const reserved[] = {
    /* UCSPI, TCP */
    "PROTO", "TCPLOCALIP", "TCPLOCALPORT", "TCPLOCALHOST", "TCPREMOTEIP", "TCPREMOTEPORT",
    "TCPREMOTEHOST", "TCPREMOTEINFO",
    /* UCSPI, UNIX (ours and ucspi-unix's) */
    "UNIXLOCALPATH", "UNIXLOCALUID", "UNIXLOCALGID", "UNIXLOCALPID", "UNIXREMOTEPATH",
    "UNIXREMOTEUID", "UNIXREMOTEGID", "UNIXREMOTEPID", "UNIXREMOTEEUID", "UNIXREMOTEEGID",
    /* the service manager's, meant for sockserve itself */
    "LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES", "NOTIFY_SOCKET", "WATCHDOG_PID", "WATCHDOG_USEC"};

bool exec_env_is_reserved(const char *entry)
{
    const char *eq = strchr(entry, '=');
    size_t len = eq != NULL ? (size_t)(eq - entry) : strlen(entry);
    for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++)
        if (strlen(reserved[i]) == len && memcmp(reserved[i], entry, len) == 0)
            return true;
    return false;
}

static void add(exec_env_vars *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void add(exec_env_vars *v, const char *fmt, ...)
{
    if (v->n >= EXEC_ENV_MAX_VARS)
        return;
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(v->text[v->n], EXEC_ENV_VAR_LEN, fmt, ap);
    va_end(ap);
    if (len < 0 || len >= EXEC_ENV_VAR_LEN)
        return; /* cannot happen with these values; never a cut-off one */
    v->vec[v->n] = v->text[v->n];
    v->n++;
    v->vec[v->n] = NULL;
}

static bool is_inet(const ss_addr *a)
{
    return a->len > 0 && (a->u.sa.sa_family == AF_INET || a->u.sa.sa_family == AF_INET6);
}

/* The address as UCSPI writes it: no brackets, no port; ::ffff:a.b.c.d as
 * a.b.c.d (a dual-stack listener's IPv4 clients are IPv4 clients). */
static bool ip_text(const ss_addr *a, char *buf, size_t len)
{
    if (a->u.sa.sa_family == AF_INET)
        return inet_ntop(AF_INET, &a->u.in.sin_addr, buf, (socklen_t)len) != NULL;
    const struct in6_addr *ip6 = &a->u.in6.sin6_addr;
    if (IN6_IS_ADDR_V4MAPPED(ip6))
        return inet_ntop(AF_INET, &ip6->s6_addr[12], buf, (socklen_t)len) != NULL;
    return inet_ntop(AF_INET6, ip6, buf, (socklen_t)len) != NULL;
}

static void describe_inet(exec_env_vars *v, const char *side, const ss_addr *a)
{
    char ip[INET6_ADDRSTRLEN];
    if (!ip_text(a, ip, sizeof ip))
        return;
    add(v, "TCP%sIP=%s", side, ip);
    add(v, "TCP%sPORT=%d", side, ss_addr_port(a));
}

/* "unix:/run/x.sock" -> "/run/x.sock", "unix:@name" -> "@name"; false for
 * an unnamed socket. */
static bool unix_path_text(const ss_addr *a, char *buf, size_t len)
{
    if (a->len <= sizeof(sa_family_t) || a->u.sa.sa_family != AF_UNIX)
        return false;
    char full[SS_ADDR_STRLEN];
    if (ss_addr_format(a, full, sizeof full) < 0)
        return false;
    const char *colon = strchr(full, ':');
    if (colon == NULL || colon[1] == '\0')
        return false;
    snprintf(buf, len, "%s", colon + 1);
    return true;
}

void exec_env_describe(const exec_conn_info *c, exec_env_vars *v)
{
    v->n = 0;
    v->vec[0] = NULL;
    /* the client's family decides: behind a PROXY header a unix listener
     * may serve TCP clients */
    bool tcp = is_inet(&c->remote) || (c->remote.len == 0 && is_inet(&c->local));
    if (tcp) {
        add(v, "PROTO=TCP");
        if (is_inet(&c->local))
            describe_inet(v, "LOCAL", &c->local);
        if (is_inet(&c->remote))
            describe_inet(v, "REMOTE", &c->remote);
        return;
    }
    add(v, "PROTO=UNIX");
    char path[SS_ADDR_STRLEN];
    if (unix_path_text(&c->local, path, sizeof path))
        add(v, "UNIXLOCALPATH=%s", path);
    if (c->have_cred) {
        add(v, "UNIXREMOTEUID=%lu", (unsigned long)c->uid);
        add(v, "UNIXREMOTEGID=%lu", (unsigned long)c->gid);
        if (c->pid > 0)
            add(v, "UNIXREMOTEPID=%ld", (long)c->pid);
        add(v, "UNIXREMOTEEUID=%lu", (unsigned long)c->uid);
        add(v, "UNIXREMOTEEGID=%lu", (unsigned long)c->gid);
    }
}

size_t exec_env_count(char *const *base)
{
    size_t n = 0;
    while (base != NULL && base[n] != NULL)
        n++;
    return n;
}

int exec_env_base(char *const *env, char ***out)
{
    *out = NULL;
    size_t n = exec_env_count(env);
    char **b = calloc(n + 1, sizeof *b);
    if (b == NULL)
        return -ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (exec_env_is_reserved(env[i]))
            continue;
        /* copies: the table must not change under a running server (a
         * setenv() elsewhere would free or move the originals) */
        b[k] = strdup(env[i]);
        if (b[k] == NULL) {
            exec_env_free_base(b);
            return -ENOMEM;
        }
        k++;
    }
    *out = b;
    return 0;
}

void exec_env_free_base(char **base)
{
    if (base == NULL)
        return;
    for (size_t i = 0; base[i] != NULL; i++)
        free(base[i]);
    free(base);
}

void exec_env_join(char *const *base, const exec_env_vars *v, char **out)
{
    size_t k = 0;
    for (size_t i = 0; base != NULL && base[i] != NULL; i++)
        out[k++] = base[i];
    for (int i = 0; i < v->n; i++)
        out[k++] = v->vec[i];
    out[k] = NULL;
}
