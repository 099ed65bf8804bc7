/* SPDX-License-Identifier: MIT */
/*
 * server_opts.h — what every server subcommand (echo, reply, rcmd-server ...)
 * shares: the common flags of CLI.md, the log callback, the listening line,
 * and the signal handling that turns SIGINT/SIGTERM into a graceful drain.
 *
 * A subcommand uses it like this (opts.h is the parser):
 *
 *     cli_server srv_cli;
 *     cli_server_init(&srv_cli, "echo");
 *     cli_spec spec = {.command = &cli_cmd_echo, .operand = ..., ...};
 *     cli_spec_add(&spec, echo_options, &cfg);   (the subcommand's own table)
 *     cli_server_add_options(&spec, &srv_cli);    (the shared one, + TLS)
 *     int rc = cli_parse(&spec, argc, argv, &tail, NULL);
 *     if (rc != CLI_PARSE_GO_ON) return rc;
 *     if (cli_server_check(&srv_cli) != 0) return CLI_USAGE;
 *     return cli_server_main(&srv_cli, address, &handler);
 *
 * Signals (the one table of the CLI's servers):
 *   SIGINT, SIGTERM  stop accepting, drain for --drain-timeout, exit 0;
 *                    a second one while draining exits at once (status 1)
 *   SIGPIPE          ignored (main.c)
 */
#ifndef SS_CLI_SERVER_OPTS_H
#define SS_CLI_SERVER_OPTS_H

#include "cli.h"
#include "opts.h"

#include <stdbool.h>

/* One --allow-from / --deny-from, in the order given. */
typedef struct cli_rule {
    bool allow;
    const char *cidr;
} cli_rule;

#define CLI_MAX_RULES 256

typedef struct cli_server cli_server;
struct cli_server {
    const char *cmd;     /* subcommand name, for messages */
    ss_server_opts opts; /* filled by the flags; the caller may adjust more */
    int verbosity;       /* CLI_LOG_QUIET, _NORMAL, _VERBOSE, or more (-vv: debug) */
    bool log_timestamps; /* log lines start with the UTC time (not under the journal) */
    bool model_given;
    bool workers_given;
    const char *user_name;   /* --user: drop to this user after binding */
    const char *access_file; /* --access-file: re-read on SIGHUP */
    cli_rule rules[CLI_MAX_RULES]; /* --allow-from / --deny-from */
    int nrules;
    ss_access *access; /* built by cli_server_check; given to the server */
    bool tls_flags;       /* set by the subcommand: it takes --cert/--cert-key/--ca */
    const char *cert_file, *cert_key_file, *ca_file;
    ss_tls_ctx *tls;      /* built by cli_server_check from them; SIGHUP reloads */
    /* Called once, on the signal watcher's thread, when the first SIGINT or
     * SIGTERM starts the drain, while requests still run (exec tells its
     * programs' supervisors when their drain deadline starts). May be NULL. */
    void (*on_drain)(cli_server *c);
    void *on_drain_data;
};

/* Defaults: ss_server_opts_init(), drain 5 s, our log callback. */
void cli_server_init(cli_server *c, const char *cmd);

/*
 * The shared server flags (--model, --workers, --max-conns, ... -q, -v), one
 * table whose rows apply to a cli_server; and --cert, --cert-key, --ca for
 * the subcommands that serve TLS. cli_server_add_options() adds the first,
 * and the second when c->tls_flags is set, to a subcommand's spec (set
 * tls_flags before). A bad value is one usage line and exit 2.
 */
extern const cli_opt cli_server_options[];
extern const cli_opt cli_server_tls_options[];
void cli_server_add_options(cli_spec *spec, cli_server *c);

/*
 * Checks and settles what single flags cannot (e.g. --workers means
 * max_children under forking). Prints one usage line; returns 0 or CLI_USAGE.
 */
int cli_server_check(cli_server *c);

/* The access rules of the flags (--allow-from, --deny-from, --access-file,
 * read now). Returns 0, or a code with err->msg naming the file:line. */
int cli_server_build_access(const cli_server *c, ss_access **out, ss_error *err);

/* The --help lines of the TLS flags, for subcommands that set tls_flags. */
#define CLI_SERVER_TLS_HELP \
    "TLS (stream addresses, every model):\n" \
    "  --cert FILE          PEM certificate chain: serve TLS (1.2 minimum, 1.3 preferred)\n" \
    "  --cert-key FILE      its private key (PEM)\n" \
    "  --ca FILE            require client certificates signed by a CA in FILE\n" \
    "\n"

/* The --help lines of the common flags, a string literal to append to a
 * command's usage text. */
