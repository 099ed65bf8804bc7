/* SPDX-License-Identifier: MIT */
/*
 * rcmd-server.c — `sockserve rcmd-server [ADDRESS]`: runs commands for
 * `sockserve rcmd` clients (docs/rcmd-protocol.md). This file only parses
 * and checks flags; the sessions live in apps/rcmd/.
 */
#include "cli.h"
#include "server_opts.h"

#include "../apps/rcmd/keyfile.h"
#include "../apps/rcmd/server.h"
#include "../apps/rcmd/tls.h"

#include <errno.h>
#include <stddef.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#define RCMD_DEFAULT_ADDRESS "tcp://127.0.0.1:9922"
#define MAX_ALLOW 64
#define RCMD_DEFAULT_MAX_UNAUTH 32
#define RCMD_DEFAULT_MAX_UNAUTH_TEXT "32"

static int parse_u64(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    /* digits only: strtoull takes " -5" and "+5" too (and wraps the first) */
    if (s[0] < '0' || s[0] > '9')
        return -1;
    if (errno || end == s || *end != '\0')
        return -1;
    *out = v;
    return 0;
}

/* ---- --insecure-no-auth: who may connect (CLI.md "Privileges") ---------- */

/* A hook the common flags may have set before ours (access rules). */
static bool (*next_verify)(ss_server *, const ss_sock *, const ss_addr *);

/* Without authentication, a unix socket is as private as its peer's uid:
 * only our own (SO_PEERCRED, the kernel's word, taken at connect) is served.
 * The effective uid is read at each call: --user may have changed it after
 * bind. */
