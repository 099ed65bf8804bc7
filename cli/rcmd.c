/* SPDX-License-Identifier: MIT */
/* rcmd.c — `sockserve rcmd ADDRESS [--] [COMMAND [ARGS...]]`: run a command
 * on an rcmd server (docs/rcmd-protocol.md §9, §10). Exit status as ssh: the
 * command's, 128+N for a signal, 255 when connecting, authenticating or the
 * protocol fails, 2 for a usage error. */
#include "cli.h"
#include "opts.h"

#include "rcmd/client.h"
#include "rcmd/frame.h"
#include "rcmd/keyfile.h"
#include "rcmd/tls.h"

#ifdef SS_HAVE_LIBEDIT
#include <editline/readline.h>
#endif

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SEED_LINE_MAX 1024 /* the seed server's recv(1024) */

typedef struct opts {
    const char *address;
    const char *key_file;
    const char *cert_file, *cert_key_file, *ca_file;
    bool seed;
    bool insecure;
    bool shell;
    double connect_timeout;
    char **command;
    int ncommand;
} opts;

/* ---- signals: only a byte into a pipe (async-signal-safe) --------------- */

static int sig_pipe[2] = {-1, -1};

static void on_signal(int sig)
{
    int saved = errno;
    unsigned char b = (unsigned char)sig;
    (void)!write(sig_pipe[1], &b, 1);
    errno = saved;
}

