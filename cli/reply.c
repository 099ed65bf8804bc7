/* SPDX-License-Identifier: MIT */
/*
 * reply.c — `sockserve reply ADDRESS`: the keyword responder (the seed's UDP
 * server, on every address kind). Rules live in apps/reply/rules.c; this file
 * parses the command line and answers messages with a blocking handler (an
 * event-loop version would call the same reply_rules_* functions).
 *
 * A message is one datagram, or one recv chunk on a stream. A reply mirrors
 * the message's line ending: "nihao\n" gets "hello,baby,nihao\n", so line
 * clients (`sockserve connect`) see one reply a line, while the seed's
 * clients, which send no newline, get the bare text as the seed gave it.
 */
#include "cli.h"
#include "server_opts.h"
#include "reply/rules.h"

#include <errno.h>
#include <signal.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#define REPLY_CHUNK 65536

/* What the handlers share: the rules, and who may say the stop word. */
typedef struct reply_cfg {
    reply_rules rules;
    ss_access *stop_from; /* --stop-from CIDRs; NULL: loopback and unix peers */
} reply_cfg;

/*
 * May this peer stop the server? A UDP source address is whatever the
 * sender wrote in the packet, so by default only peers that are on this
 * machine (loopback, unix sockets) may; --stop-from names the networks
 * instead (and then only those: unix peers are not in any CIDR).
 */
static bool may_stop(const reply_cfg *cfg, const ss_addr *peer)
{
    if (cfg->stop_from == NULL)
        return peer->u.sa.sa_family == AF_UNIX || ss_addr_is_loopback(peer);
    if (peer->u.sa.sa_family != AF_INET && peer->u.sa.sa_family != AF_INET6)
        return false;
    return ss_access_allows(cfg->stop_from, peer);
}

static bool is_stop(const reply_cfg *cfg, const ss_addr *peer, const void *msg, size_t len)
{
    return reply_rules_is_stop(&cfg->rules, msg, len) && may_stop(cfg, peer);
}

/* Send the reply for one message, or nothing (no rule, no default). */
static int answer(const reply_rules *rules, ss_request *req, const unsigned char *msg,
                  size_t len)
{
    const char *text;
    size_t text_len;
    if (!reply_rules_match(rules, msg, len, &text, &text_len))
        return 0;
    size_t eol = reply_line_ending(msg, len);
    if (eol == 0 || reply_line_ending(text, text_len) != 0)
        return ss_request_reply(req, text, text_len);
    char *out = malloc(text_len + eol);
    if (out == NULL)
        return -ENOMEM;
    memcpy(out, text, text_len);
    memcpy(out + text_len, msg + len - eol, eol);
    int rc = ss_request_reply(req, out, text_len + eol);
    free(out);
    return rc;
}

static int handle(ss_request *req)
{
    const reply_cfg *cfg = ss_server_handler_data(req->server);
    const reply_rules *rules = &cfg->rules;
    if (req->stream == NULL) {
        if (is_stop(cfg, &req->client_address, req->packet, req->packet_len)) {
            cli_server_stop(req->server);
            return 0;
        }
        return answer(rules, req, req->packet, req->packet_len);
    }
    unsigned char *buf = malloc(REPLY_CHUNK);
    if (buf == NULL)
        return -ENOMEM;
    int rc = 0;
    for (;;) {
        ssize_t n = ss_stream_read(req->stream, buf, REPLY_CHUNK);
        if (n <= 0) {
            rc = n == 0 || n == SS_EEOF ? 0 : (int)n;
            break;
        }
        if (is_stop(cfg, &req->client_address, buf, (size_t)n)) {
            cli_server_stop(req->server);
            break;
        }
        rc = answer(rules, req, buf, (size_t)n);
        if (rc < 0)
            break;
    }
    free(buf);
    return rc;
}

/* --model event: the same answers through the callback API. A stop word
 * raises SIGTERM, whose handler drains the server as Ctrl-C would. */
