/* SPDX-License-Identifier: MIT */
/*
 * connect.c — `sockserve connect ADDRESS`: the interactive client (nc-like).
 *
 * One poll loop does all the work, for every socket kind: it waits on stdin
 * and on the socket at once, so replies are printed the moment they arrive and
 * a peer that echoes while we are still sending a long line can never
 * deadlock us (both sides blocked in send with full buffers).
 *
 * What is sent depends on the kind of socket:
 *   - byte streams (tcp, unix): stdin is forwarded as it is read (binary
 *     safe, no line buffering); --no-newline drops the '\n' bytes;
 *   - messages (udp, unixgram, seqpacket): each stdin line is one message,
 *     so a line must be whole before it goes out (bounded by LINE_MAX).
 * With --reconnect every line gets its own connection: connect, send the
 * line, shut down our sending side, print until the server closes or
 * --timeout passes, close.
 */
#include "cli.h"
#include "opts.h"

#include <errno.h>
#include <stddef.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CMD "connect"

/* A message (and so a line in message or --reconnect mode) is never more
 * than this: udp stops at 64 KiB and unix sockets at their send buffer long
 * before, and it bounds the memory a line without a newline can take. */
#define LINE_MAX_BYTES (16u << 20)
/* How much stdin is read at once, and the receive buffer (more than any udp
 * datagram, so datagram replies are whole). */
#define READ_CHUNK (64u << 10)
#define RECV_BUFFER (256u << 10)

typedef struct options {
    const char *address;
    bool reconnect;
    bool no_newline;
    double timeout;
    bool tls; /* --tls, or implied by --ca / --cert */
    const char *ca_file, *server_name, *cert_file, *cert_key_file;
} options;

/* What is read from stdin and not yet sent: data[start, start + len). */
typedef struct inbuf {
    char *data;
    size_t start, len, cap;
    bool eof;
} inbuf;

typedef struct client {
    options opt;
    ss_addr_kind kind;
    bool datagram; /* udp, unixgram: no connection, replies one a line */
    bool message;  /* udp, unixgram, seqpacket: one send per line */
    ss_sock sock;
    ss_tls_ctx *tls;     /* --tls: the client context, made once */
    ss_transport tport;  /* --tls: the connection, over sock.fd */
    inbuf in;
    char *rbuf;
} client;

/* How a conversation on one socket ended. */
enum { END_DONE, END_PEER_CLOSED, END_ERROR };

/* ---- small helpers ---------------------------------------------------- */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t deadline_after(double seconds)
{
    return now_ms() + (int64_t)(seconds * 1000.0 + 0.999);
}

static int ms_until(int64_t deadline)
{
    int64_t left = deadline - now_ms();
    if (left <= 0)
        return 0;
    return left > 1000000 ? 1000000 : (int)left;
}

/* Write everything to stdout. A reader that went away (EPIPE: SIGPIPE is
 * ignored) ends the run quietly, as `cmd | head` users expect. */