static int install_signals(void)
{
    if (pipe2(sig_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
        return -errno;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    return 0;
}

/* ---- arguments ------------------------------------------------------------ */

/* Every address the name gives (the client may dial any of them), not only
 * the first. A name that does not resolve passes: the connect fails later. */
static bool all_loopback(const char *address)
{
    ss_addr addrs[RCMD_DIAL_MAX];
    int n = ss_addr_resolve(address, 0, addrs, RCMD_DIAL_MAX, NULL);
    return n <= 0 || rcmd_addrs_all_loopback(addrs, (size_t)n);
}

static int set_protocol(const cli_optarg *a)
{
    opts *o = a->ctx;
    if (strcmp(a->value, "seed") == 0)
        o->seed = true;
    else if (strcmp(a->value, "native") == 0)
        o->seed = false;
    else
        return cli_bad_value(a, "expected native or seed");
    return CLI_OK;
}

static int set_connect_timeout(const cli_optarg *a)
{
    opts *o = a->ctx;
    if (!cli_parse_seconds(a->value, &o->connect_timeout) || o->connect_timeout <= 0)
        return cli_bad_value(a, "expected a positive number of seconds");
    return CLI_OK;
}

static const cli_opt rcmd_options[] = {
    {"key", 0, CLI_VALUE, cli_opt_set_string, offsetof(opts, key_file)},
    {"cert", 0, CLI_VALUE, cli_opt_set_string, offsetof(opts, cert_file)},
    {"cert-key", 0, CLI_VALUE, cli_opt_set_string, offsetof(opts, cert_key_file)},
    {"ca", 0, CLI_VALUE, cli_opt_set_string, offsetof(opts, ca_file)},
    {"protocol", 0, CLI_VALUE, set_protocol, 0},
    {"insecure-no-auth", 0, CLI_NO_VALUE, cli_opt_set_true, offsetof(opts, insecure)},
    {"shell", 0, CLI_NO_VALUE, cli_opt_set_true, offsetof(opts, shell)},
    {"connect-timeout", 0, CLI_VALUE, set_connect_timeout, 0},
    {NULL, 0, 0, NULL, 0},
};

/* The first operand is ADDRESS; the second starts COMMAND, whose words
 * (flags too) are its own. */
static int take_operand(void *ctx, const char *arg)
{
    opts *o = ctx;
    if (o->address != NULL)
        return CLI_OPERANDS_REST;
    o->address = arg;
    return CLI_OK;
}

/* Returns CLI_PARSE_GO_ON, or an exit code (CLI_OK after --help). */
static int parse_args(int argc, char **argv, opts *o)
{
    memset(o, 0, sizeof *o);
    o->connect_timeout = 10;
    cli_spec spec = {.command = &cli_cmd_rcmd, .operand = take_operand, .operand_ctx = o,
                     .dashdash_ends = true};
    cli_spec_add(&spec, rcmd_options, o);
    int i;
    int rc = cli_parse(&spec, argc, argv, &i, NULL);
    if (rc != CLI_PARSE_GO_ON)
        return rc;
    if (o->address == NULL)
        o->address = RCMD_DEFAULT_ADDRESS;
    o->command = argv + i;
    o->ncommand = argc - i;

    ss_addr addr;
    ss_error err = {0};
    /* resolved: a host name is a fine address (one that does not resolve is
     * left to the connect, which fails with 255, as ssh) */
    if (ss_addr_parse(&addr, o->address, 0, &err) == SS_EBADADDR)
        return cli_usage_error("rcmd", "%s", err.msg);
    if (!ss_addr_is_stream(addr.kind) && err.code == 0)
        return cli_usage_error("rcmd", "%s is not a stream address", o->address);
    bool certs = o->cert_file || o->cert_key_file || o->ca_file;
    if (o->seed && !o->insecure && (o->key_file || certs))
        return cli_usage_error("rcmd", "--protocol seed is cleartext: it takes no key");
    if (o->insecure && (o->key_file || certs))
        return cli_usage_error("rcmd", "--insecure-no-auth and a key do not go together");
    if (o->key_file && certs)
        return cli_usage_error("rcmd", "--key and certificates do not go together");
    if (certs && !(o->cert_file && o->cert_key_file && o->ca_file))
        return cli_usage_error("rcmd", "certificate mode needs --cert, --cert-key and --ca");
    if (!o->seed && !o->insecure && !o->key_file && !certs)
        return cli_usage_error("rcmd", "no key: give --key FILE (or --insecure-no-auth on a "
                                       "loopback address)");
    /* the seed protocol and --insecure-no-auth are cleartext: loopback only
     * (a name that does not resolve fails later, at connect) */
    if ((o->seed || o->insecure) && err.code == 0 && !all_loopback(o->address))
        return cli_usage_error("rcmd",
                               "%s is cleartext and only allowed on a loopback or "
                               "unix address, not %s",
                               o->seed ? "--protocol seed" : "--insecure-no-auth", o->address);
    return CLI_PARSE_GO_ON;
}

/* "a b c" from argv, or NULL when too long for `max`. */
static char *join_args(char **argv, int n, size_t max)
{
    size_t len = 0;
    for (int i = 0; i < n; i++)
        len += strlen(argv[i]) + 1;
    if (len > max + 1)
        return NULL;
    char *s = malloc(len + 1);
    if (s == NULL)
        return NULL;
    s[0] = '\0';
    for (int i = 0; i < n; i++) {
        if (i)
            strcat(s, " ");
        strcat(s, argv[i]);
    }
    return s;
}

/* ---- interactive input: libedit on a terminal, plain lines otherwise ------ */

typedef struct line_reader {
    bool tty;
    char *buf;
    size_t cap;
} line_reader;

/* The next line without its newline, trimmed; NULL at end of input. The
 * result is valid until the next call. */
static char *next_line(line_reader *lr)
{
    free(lr->buf);
    lr->buf = NULL;
#ifdef SS_HAVE_LIBEDIT
    if (lr->tty) {
        lr->buf = readline("cmd : ");
        if (lr->buf == NULL)
            return NULL;
    } else
#endif
    {
        if (lr->tty) { /* built without libedit: a prompt, then a plain line */
            fputs("cmd : ", stdout);
            fflush(stdout);
        }
        lr->cap = 0;
        ssize_t n = getline(&lr->buf, &lr->cap, stdin);
        if (n < 0)
            return NULL;
    }
    char *s = lr->buf;
    while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
        s[--n] = '\0';
#ifdef SS_HAVE_LIBEDIT
    if (lr->tty && n > 0)
        add_history(s);
#endif
    return s;
}

/* ---- the seed protocol ----------------------------------------------------- */

static int run_seed(const opts *o)
{
    ss_error err = {0};
    ss_transport t = {0};
    if (rcmd_seed_connect(&t, o->address, o->connect_timeout, &err) < 0) {
        cli_error("rcmd", "%s", err.msg);
        return RCMD_STATUS_FAILED;
    }
    int status = 0;
    if (o->ncommand > 0) {
        char *line = join_args(o->command, o->ncommand, SEED_LINE_MAX);
        if (line == NULL) {
            cli_error("rcmd", "the command is longer than --protocol seed's %d bytes",
                      SEED_LINE_MAX);
            status = CLI_USAGE;
        } else if (rcmd_seed_exchange(&t, line, STDOUT_FILENO, -1, NULL, &err) < 0) {
            if (err.code != -EPIPE)
                cli_error("rcmd", "%s: %s", o->address, err.msg);
            status = err.code == -EPIPE ? RCMD_STATUS_PIPE : RCMD_STATUS_FAILED;
        }
        free(line);
    } else {
        line_reader lr = {.tty = isatty(STDIN_FILENO)};
        char *line;
        while ((line = next_line(&lr)) != NULL) {
            if (line[0] == '\0')
                continue;
            if (strcmp(line, "q") == 0)
                break;
            if (strlen(line) > SEED_LINE_MAX) {
                cli_error("rcmd", "the command is longer than --protocol seed's %d bytes",
                          SEED_LINE_MAX);
                continue;
            }
            int last;
            long long n = rcmd_seed_exchange(&t, line, STDOUT_FILENO, -1, &last, &err);
            if (n < 0) {
                cli_error("rcmd", "%s: %s", o->address, err.msg);
                status = RCMD_STATUS_FAILED;
                break;
            }
            /* the seed's print() ended every result with a newline */
            if (last != '\n' && write(STDOUT_FILENO, "\n", 1) < 0)
                break;
        }
        free(lr.buf);
    }
    t.ops->close(&t);
    return status;
}

/* ---- the native protocol --------------------------------------------------- */

static int run_native(const opts *o)
{
    rcmd_key key;
    ss_error err = {0};
    if (o->key_file && rcmd_key_load(&key, o->key_file, &err) < 0) {
        /* a key file we cannot use is what the user typed: a usage error,
         * before any connection (as an unreadable rcmd-server --key) */
        cli_error("rcmd", "%s", err.msg);
        return CLI_USAGE;
    }
    if (o->cert_file != NULL) {
        /* the certificate files too, before any connection: the client
         * loads them again as it connects (cheap; the files are small) */
        rcmd_tls_config tc = {.cert_file = o->cert_file, .cert_key_file = o->cert_key_file,
                              .ca_file = o->ca_file};
        rcmd_tls_ctx *probe;
        if (rcmd_tls_ctx_new(&probe, false, &tc, &err) < 0) {
            cli_error("rcmd", "%s", err.msg);
            return CLI_USAGE;
        }
        rcmd_tls_ctx_free(probe);
    }
    rcmd_client_opts co = {
        .address = o->address,
        .key = o->key_file ? &key : NULL,
        .cert_file = o->cert_file,
        .cert_key_file = o->cert_key_file,
        .ca_file = o->ca_file,
        .insecure = o->insecure,
        .connect_timeout = o->connect_timeout,
    };
    rcmd_client *c;
    int rc = rcmd_client_connect(&c, &co, &err);
    rcmd_key_wipe(&key);
    if (rc < 0) {
        cli_error("rcmd", "%s", err.msg);
        return rc == SS_EUSAGE ? CLI_USAGE : RCMD_STATUS_FAILED;
    }
    if (install_signals() < 0) {
        cli_error("rcmd", "cannot set up signal handling: %s", strerror(errno));
        rcmd_client_close(c);
        return RCMD_STATUS_FAILED;
    }

    int status = 0;
    if (o->ncommand > 0) {
        rcmd_client_io io = {STDIN_FILENO, STDOUT_FILENO, STDERR_FILENO, sig_pipe[0]};
        char *line = NULL;
        if (o->shell && (line = join_args(o->command, o->ncommand, RCMD_MAX_PAYLOAD)) == NULL) {
            cli_error("rcmd", "the command is too long");
            rcmd_client_close(c);
            return CLI_USAGE;
        }
        const char *shell_argv[] = {line};
        status = o->shell ? rcmd_client_run(c, RCMD_EXEC_SHELL, shell_argv, 1, &io, &err)
                          : rcmd_client_run(c, RCMD_EXEC_ARGV, (const char *const *)o->command,
                                            (size_t)o->ncommand, &io, &err);
        free(line);
        if (status < 0) {
            cli_error("rcmd", "%s", err.msg);
            status = status == SS_ETOOLONG || status == SS_EUSAGE ? CLI_USAGE : RCMD_STATUS_FAILED;
        }
    } else {
        /* the seed's session: each line through the server's shell, with no
         * stdin (the terminal is ours, for the prompt) */
        rcmd_client_io io = {-1, STDOUT_FILENO, STDERR_FILENO, sig_pipe[0]};
        line_reader lr = {.tty = isatty(STDIN_FILENO)};
        char *line;
        while ((line = next_line(&lr)) != NULL) {
            unsigned char junk[16];
            while (read(sig_pipe[0], junk, sizeof junk) > 0)
                ; /* a Ctrl-C at the prompt is not for the next command */
            if (line[0] == '\0')
                continue;
            if (strcmp(line, "q") == 0)
                break;
            const char *argv1[] = {line};
            int st = rcmd_client_run(c, RCMD_EXEC_SHELL, argv1, 1, &io, &err);
            if (st < 0 && (st == SS_ETOOLONG || st == SS_EUSAGE)) {
                cli_error("rcmd", "%s", err.msg);
                continue;
            }
            if (st < 0 || !rcmd_client_usable(c)) {
                if (st < 0)
                    cli_error("rcmd", "%s", err.msg);
                status = st < 0 ? RCMD_STATUS_FAILED : st;
                break;
            }
        }
        free(lr.buf);
    }
    rcmd_client_close(c);
    return status;
}

static int run(int argc, char **argv)
{
    opts o;
    int rc = parse_args(argc, argv, &o);
    if (rc != CLI_PARSE_GO_ON)
        return rc;
    return o.seed ? run_seed(&o) : run_native(&o);
}

const cli_command cli_cmd_rcmd = {
    .name = "rcmd",
    .summary = "run a command on an rcmd server (like ssh)",
    .usage = "usage: sockserve rcmd [OPTIONS] [ADDRESS] [--] [COMMAND [ARGS...]]\n"
             "\n"
             "Runs COMMAND with ARGS (exactly as given, no shell) on the rcmd server at\n"
             "ADDRESS (default " RCMD_DEFAULT_ADDRESS "), streams its stdout and stderr to\n"
             "ours, forwards our stdin and Ctrl-C, and exits with its status: its code,\n"
             "128+N when a signal N ended it, 127 when it does not exist, 255 when\n"
             "connecting, authenticating or the protocol fails. With no COMMAND: an\n"
             "interactive 'cmd : ' session (line editing and history on a terminal;\n"
             "'q' quits), each line run by the server's shell.\n"
             "\n"
             "options:\n"
             "  --key FILE             the pre-shared key file (sockserve keygen); mode 0600\n"
             "  --cert FILE --cert-key FILE --ca FILE\n"
             "                         certificate mode (mutual TLS) instead of --key\n"
             "  --protocol native|seed native (default: TLS 1.3, framed) or the classic\n"
             "                         Python tutorial's CMD_RESULT_SIZE exchange\n"
             "                         (cleartext, loopback only)\n"
             "  --insecure-no-auth     no TLS, no key (loopback and unix addresses only)\n"
             "  --shell                join COMMAND ARGS with spaces and run them through\n"
             "                         the server's /bin/sh -c\n"
             "  --connect-timeout SEC  connect + authentication deadline (default 10)\n"
             "\n"
             "A second Ctrl-C abandons the command (the server kills it) and exits 130.\n",
    .run = run,
};
