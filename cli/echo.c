/* SPDX-License-Identifier: MIT */
/*
 * echo.c — `sockserve echo [ADDRESS]`: the echo server, and with --prefix,
 * --upper and --once the seed's "your input is" and upper-case servers.
 *
 * A message is one recv chunk on streams (the seed's clients send no
 * newline) and one datagram on udp/unixgram. The reply is built by
 * echo_render(), which knows nothing of sockets: the blocking handler below
 * uses it now, an event-loop (on_data) version can use it beside it later.
 */
#include "cli.h"
#include "server_opts.h"

#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define ECHO_DEFAULT_ADDRESS "tcp://127.0.0.1:9999"
/* Largest stream chunk read at once; also what one datagram may carry. */
#define ECHO_CHUNK 65536
/* A reply up to this long is copied into the stream's write buffer (the
 * library's default size: a write that fits is copied before any wait). */
#define ECHO_COPIED_REPLY (16 * 1024)

typedef struct echo_cfg {
    bool upper;
    bool once;
    const char *prefix;
    size_t prefix_len;
} echo_cfg;

static void upper_ascii(unsigned char *p, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (p[i] >= 'a' && p[i] <= 'z')
            p[i] = (unsigned char)(p[i] - 'a' + 'A');
}

/* The reply to `msg`: prefix + msg (upper-cased with --upper). `out` has room
 * for prefix_len + len bytes. Returns the reply's length. */
static size_t echo_render(const echo_cfg *cfg, const unsigned char *msg, size_t len,
                          unsigned char *out)
{
    memcpy(out, cfg->prefix, cfg->prefix_len);
    memcpy(out + cfg->prefix_len, msg, len);
    if (cfg->upper)
        upper_ascii(out + cfg->prefix_len, len);
    return cfg->prefix_len + len;
}

static int handle_datagram(const echo_cfg *cfg, ss_request *req)
{
    unsigned char *out = malloc(cfg->prefix_len + req->packet_len + 1);
    if (out == NULL)
        return -ENOMEM;
    size_t n = echo_render(cfg, req->packet, req->packet_len, out);
    int rc = ss_request_reply(req, out, n);
    free(out);
    return rc;
}

/*
 * The chunk a stream handler reads into: one per thread, not per connection,
 * since under --model coroutine thousands of idle connections share a loop
 * thread and each would otherwise hold 64 KiB (and the pages it touched).
 * Sharing is safe because a chunk holds bytes only between a read that
 * returned and the reply that copied them out, with no wait between: the
 * read waits before any byte lands, and a reply of at most
 * ECHO_COPIED_REPLY bytes is copied into the stream's buffer before its
 * flush may wait. A longer reply is copied to memory of its own first.
 */
static pthread_key_t chunk_key;
static pthread_once_t chunk_once = PTHREAD_ONCE_INIT;
static bool chunk_key_made;
static _Thread_local unsigned char *thread_chunk;

static void chunk_free(void *p)
{
    free(p);
    thread_chunk = NULL;
}

static void make_chunk_key(void)
{
    chunk_key_made = pthread_key_create(&chunk_key, chunk_free) == 0;
}

/* prefix_len + ECHO_CHUNK bytes for this thread, freed when it exits. */
static unsigned char *chunk_of_thread(size_t prefix_len)
{
    if (thread_chunk != NULL)
        return thread_chunk;
    pthread_once(&chunk_once, make_chunk_key);
    if (!chunk_key_made)
        return NULL;
    unsigned char *p = malloc(prefix_len + ECHO_CHUNK);
    if (p == NULL || pthread_setspecific(chunk_key, p) != 0) {
        free(p);
        return NULL;
    }
    thread_chunk = p;
    return p;
}

/* The reply in `buf`, which other connections of the thread reuse as soon
 * as this one waits. */
static int reply_from_shared(ss_request *req, const unsigned char *buf, size_t len)
{
    if (len <= ECHO_COPIED_REPLY)
        return ss_request_reply(req, buf, len);
    unsigned char *own = malloc(len);
    if (own == NULL)
        return -ENOMEM;
    memcpy(own, buf, len);
    int rc = ss_request_reply(req, own, len);
    free(own);
    return rc;
}

static int handle_stream(const echo_cfg *cfg, ss_request *req)
{
    unsigned char *buf = chunk_of_thread(cfg->prefix_len);
    if (buf == NULL)
        return -ENOMEM;
    unsigned char *chunk = buf + cfg->prefix_len;
    int rc = 0;
    for (;;) {
        ssize_t n = ss_stream_read(req->stream, chunk, ECHO_CHUNK);
        if (n <= 0) { /* 0: the client is done; < 0: reset, idle timeout ... */
            rc = n == 0 || n == SS_EEOF ? 0 : (int)n;
            break;
        }
        /* render in place: the chunk already sits right after the prefix */
        memcpy(buf, cfg->prefix, cfg->prefix_len);
        if (cfg->upper)
            upper_ascii(chunk, (size_t)n);
        rc = reply_from_shared(req, buf, cfg->prefix_len + (size_t)n);
        if (rc < 0 || cfg->once)
            break;
    }
    return rc;
}