static int write_stdout(const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = write(STDOUT_FILENO, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            if (errno != EPIPE)
                cli_error(CMD, "cannot write to stdout: %s", strerror(errno));
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* ---- stdin ------------------------------------------------------------ */

/* Read once from stdin, appending to the buffer. In stream mode the buffer
 * is empty when this is called, so it stays one READ_CHUNK; in line modes it
 * grows up to LINE_MAX_BYTES plus one chunk. Returns bytes read, 0 at end of
 * file, or -1 after printing an error. */
static ssize_t in_fill(client *c)
{
    inbuf *in = &c->in;
    if (in->start > 0) { /* keep the unsent bytes at the front */
        memmove(in->data, in->data + in->start, in->len);
        in->start = 0;
    }
    if (in->cap - in->len < READ_CHUNK) {
        size_t cap = in->cap ? in->cap * 2 : READ_CHUNK;
        while (cap - in->len < READ_CHUNK)
            cap *= 2;
        char *p = realloc(in->data, cap);
        if (p == NULL) {
            cli_error(CMD, "out of memory reading stdin");
            return -1;
        }
        in->data = p;
        in->cap = cap;
    }
    for (;;) {
        ssize_t n = read(STDIN_FILENO, in->data + in->len, READ_CHUNK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            cli_error(CMD, "cannot read stdin: %s", strerror(errno));
            return -1;
        }
        if (n == 0) {
            in->eof = true;
            return 0;
        }
        if (c->opt.no_newline && !c->message && !c->opt.reconnect) {
            /* Stream mode forwards bytes as they come: drop the newlines here. */
            char *p = in->data + in->len, *w = p;
            for (ssize_t i = 0; i < n; i++)
                if (p[i] != '\n')
                    *w++ = p[i];
            n = w - p;
        }
        in->len += (size_t)n;
        return n;
    }
}

/*
 * The next unit to send, in line modes: a whole line, or the last bytes
 * before end of file. Sets *send_len (what goes on the wire: the line with
 * its '\n' unless --no-newline or a datagram) and *consume (what leaves the
 * buffer once it is sent). Returns 1 when there is a unit, 0 when more stdin
 * is needed, -1 when stdin is exhausted, -2 after printing "line too long".
 */
static int in_next_line(client *c, size_t *send_len, size_t *consume)
{
    inbuf *in = &c->in;
    const char *p = in->data + in->start;
    const char *nl = in->len ? memchr(p, '\n', in->len) : NULL;
    if (nl != NULL) {
        size_t body = (size_t)(nl - p);
        bool keep_nl = !c->opt.no_newline && !c->datagram;
        *send_len = body + (keep_nl ? 1 : 0);
        *consume = body + 1;
        return 1;
    }
    if (in->len >= LINE_MAX_BYTES) {
        cli_error(CMD, "a line of stdin is longer than %u bytes", LINE_MAX_BYTES);
        return -2;
    }
    if (!in->eof)
        return 0;
    if (in->len == 0)
        return -1;
    *send_len = *consume = in->len; /* a last line without '\n' goes as it is */
    return 1;
}

/* ---- the socket --------------------------------------------------------- */

/* Print what the socket has. Returns 1 when data (or a datagram, even an
 * empty one) arrived, 0 when nothing did, or -1 with *end set when the
 * conversation is over (END_PEER_CLOSED, or END_ERROR already printed). */
static int receive(client *c, int *end)
{
    ssize_t n = c->tls != NULL
                    ? c->tport.ops->read(&c->tport, c->rbuf, RECV_BUFFER)
                    : ss_sock_recv(&c->sock, c->rbuf, RECV_BUFFER, c->datagram ? MSG_TRUNC : 0);
    if (n == -EAGAIN || n == -EWOULDBLOCK || n == -EINTR)
        return 0;
    if (n == -ECONNRESET || n == -EPIPE) {
        *end = END_PEER_CLOSED;
        return -1;
    }
    if (n < 0) {
        if (n == -ECONNREFUSED)
            cli_error(CMD, "no server at %s: %s", c->opt.address, ss_strerror((int)n));
        else
            cli_error(CMD, "cannot receive from %s: %s", c->opt.address, ss_strerror((int)n));
        *end = END_ERROR;
        return -1;
    }
    if (n == 0 && !c->datagram) {
        *end = END_PEER_CLOSED;
        return -1;
    }
    size_t len = (size_t)n;
    if (c->datagram) {
        if (len > RECV_BUFFER) {
            cli_error(CMD, "a reply of %zu bytes was cut to %u", len, RECV_BUFFER);
            len = RECV_BUFFER;
        }
        /* Each datagram on its own line: the reply, then a '\n' it lacks. */
        if (write_stdout(c->rbuf, len) < 0 ||
            ((len == 0 || c->rbuf[len - 1] != '\n') && write_stdout("\n", 1) < 0)) {
            *end = END_ERROR;
            return -1;
        }
        return 1;
    }
    if (write_stdout(c->rbuf, len) < 0) {
        *end = END_ERROR;
        return -1;
    }
    return 1;
}

/*
 * Send from `p`: a stream takes what it can (partial sends are fine), a
 * message goes whole or not at all (an empty datagram is a real one).
 * Returns 1 with *sent set, 0 when the socket is full, or -1 with *end set.
 */
static int transmit(client *c, const char *p, size_t len, size_t *sent, int *end)
{
    ssize_t n = c->tls != NULL ? c->tport.ops->write(&c->tport, p, len)
                               : ss_sock_send(&c->sock, p, len, 0);
    if (n == -EAGAIN || n == -EWOULDBLOCK || n == -EINTR || n == -ENOBUFS)
        return 0;
    if (n == -EPIPE || n == -ECONNRESET) {
        *end = END_PEER_CLOSED;
        return -1;
    }
    if (n < 0) {
        if (n == -ECONNREFUSED)
            cli_error(CMD, "no server at %s: %s", c->opt.address, ss_strerror((int)n));
        else if (n == -EMSGSIZE)
            cli_error(CMD, "cannot send a message of %zu bytes to %s: %s", len, c->opt.address,
                      ss_strerror((int)n));
        else
            cli_error(CMD, "cannot send to %s: %s", c->opt.address, ss_strerror((int)n));
        *end = END_ERROR;
        return -1;
    }
    *sent = (size_t)n;
    return 1;
}

/*
 * One conversation on the connected socket c->sock. The bytes to send come
 * from stdin, or, when `line` is not NULL (--reconnect), are that line alone.
 * Ends when the peer closes (END_PEER_CLOSED if we had more to send,
 * END_DONE if not), when --timeout passes without data once everything is
 * sent (END_DONE), or on an error (END_ERROR, already printed).
 */
static int converse(client *c, const char *line, size_t line_len)
{
    const bool from_stdin = line == NULL;
    const char *out = NULL; /* the unit being sent */
    size_t out_len = 0, consume = 0;
    bool have_out = false, src_eof = false, shut = false;
    int64_t deadline = 0;
    int end = END_DONE;

    if (!from_stdin) {
        out = line;
        out_len = line_len;
        have_out = true;
    }
    for (;;) {
        bool need_stdin = false;
        if (!have_out && !src_eof) {
            if (!from_stdin) {
                src_eof = true;
            } else if (!c->message) {
                if (c->in.len > 0) {
                    out = c->in.data + c->in.start;
                    out_len = consume = c->in.len;
                    have_out = true;
                } else if (c->in.eof) {
                    src_eof = true;
                } else {
                    need_stdin = true;
                }
            } else {
                int rc = in_next_line(c, &out_len, &consume);
                if (rc == 1) {
                    out = c->in.data + c->in.start;
                    have_out = true;
                } else if (rc == 0) {
                    need_stdin = true;
                } else if (rc == -1) {
                    src_eof = true;
                } else {
                    return END_ERROR;
                }
            }
        }
        if (!have_out && src_eof && !shut) {
            /* Everything is sent: tell a connected peer, then give it
             * --timeout seconds of silence before we stop listening. */
            if (c->tls != NULL)
                (void)c->tport.ops->shutdown_write(&c->tport); /* close_notify too */
            else if (!c->datagram)
                ss_sock_shutdown(&c->sock, SHUT_WR);
            shut = true;
            deadline = deadline_after(c->opt.timeout);
        }

        struct pollfd pfd[2] = {
            {.fd = need_stdin ? STDIN_FILENO : -1, .events = POLLIN},
            {.fd = c->sock.fd, .events = POLLIN | (have_out ? POLLOUT : 0)},
        };
        if (c->tls != NULL) /* TLS may need to write to read, or read to write */
            pfd[1].events |= c->tport.ops->wait_events(&c->tport, 0);
        int rc = poll(pfd, 2, shut ? ms_until(deadline) : -1);
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc < 0) {
            cli_error(CMD, "poll: %s", strerror(errno));
            return END_ERROR;
        }
        if (rc == 0 && shut && ms_until(deadline) == 0)
            return END_DONE;

        /* stdin first, so an end of file that arrived together with the
         * server's close counts as ours (no "server closed" note). */
        if (pfd[0].revents & (POLLIN | POLLHUP | POLLERR)) {
            if (in_fill(c) < 0)
                return END_ERROR;
            continue; /* the next turn takes the new unit or sees the EOF */
        }
        if (pfd[1].revents & (POLLIN | POLLHUP | POLLERR)) {
            int got = receive(c, &end);
            if (got < 0)
                break;
            if (got > 0 && shut)
                deadline = deadline_after(c->opt.timeout);
        }
        if (have_out && (pfd[1].revents & POLLOUT)) {
            if (c->message && out_len == 0 && !c->datagram) {
                /* An empty seqpacket message reads as end of file to the
                 * peer: an empty line sends nothing. */
            } else {
                size_t sent = 0;
                int progress = transmit(c, out, out_len, &sent, &end);
                if (progress < 0)
                    break;
                if (progress == 0)
                    continue;
                out += sent;
                out_len -= sent;
                if (out_len > 0 && !c->message)
                    continue; /* a stream took part of it */
            }
            have_out = false;
            if (from_stdin) {
                c->in.start += consume;
                c->in.len -= consume;
            }
        }
    }
    if (end == END_PEER_CLOSED && !shut)
        return END_PEER_CLOSED;
    return end == END_PEER_CLOSED ? END_DONE : end;
}

/* ---- connecting --------------------------------------------------------- */

/* Connect c->sock to the address; non-blocking for the poll loop. Returns
 * CLI_OK or CLI_RUNTIME after printing the address that failed. */
static int dial(client *c)
{
    ss_error err = {0};
    /* --timeout 0 means "do not wait for data", not "do not wait to connect". */
    double t = c->opt.timeout > 0 ? c->opt.timeout : SS_TIMEOUT_NONE;
    if (c->tls != NULL) {
        /* A failed verification is one line saying why (expired, unknown
         * CA, name mismatch): exit 1, nothing was sent. */
        int rc = ss_tls_dial(&c->tport, c->opt.address, c->tls, c->opt.server_name, t, &err);
        if (rc < 0) {
            cli_error(CMD, "%s", err.msg[0] ? err.msg : ss_strerror(rc));
            return rc == SS_EBADADDR ? CLI_USAGE : CLI_RUNTIME;
        }
        c->sock.fd = c->tport.fd; /* for poll; the transport owns it */
        c->sock.kind = c->kind;
        return CLI_OK;
    }
    int rc = ss_dial(&c->sock, c->opt.address, t, &err);
    if (rc < 0) {
        if (err.msg[0])
            cli_error(CMD, "%s", err.msg);
        else
            cli_error(CMD, "cannot connect to %s: %s", c->opt.address, ss_strerror(rc));
        return rc == SS_EBADADDR ? CLI_USAGE : CLI_RUNTIME;
    }
    /* (ss_dial gives a unixgram client an autobind name, so replies reach us.) */
    rc = ss_sock_settimeout(&c->sock, 0.0);
    if (rc < 0) {
        cli_error(CMD, "cannot make the socket for %s non-blocking: %s", c->opt.address,
                  ss_strerror(rc));
        ss_sock_close(&c->sock);
        return CLI_RUNTIME;
    }
    return CLI_OK;
}

/* Close the connection: through the transport when it is TLS (it owns the
 * descriptor), else the socket. */
static void hang_up(client *c)
{
    if (c->tls != NULL && c->tport.ops != NULL) {
        c->tport.ops->close(&c->tport);
        c->tport.ops = NULL;
        c->sock.fd = -1;
    }
    ss_sock_close(&c->sock);
}

static int run_session(client *c)
{
    int rc = dial(c);
    if (rc != CLI_OK)
        return rc;
    int end = converse(c, NULL, 0);
    hang_up(c);
    if (end == END_PEER_CLOSED) {
        cli_error(CMD, "server closed the connection");
        return CLI_OK;
    }
    return end == END_ERROR ? CLI_RUNTIME : CLI_OK;
}

/* --reconnect: the seed's TCP client, a connection per line. */
static int run_reconnect(client *c)
{
    for (;;) {
        size_t send_len = 0, consume = 0;
        int rc;
        while ((rc = in_next_line(c, &send_len, &consume)) == 0)
            if (in_fill(c) < 0)
                return CLI_RUNTIME;
        if (rc == -1)
            return CLI_OK;
        if (rc < 0)
            return CLI_RUNTIME;

        rc = dial(c);
        if (rc != CLI_OK)
            return rc;
        int end = converse(c, c->in.data + c->in.start, send_len);
        hang_up(c);
        if (end == END_ERROR)
            return CLI_RUNTIME;
        if (end == END_PEER_CLOSED)
            cli_error(CMD, "server closed the connection before the whole line was sent");
        c->in.start += consume;
        c->in.len -= consume;
    }
}

/* ---- the command -------------------------------------------------------- */

static const char usage[] =
    "usage: sockserve connect [OPTIONS] ADDRESS\n"
    "\n"
    "Interactive client: sends each line of stdin to ADDRESS and prints the\n"
    "replies as they arrive.\n"
    "\n"
    "  tcp, unix     stdin is sent as it is read, newlines included (binary "
    "safe)\n"
    "  seqpacket     each line is one message, with its newline\n"
    "  udp, unixgram each line is one datagram without its newline; each "
    "reply\n"
    "                is printed on its own line\n"
    "\n"
    "At end of stdin a connected client shuts down its sending side and exits "
    "0\n"
    "when the server closes, or after --timeout seconds without data; a "
    "datagram\n"
    "client exits 0 after --timeout seconds without a datagram. A server that\n"
    "closes first ends the client with exit 0 and a note on stderr.\n"
    "\n"
    "ADDRESS: tcp://HOST:PORT, HOST:PORT, :PORT (localhost), "
    "tcp://[::1]:PORT,\n"
    "         udp://HOST:PORT, unix:/path, unix:@name, unixgram:/path|@name,\n"
    "         seqpacket:/path|@name\n"
    "\n"
    "options:\n"
    "  --reconnect     a new connection for every line: connect, send the "
    "line,\n"
    "                  print the reply until the server closes or --timeout,\n"
    "                  close (as the classic Python tutorial's TCP client);\n"
    "                  connected kinds only\n"
    "  --no-newline    send lines without their newline\n"
    "  --timeout SEC   how long to wait for a connection, and for data after\n"
    "                  everything is sent (default 2)\n"
    "  --tls           TLS: verify the server against the system CAs\n"
    "  --ca FILE       verify the server against the CAs in FILE (implies --tls)\n"
    "  --server-name NAME  the name sent (SNI) and verified (default: the host)\n"
    "  --cert FILE, --cert-key FILE  present this client certificate (implies --tls)\n"
    "  -h, --help      this text\n"
    "\n"
    "exit: 0 done, 1 connection or I/O failure, 2 bad flag or address\n";

static int set_timeout(const cli_optarg *a)
{
    options *o = a->ctx;
    if (!cli_parse_seconds(a->value, &o->timeout))
        return cli_bad_value(a, "expected seconds >= 0");
    return CLI_OK;
}

/* --ca, --server-name, --cert, --cert-key: a string, and TLS on */
static int set_tls_string(const cli_optarg *a)
{
    if (a->value[0] == '\0') /* --server-name '' would verify no name */
        return cli_bad_value(a, "an empty value");
    ((options *)a->ctx)->tls = true;
    return cli_opt_set_string(a);
}

static const cli_opt connect_options[] = {
    {"reconnect", 0, CLI_NO_VALUE, cli_opt_set_true, offsetof(options, reconnect)},
    {"no-newline", 0, CLI_NO_VALUE, cli_opt_set_true, offsetof(options, no_newline)},
    {"timeout", 0, CLI_VALUE, set_timeout, 0},
    {"tls", 0, CLI_NO_VALUE, cli_opt_set_true, offsetof(options, tls)},
    {"ca", 0, CLI_VALUE, set_tls_string, offsetof(options, ca_file)},
    {"server-name", 0, CLI_VALUE, set_tls_string, offsetof(options, server_name)},
    {"cert", 0, CLI_VALUE, set_tls_string, offsetof(options, cert_file)},
    {"cert-key", 0, CLI_VALUE, set_tls_string, offsetof(options, cert_key_file)},
    {NULL, 0, 0, NULL, 0},
};

static int take_address(void *ctx, const char *arg)
{
    options *o = ctx;
    if (o->address != NULL)
        return cli_usage_error(CMD, "one ADDRESS only ('%s' is extra)", arg);
    o->address = arg;
    return CLI_OK;
}

static int parse_args(int argc, char **argv, options *o)
{
    cli_spec spec = {.command = &cli_cmd_connect, .operand = take_address, .operand_ctx = o};
    cli_spec_add(&spec, connect_options, o);
    int tail;
    int rc = cli_parse(&spec, argc, argv, &tail, NULL);
    if (rc != CLI_PARSE_GO_ON)
        return rc;
    if (o->address == NULL)
        return cli_usage_error(CMD, "missing ADDRESS");
    return CLI_PARSE_GO_ON;
}

static int run(int argc, char **argv)
{
    client c = {.opt = {.timeout = 2.0}, .sock = SS_SOCK_INIT};
    int rc = parse_args(argc, argv, &c.opt);
    if (rc != CLI_PARSE_GO_ON)
        return rc;

    /* Parse up front: a bad address is the user's typo (exit 2) and the
     * kind decides how lines are framed. ss_dial parses again to connect. */
    ss_addr addr;
    ss_error err = {0};
    rc = ss_addr_parse(&addr, c.opt.address, 0, &err);
    if (rc < 0) {
        cli_error(CMD, "%s", err.msg[0] ? err.msg : ss_strerror(rc));
        return rc == SS_EBADADDR ? CLI_USAGE : CLI_RUNTIME;
    }
    c.kind = addr.kind;
    c.datagram = c.kind == SS_ADDR_UDP || c.kind == SS_ADDR_UNIXGRAM;
    c.message = c.datagram || c.kind == SS_ADDR_SEQPACKET;
    if (c.opt.reconnect && c.datagram)
        return cli_usage_error(CMD,
                               "--reconnect needs a connected kind (tcp, unix, "
                               "seqpacket), not %s",
                               c.opt.address);

    if (c.opt.tls) {
        if (c.datagram || c.kind == SS_ADDR_SEQPACKET)
            return cli_usage_error(CMD, "--tls needs a tcp or unix address, not %s",
                                   c.opt.address);
        ss_tls_opts to = {.ca_file = c.opt.ca_file,
                          .cert_file = c.opt.cert_file,
                          .key_file = c.opt.cert_key_file};
        rc = ss_tls_ctx_new(&c.tls, false, &to, &err);
        if (rc < 0)
            return cli_usage_error(CMD, "%s", err.msg);
    }
    c.rbuf = malloc(RECV_BUFFER);
    if (c.rbuf == NULL) {
        cli_error(CMD, "out of memory");
        return CLI_RUNTIME;
    }
    rc = c.opt.reconnect ? run_reconnect(&c) : run_session(&c);
    hang_up(&c);
    ss_tls_ctx_free(c.tls);
    free(c.rbuf);
    free(c.in.data);
    return rc;
}

const cli_command cli_cmd_connect = {
    .name = "connect",
    .summary = "interactive client: stdin lines out, replies to stdout",
    .usage = usage,
    .run = run,
};