#define CLI_SERVER_FLAGS_HELP \
    "server options (every server subcommand):\n" \
    "  --model MODEL        serial, threading, forking, pool, prefork, event or\n" \
    "                       coroutine (default serial)\n" \
    "  --workers N          pool threads / prefork processes / forking: most children\n" \
    "                       at once (N >= 1; default: the model's own)\n" \
    "  --backend B          event loops on epoll, io_uring or auto (default auto:\n" \
    "                       io_uring when the kernel allows it, else epoll)\n" \
    "  --max-conns N        stream connections served at once (N >= 1; default: no limit)\n" \
    "  --idle-timeout SEC   close a connection silent for SEC seconds (default 0: never)\n" \
    "  --drain-timeout SEC  on SIGINT/SIGTERM, let requests finish for up to SEC (default 5)\n" \
    "  --user NAME          after binding, run as NAME (its uid, gid and groups)\n" \
    "\n" \
    "limits and access (checked at accept or per datagram, before a worker is given):\n" \
    "  --max-pending N      stream connections waiting for their first byte or a worker\n" \
    "                       (default 1024; past it the oldest silent one is closed)\n" \
    "  --handshake-timeout SEC  close a connection that sends nothing for SEC (default 10)\n" \
    "  --write-timeout SEC  close a connection that takes none of our output for SEC\n" \
    "                       (default 60; 0 = never)\n" \
    "  --max-per-ip N       stream connections at once from one address (IPv4 /32,\n" \
    "                       IPv6 /64; default: no limit)\n" \
    "  --allow-from CIDR    serve only matching clients (repeatable)\n" \
    "  --deny-from CIDR     never serve matching clients; wins over allow (repeatable)\n" \
    "  --access-file FILE   'allow CIDR' / 'deny CIDR' lines, re-read on SIGHUP\n" \
    "  --reply-rate N       datagrams answered per second per source (default 1000;\n" \
    "                       0 = no limit)\n" \
    "\n" \
    "behind a proxy (streams: tcp, unix):\n" \
    "  --proxy-protocol     every connection starts with a PROXY protocol header (v1\n" \
    "                       or v2, HAProxy's send-proxy / send-proxy-v2); the address\n" \
    "                       it carries is the client's for logs, --allow-from,\n" \
    "                       --deny-from and --max-per-ip. Without a valid header\n" \
    "                       within --handshake-timeout a connection is closed. Listen\n" \
    "                       where only the proxy can connect: it is trusted.\n" \
    "  -q, --quiet          no per-connection logs (errors and the listening line stay)\n" \
    "  -v, --verbose        one log line per connection (-vv: debug)\n" \
    "\n" \
    "ADDRESS may also name a socket this process was given: systemd: (the first\n" \
    "one systemd's socket activation passed), systemd:NAME (the one named NAME in\n" \
    "LISTEN_FDNAMES) or fd:N (descriptor N, already bound).\n" \
    "When ready it prints 'sockserve: listening on ADDRESS' on stderr (and with\n" \
    "NOTIFY_SOCKET set tells systemd READY=1; STOPPING=1 as it drains). SIGINT or\n" \
    "SIGTERM: stop accepting, drain, exit 0 (a second SIGINT exits at once).\n" \
    "SIGHUP: re-read --access-file and the TLS certificate (a bad file keeps the old).\n" \
    "Exit status: 0 stopped cleanly, 1 runtime error, 2 usage error.\n"

/*
 * Make the server (ss_server_new) and print `sockserve: listening on ADDRESS`.
 * On failure prints one line and returns CLI_USAGE (the address does not
 * parse; `--model event` in a library built without the event engine, which
 * reports SS_EUNSUPPORTED) or CLI_RUNTIME (cannot bind ...); *out is NULL then.
 * Installs the SIGINT/SIGTERM handlers first.
 */
int cli_server_start(cli_server *c, const char *address, const ss_handler *handler,
                     ss_server **out);

/*
 * Serve until SIGINT/SIGTERM or cli_server_stop(), then close (draining up to
 * --drain-timeout) and free the server. Returns the exit code: CLI_OK, or
 * CLI_RUNTIME when serving failed. Main thread; one server at a time.
 */
int cli_server_run(cli_server *c, ss_server *srv);

/* cli_server_start + cli_server_run. */
int cli_server_main(cli_server *c, const char *address, const ss_handler *handler);

/*
 * Ask the server to stop gracefully, as SIGTERM would, from a handler: works
 * on any thread and in the child processes of the forking and prefork models
 * (which signal the main process). Async-signal-safe.
 */
void cli_server_stop(ss_server *srv);

#endif