static int handle(ss_request *req)
{
    const echo_cfg *cfg = ss_server_handler_data(req->server);
    return req->stream != NULL ? handle_stream(cfg, req) : handle_datagram(cfg, req);
}

/* --model event: the same replies through the callback API. */
static void write_rendered(const echo_cfg *cfg, ss_conn *c, const unsigned char *msg, size_t len)
{
    if (cfg->prefix_len > 0)
        ss_conn_write(c, cfg->prefix, cfg->prefix_len);
    if (!cfg->upper) {
        ss_conn_write(c, msg, len);
        return;
    }
    unsigned char tmp[4096];
    while (len > 0) {
        size_t n = len < sizeof tmp ? len : sizeof tmp;
        memcpy(tmp, msg, n);
        upper_ascii(tmp, n);
        if (ss_conn_write(c, tmp, n) < 0)
            return;
        msg += n;
        len -= n;
    }
}

static void on_data(ss_conn *c, const void *data, size_t len)
{
    const echo_cfg *cfg = ss_conn_handler_data(c);
    write_rendered(cfg, c, data, len);
    if (cfg->once)
        ss_conn_close(c);
}

static void on_packet(ss_dgram *d, const void *data, size_t len, const ss_addr *from)
{
    const echo_cfg *cfg = ss_dgram_handler_data(d);
    if (cfg->prefix_len == 0 && !cfg->upper) {
        ss_dgram_send(d, from, data, len);
        return;
    }
    unsigned char *out = malloc(cfg->prefix_len + len + 1);
    if (out == NULL)
        return; /* a datagram may be dropped; the server goes on */
    ss_dgram_send(d, from, out, echo_render(cfg, data, len, out));
    free(out);
}

static const cli_opt echo_options[] = {
    {"upper", 0, CLI_NO_VALUE, cli_opt_set_true, offsetof(echo_cfg, upper)},
    {"prefix", 0, CLI_VALUE, cli_opt_set_string, offsetof(echo_cfg, prefix)},
    {"once", 0, CLI_NO_VALUE, cli_opt_set_true, offsetof(echo_cfg, once)},
    {NULL, 0, 0, NULL, 0},
};

/* [ADDRESS]: one at most */
static int take_address(void *ctx, const char *arg)
{
    const char **address = ctx;
    if (*address != NULL)
        return cli_usage_error("echo", "unexpected argument '%s'", arg);
    *address = arg;
    return CLI_OK;
}

static int run(int argc, char **argv)
{
    cli_server srv;
    cli_server_init(&srv, "echo");
    srv.tls_flags = true;
    echo_cfg cfg = {.prefix = ""};
    const char *address = NULL;

    cli_spec spec = {.command = &cli_cmd_echo, .operand = take_address, .operand_ctx = &address};
    cli_spec_add(&spec, echo_options, &cfg);
    cli_server_add_options(&spec, &srv);
    int tail;
    int rc = cli_parse(&spec, argc, argv, &tail, NULL);
    if (rc != CLI_PARSE_GO_ON)
        return rc;
    if (cli_server_check(&srv) != 0)
        return CLI_USAGE;
    cfg.prefix_len = strlen(cfg.prefix);
    /* a datagram must fit whole (Python's 8192 would cut the seed's peers short) */
    srv.opts.max_packet_size = ECHO_CHUNK;

    ss_handler handler = {.handle = handle, .data = &cfg};
    struct ss_event_handler events = {.on_data = on_data, .on_packet = on_packet, .data = &cfg};
    if (srv.opts.model == SS_MODEL_EVENT)
        srv.opts.event = &events;
    return cli_server_main(&srv, address ? address : ECHO_DEFAULT_ADDRESS, &handler);
}

const cli_command cli_cmd_echo = {
    .name = "echo",
    .summary = "echo server (--upper, --prefix TEXT, --once), on every address kind",
    .usage =
        "usage: sockserve echo [OPTIONS] [ADDRESS]\n"
        "\n"
        "Echo server on ADDRESS (default " ECHO_DEFAULT_ADDRESS "). On a stream socket\n"
        "each chunk read (one recv) is a message and is answered at once, newline or\n"
        "not; on udp/unixgram each datagram is answered to its sender.\n"
        "\n"
        "  --upper          reply upper-cased (ASCII letters only)\n"
        "  --prefix TEXT    put TEXT before each reply\n"
        "  --once           streams: answer the first message, then close the\n"
        "                   connection; no effect on datagrams\n"
        "  -h, --help       this text\n"
        "\n"
        "The classic Python tutorial's servers (\"your input is\", upper case):\n"
        "  sockserve echo --prefix 'your input is ' --once --model serial tcp://127.0.0.1:PORT\n"
        "  sockserve echo --upper --model threading tcp://127.0.0.1:PORT\n"
        "\n",
    .usage_more = CLI_SERVER_TLS_HELP CLI_SERVER_FLAGS_HELP,
    .run = run,
};