static void on_data(ss_conn *c, const void *data, size_t len)
{
    const reply_cfg *cfg = ss_conn_handler_data(c);
    const reply_rules *rules = &cfg->rules;
    const char *text;
    size_t text_len;
    if (is_stop(cfg, ss_conn_peer(c), data, len)) {
        kill(getpid(), SIGTERM);
        ss_conn_close(c);
        return;
    }
    if (!reply_rules_match(rules, data, len, &text, &text_len))
        return;
    ss_conn_write(c, text, text_len);
    size_t eol = reply_line_ending(data, len);
    if (eol != 0 && reply_line_ending(text, text_len) == 0)
        ss_conn_write(c, (const char *)data + len - eol, eol);
}

static void on_packet(ss_dgram *d, const void *data, size_t len, const ss_addr *from)
{
    const reply_cfg *cfg = ss_dgram_handler_data(d);
    const reply_rules *rules = &cfg->rules;
    const char *text;
    size_t text_len;
    if (is_stop(cfg, from, data, len)) {
        kill(getpid(), SIGTERM);
        return;
    }
    if (!reply_rules_match(rules, data, len, &text, &text_len))
        return;
    size_t eol = reply_line_ending(data, len);
    if (eol == 0 || reply_line_ending(text, text_len) != 0) {
        ss_dgram_send(d, from, text, text_len);
        return;
    }
    char *out = malloc(text_len + eol);
    if (out == NULL)
        return; /* a datagram may be dropped; the server goes on */
    memcpy(out, text, text_len);
    memcpy(out + text_len, (const char *)data + len - eol, eol);
    ss_dgram_send(d, from, out, text_len + eol);
    free(out);
}

static int out_of_memory(void)
{
    cli_error("reply", "out of memory");
    return CLI_RUNTIME;
}

static int add_rule(const cli_optarg *a)
{
    reply_cfg *cfg = a->ctx;
    char why[512];
    int rc = reply_rules_add(&cfg->rules, a->value, why, sizeof why);
    if (rc == -ENOMEM)
        return out_of_memory();
    if (rc < 0)
        return cli_usage_error("reply", "--rule '%s': %s", a->value, why);
    return CLI_OK;
}

static int load_rules(const cli_optarg *a)
{
    reply_cfg *cfg = a->ctx;
    char why[512];
    if (reply_rules_load(&cfg->rules, a->value, why, sizeof why) < 0) {
        cli_error("reply", "%s", why); /* names the file and line */
        return CLI_USAGE;
    }
    return CLI_OK;
}

static int set_default(const cli_optarg *a)
{
    reply_cfg *cfg = a->ctx;
    return reply_rules_set_default(&cfg->rules, a->value) < 0 ? out_of_memory() : CLI_OK;
}

static int set_stop_word(const cli_optarg *a)
{
    reply_cfg *cfg = a->ctx;
    if (a->value[0] == '\0')
        return cli_bad_value(a, "expected a non-empty word");
    return reply_rules_set_stop(&cfg->rules, a->value) < 0 ? out_of_memory() : CLI_OK;
}

static int add_stop_from(const cli_optarg *a)
{
    reply_cfg *cfg = a->ctx;
    if (cfg->stop_from == NULL && ss_access_new(&cfg->stop_from) < 0)
        return out_of_memory();
    ss_error err = {0};
    if (ss_access_add(cfg->stop_from, true, a->value, &err) < 0)
        return cli_usage_error("reply", "--stop-from: %s", err.msg);
    return CLI_OK;
}

static const cli_opt reply_options[] = {
    {"rule", 0, CLI_VALUE, add_rule, 0},
    {"rules", 0, CLI_VALUE, load_rules, 0},
    {"default", 0, CLI_VALUE, set_default, 0},
    {"stop-word", 0, CLI_VALUE, set_stop_word, 0},
    {"stop-from", 0, CLI_VALUE, add_stop_from, 0},
    {NULL, 0, 0, NULL, 0},
};