static bool own_uid_only(ss_server *srv, const ss_sock *conn, const ss_addr *client)
{
    if (conn->kind == SS_ADDR_UNIX) {
        struct ucred cred;
        socklen_t len = sizeof cred;
        if (getsockopt(conn->fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 ||
            len != sizeof cred) {
            ss_server_log(srv, SS_LOG_WARN, "rcmd: unix peer refused: cannot tell its uid: %s",
                          strerror(errno));
            return false;
        }
        if (cred.uid != geteuid()) {
            ss_server_log(srv, SS_LOG_WARN,
                          "rcmd: unix peer uid %u (pid %d) refused: --insecure-no-auth "
                          "serves only uid %u",
                          (unsigned)cred.uid, (int)cred.pid, (unsigned)geteuid());
            return false;
        }
    }
    return next_verify == NULL || next_verify(srv, conn, client);
}

static const char *user_we_run_as(const cli_server *srv, char *buf, size_t len)
{
    if (srv->user_name != NULL)
        return srv->user_name;
    struct passwd pw, *res = NULL;
    char pwbuf[4096];
    if (getpwuid_r(geteuid(), &pw, pwbuf, sizeof pwbuf, &res) == 0 && res != NULL)
        snprintf(buf, len, "%s", res->pw_name);
    else
        snprintf(buf, len, "uid %u", (unsigned)geteuid());
    return buf;
}

/* An inherited socket (systemd:, fd:N) is checked once we hold it: its
 * address is known only then. Whoever bound it chose its file's mode. */
static int check_inherited_loopback(const char *address, ss_server **out, ss_addr *addr)
{
    *addr = *ss_server_address(*out);
    if (ss_addr_is_loopback(addr))
        return CLI_OK;
    char text[SS_ADDR_STRLEN];
    ss_addr_format(addr, text, sizeof text);
    /* not freed: the signal watcher knows it; we exit at once */
    *out = NULL;
    return cli_usage_error("rcmd-server",
                           "--insecure-no-auth is only allowed on a loopback or unix "
                           "address, not %s (%s)", text, address);
}

/* Start the server; a unix path socket is created mode 0600 whatever the
 * umask (the umask narrowed around bind: no moment where others may
 * connect; unix_mode says the same to the library). */
static int start_insecure(cli_server *srv, const char *address, ss_addr *addr,
                          const ss_handler *handler, ss_server **out)
{
    bool path = addr->kind == SS_ADDR_UNIX && addr->u.un.sun_path[0] != '\0';
    if (path)
        srv->opts.unix_mode = 0600;
    next_verify = srv->opts.verify_request;
    srv->opts.verify_request = own_uid_only;
    mode_t old_mask = path ? umask(0177) : 0;
    int rc = cli_server_start(srv, address, handler, out);
    if (path) {
        umask(old_mask);
        if (rc == CLI_OK && chmod(addr->u.un.sun_path, 0600) != 0) {
            /* not freed: the signal watcher knows it; we exit at once */
            cli_error("rcmd-server", "cannot chmod %s to 0600: %s", addr->u.un.sun_path,
                      strerror(errno));
            *out = NULL;
            return CLI_RUNTIME;
        }
    }
    if (rc == CLI_OK && ss_addr_is_inherited(address))
        rc = check_inherited_loopback(address, out, addr);
    if (rc == CLI_OK && addr->kind == SS_ADDR_TCP) {
        char who[160];
        cli_error("rcmd-server",
                  "warning: --insecure-no-auth on TCP: every local user can run commands "
                  "as %s",
                  user_we_run_as(srv, who, sizeof who));
    }
    return rc;
}

/* What rcmd-server's own flags set (the shared ones are cli_server_options). */
typedef struct rcmd_server_flags {
    rcmd_server_cfg *cfg;
    const char *key_file, *protocol;
    const char *cert_file, *cert_key_file, *ca_file;
    const char **allow; /* MAX_ALLOW + 1 slots, NULL-terminated */
    size_t nallow;
    long max_unauth;
} rcmd_server_flags;

static int set_insecure(const cli_optarg *a)
{
    ((rcmd_server_flags *)a->ctx)->cfg->insecure = true;
    return CLI_OK;
}

static int set_max_unauth(const cli_optarg *a)
{
    if (!cli_parse_int(a->value, 1, 100000, &((rcmd_server_flags *)a->ctx)->max_unauth))
        return cli_bad_value(a, "expected 1-100000");
    return CLI_OK;
}

static int set_protocol(const cli_optarg *a)
{
    if (strcmp(a->value, "native") != 0 && strcmp(a->value, "seed") != 0)
        return cli_bad_value(a, "expected native or seed");
    ((rcmd_server_flags *)a->ctx)->protocol = a->value;
    return CLI_OK;
}

static int add_allow(const cli_optarg *a)
{
    rcmd_server_flags *f = a->ctx;
    if (a->value[0] == '\0')
        return cli_bad_value(a, "expected a program name");
    if (f->nallow == MAX_ALLOW)
        return cli_usage_error("rcmd-server", "more than %d --allow", MAX_ALLOW);
    f->allow[f->nallow++] = a->value;
    return CLI_OK;
}

static int set_timeout(const cli_optarg *a)
{
    rcmd_server_cfg *cfg = ((rcmd_server_flags *)a->ctx)->cfg;
    char *end;
    cfg->timeout = strtod(a->value, &end);
    if (end == a->value || *end != '\0' || !(cfg->timeout >= 0) || cfg->timeout > 1e7)
        return cli_bad_value(a, "expected seconds >= 0");
    return CLI_OK;
}

static int set_max_output(const cli_optarg *a)
{
    if (parse_u64(a->value, &((rcmd_server_flags *)a->ctx)->cfg->max_output) != 0)
        return cli_bad_value(a, "expected a byte count");
    return CLI_OK;
}

static const cli_opt rcmd_server_options[] = {
    {"key", 0, CLI_VALUE, cli_opt_set_string, offsetof(rcmd_server_flags, key_file)},
    {"cert", 0, CLI_VALUE, cli_opt_set_string, offsetof(rcmd_server_flags, cert_file)},
    {"cert-key", 0, CLI_VALUE, cli_opt_set_string, offsetof(rcmd_server_flags, cert_key_file)},
    {"ca", 0, CLI_VALUE, cli_opt_set_string, offsetof(rcmd_server_flags, ca_file)},
    {"max-unauth", 0, CLI_VALUE, set_max_unauth, 0},
    {"insecure-no-auth", 0, CLI_NO_VALUE, set_insecure, 0},
    {"protocol", 0, CLI_VALUE, set_protocol, 0},
    {"allow", 0, CLI_VALUE, add_allow, 0},
    {"timeout", 0, CLI_VALUE, set_timeout, 0},
    {"max-output", 0, CLI_VALUE, set_max_output, 0},
    {NULL, 0, 0, NULL, 0},
};

/* [ADDRESS]: one at most */
static int take_address(void *ctx, const char *arg)
{
    const char **address = ctx;
    if (*address != NULL)
        return cli_usage_error("rcmd-server", "unexpected argument '%s'", arg);
    *address = arg;
    return CLI_OK;
}

static int run(int argc, char **argv)
{
    cli_server srv;
    cli_server_init(&srv, "rcmd-server");
    /* a remote command service logs who ran what: INFO by default, as sshd */
    srv.verbosity = CLI_LOG_VERBOSE;
    rcmd_server_cfg cfg = {0};
    const char *allow[MAX_ALLOW + 1] = {0};
    const char *address = NULL;

    rcmd_server_flags f = {.cfg = &cfg, .allow = allow, .protocol = "native",
                           .max_unauth = RCMD_DEFAULT_MAX_UNAUTH};
    cli_spec spec = {.command = &cli_cmd_rcmd_server, .operand = take_address,
                     .operand_ctx = &address};
    cli_spec_add(&spec, rcmd_server_options, &f);
    cli_server_add_options(&spec, &srv);
    int tail;
    int parse_rc = cli_parse(&spec, argc, argv, &tail, NULL);
    if (parse_rc != CLI_PARSE_GO_ON)
        return parse_rc;
    const char *key_file = f.key_file, *protocol = f.protocol;
    const char *cert_file = f.cert_file, *cert_key_file = f.cert_key_file, *ca_file = f.ca_file;
    size_t nallow = f.nallow;
    long max_unauth = f.max_unauth;
    if (address == NULL)
        address = RCMD_DEFAULT_ADDRESS;
    if (!srv.model_given)
        srv.opts.model = SS_MODEL_THREADING;
    /* sessions are byte streams: a datagram (or seqpacket) socket, typed or
     * passed by systemd, is refused before it gets a first packet */
    srv.opts.socket_type = SOCK_STREAM;
    if (cli_server_check(&srv) != 0)
        return CLI_USAGE;
    cfg.seed = strcmp(protocol, "seed") == 0;
    cfg.allow = nallow > 0 ? allow : NULL;

    bool certs = cert_file || cert_key_file || ca_file;
    if (cfg.insecure && (key_file || certs))
        return cli_usage_error("rcmd-server",
                               "--insecure-no-auth and a key or certificate do not go together");
    /* Without authentication only the peer's uid (unix) or loopback (tcp)
     * guards the commands; behind a PROXY header the socket's peer is the
     * proxy, so every client of the proxy would pass as it. */
    if ((cfg.insecure || cfg.seed) && srv.opts.proxy_protocol)
        return cli_usage_error("rcmd-server",
                               "--proxy-protocol needs authentication (--key or certificates): "
                               "without it the proxy's uid and address would admit its clients");
    if (key_file && certs)
        return cli_usage_error("rcmd-server", "--key and certificates do not go together");
    if (certs && !(cert_file && cert_key_file && ca_file))
        return cli_usage_error("rcmd-server",
                               "certificate mode needs --cert, --cert-key and --ca");
    if (cfg.seed && nallow > 0)
        return cli_usage_error("rcmd-server",
                               "--allow cannot be used with --protocol seed (its "
                               "commands always run through a shell)");
    if (cfg.seed && (key_file || certs))
        return cli_usage_error("rcmd-server", "--protocol seed is cleartext: it takes no key");
    if (!cfg.insecure && key_file == NULL && !certs)
        return cli_usage_error("rcmd-server",
                               cfg.seed ? "--protocol seed is cleartext: it needs "
                                          "--insecure-no-auth (loopback or unix only)"
                                        : "no key: give --key FILE (or --insecure-no-auth "
                                          "on a loopback address)");
    ss_addr addr = {0};
    if (cfg.insecure && !ss_addr_is_inherited(address)) {
        /* Checked as the server will bind it: passive (":PORT" is every
         * interface, not localhost) and resolved (localhost is fine). */
        ss_error err = {0};
        int prc = ss_addr_parse(&addr, address, SS_ADDR_PASSIVE, &err);
        if (prc == SS_EBADADDR)
            return cli_usage_error("rcmd-server", "%s", err.msg);
        if (prc < 0) {
            cli_error("rcmd-server", "%s", err.msg);
            return CLI_RUNTIME;
        }
        if (!ss_addr_is_loopback(&addr))
            return cli_usage_error("rcmd-server",
                                   "--insecure-no-auth is only allowed on a loopback or unix "
                                   "address, not %s", address);
    }
    if (cfg.insecure && geteuid() == 0 && srv.user_name == NULL)
        return cli_usage_error("rcmd-server",
                               "--insecure-no-auth as root would let every local user run "
                               "commands as root: give --user NAME");
    /* §6: connections between accept and a completed HELLO are capped; the
     * seed protocol has no handshake to wait for */
    if (!cfg.seed)
        srv.opts.max_unadmitted = (int)max_unauth;

    rcmd_key key;
    if (key_file != NULL) {
        ss_error err = {0};
        if (rcmd_key_load(&key, key_file, &err) != 0) {
            cli_error("rcmd-server", "%s", err.msg);
            return CLI_USAGE;
        }
    }
    rcmd_tls_ctx *tls = NULL;
    if (key_file != NULL || certs) {
        ss_error err = {0};
        rcmd_tls_config tc = {.key = key_file != NULL ? &key : NULL,
                              .cert_file = cert_file,
                              .cert_key_file = cert_key_file,
                              .ca_file = ca_file};
        int trc = rcmd_tls_ctx_new(&tls, true, &tc, &err);
        if (key_file != NULL)
            rcmd_key_wipe(&key);
        if (trc != 0) {
            /* a certificate or key file that does not load is the user's
             * to fix, as an unreadable --key is: a usage error */
            cli_error("rcmd-server", "%s", err.msg);
            return certs ? CLI_USAGE : CLI_RUNTIME;
        }
        rcmd_server_set_tls(&cfg, tls);
    }
    ss_handler handler = {.handle = cfg.seed ? rcmd_seed_handle : rcmd_native_handle,
                          .data = &cfg};
    int rc;
    if (cfg.insecure) {
        ss_server *server;
        rc = start_insecure(&srv, address, &addr, &handler, &server);
        if (rc == CLI_OK)
            rc = cli_server_run(&srv, server);
    } else {
        rc = cli_server_main(&srv, address, &handler);
    }
    if (tls != NULL)
        rcmd_tls_ctx_free(tls);
    return rc;
}

const cli_command cli_cmd_rcmd_server = {
    .name = "rcmd-server",
    .summary = "remote command server (authenticated, TLS 1.3; like sshd for one job)",
    .usage =
        "usage: sockserve rcmd-server [OPTIONS] [ADDRESS]\n"
        "\n"
        "Runs commands for `sockserve rcmd` clients on ADDRESS (default\n"
        RCMD_DEFAULT_ADDRESS "); see sockserve(1).\n"
        "\n"
        "  --key FILE            the pre-shared key (sockserve keygen), mode 0600\n"
        "  --cert FILE           certificate mode: our certificate chain (PEM), with\n"
        "  --cert-key FILE         its private key (PEM, mode 0600) and\n"
        "  --ca FILE               the CA that signs the clients' certificates\n"
        "  --max-unauth N        connections still authenticating at once (default "
        RCMD_DEFAULT_MAX_UNAUTH_TEXT ");\n"
        "                        past it, the oldest of them is cut\n"
        "  --insecure-no-auth    no TLS, no key: loopback or unix addresses only; unix\n"
        "                        peers of our own uid only; as root, needs --user\n"
        "  --protocol P          native (default), or seed: the classic Python tutorial's\n"
        "                        cleartext protocol (needs --insecure-no-auth)\n"
        "  --allow PROG          run only PROG (repeatable; argv only, never a shell)\n"
        "  --timeout SEC         kill a command after SEC seconds (TERM, then KILL)\n"
        "  --max-output BYTES    kill a command past BYTES of output (default: none;\n"
        "                        with --protocol seed 64 MiB)\n"
        "  -h, --help            this text\n"
        "\n"
        "The default model is threading. Connections, authentication failures and\n"
        "one audit line per command are logged by default (as sshd does); -q keeps\n"
        "only errors, -v adds debug lines.\n"
        "\n",
    .usage_more = CLI_SERVER_FLAGS_HELP,
    .run = run,
};