/* ADDRESS: exactly one */
static int take_address(void *ctx, const char *arg)
{
    const char **address = ctx;
    if (*address != NULL)
        return cli_usage_error("reply", "unexpected argument '%s'", arg);
    *address = arg;
    return CLI_OK;
}

/* Parse the command line into `cfg`; returns -1 to go on, or an exit code. */
static int parse(int argc, char **argv, cli_server *srv, reply_cfg *cfg, const char **addr)
{
    cli_spec spec = {.command = &cli_cmd_reply, .operand = take_address, .operand_ctx = addr};
    cli_spec_add(&spec, reply_options, cfg);
    cli_server_add_options(&spec, srv);
    int tail;
    int rc = cli_parse(&spec, argc, argv, &tail, NULL);
    if (rc != CLI_PARSE_GO_ON)
        return rc;
    if (*addr == NULL)
        return cli_usage_error("reply", "missing ADDRESS");
    if (cli_server_check(srv) != 0)
        return CLI_USAGE;
    return -1;
}

static int run(int argc, char **argv)
{
    cli_server srv;
    cli_server_init(&srv, "reply");
    srv.tls_flags = true;
    reply_cfg cfg = {0};
    reply_rules_init(&cfg.rules);
    const char *address = NULL;

    int rc = parse(argc, argv, &srv, &cfg, &address);
    if (rc < 0) {
        srv.opts.max_packet_size = REPLY_CHUNK;
        ss_handler handler = {.handle = handle, .data = &cfg};
        struct ss_event_handler events = {
            .on_data = on_data, .on_packet = on_packet, .data = &cfg};
        if (srv.opts.model == SS_MODEL_EVENT)
            srv.opts.event = &events;
        rc = cli_server_main(&srv, address, &handler);
    }
    reply_rules_free(&cfg.rules);
    ss_access_free(cfg.stop_from);
    return rc;
}

const cli_command cli_cmd_reply = {
    .name = "reply",
    .summary = "keyword responder (--rule MATCH=REPLY, --rules FILE, --default, --stop-word)",
    .usage =
        "usage: sockserve reply [OPTIONS] ADDRESS\n"
        "\n"
        "Keyword responder, on every address kind. A message\n"
        "is one datagram, or one chunk read (one recv) on a stream. The first rule\n"
        "whose MATCH occurs in the message gives the reply; else the --default text;\n"
        "with no default such a message gets no reply at all. A reply ends with the\n"
        "message's own line ending (\"\\n\" or \"\\r\\n\") if it had one.\n"
        "\n"
        "  --rule MATCH=REPLY  a rule (repeatable), split at the first '='; MATCH is\n"
        "                      not empty; rules are tried in the order given\n"
        "  --rules FILE        rules from FILE, one MATCH=REPLY a line, taken where the\n"
        "                      flag stands among --rule flags; blank lines and lines\n"
        "                      starting with '#' are skipped; nothing else is trimmed\n"
        "  --default TEXT      the reply when no rule matches\n"
        "  --stop-word WORD    a message equal to WORD (a trailing \"\\n\" or \"\\r\\n\" is\n"
        "                      ignored) stops the server: no reply, drain, exit 0\n"
        "  --stop-from CIDR    who may say the stop word (repeatable; default: loopback\n"
        "                      and unix peers); from anyone else it is a message\n"
        "  -h, --help          this text\n"
        "\n"
        "A rules file that cannot be read or has a bad line is a usage error (exit 2):\n"
        "  sockserve: reply: rules.txt:3: expected MATCH=REPLY\n"
        "\n"
        "The classic Python tutorial's UDP server:\n"
        "  sockserve reply udp://127.0.0.1:PORT --rule 'nihao=hello,baby,nihao' \\\n"
        "      --rule 'sb=sb,to you' --default 'input exit to exit' --stop-word exit\n"
        "\n",
    .usage_more = CLI_SERVER_TLS_HELP CLI_SERVER_FLAGS_HELP,
    .run = run,
};
