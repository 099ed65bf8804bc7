/* SPDX-License-Identifier: MIT */
/* client.c — the rcmd client: connect, authenticate, run commands. */
#include "rcmd/client.h"

#include "rcmd/escape.h"
#include "rcmd/frame.h"
#include "rcmd/tls.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct rcmd_client {
    ss_transport t;
    rcmd_tls_ctx *tls; /* NULL in insecure mode */
    rcmd_reader in;
    uint8_t *out; /* one frame being sent: out[out_off..out_len) */
    size_t out_off, out_len;
    bool out_tried; /* a write of it was attempted: TLS must see it out whole */
    char address[SS_ADDR_STRLEN];
    bool usable;
};

static int fail(ss_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(ss_error *err, int code, const char *fmt, ...)
{
    if (err != NULL) {
        va_list ap;
        va_start(ap, fmt);
        err->code = code;
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

static int64_t deadline_after(double seconds)
{
    return rcmd_now_ms() + (int64_t)(seconds * 1000.0 + 0.5);
}

/* Read at least one byte into the reader, waiting until `deadline`. */
static int fill(rcmd_client *c, int64_t deadline)
{
    for (;;) {
        size_t avail;
        uint8_t *space = rcmd_reader_space(&c->in, &avail);
        ssize_t n = c->t.ops->read(&c->t, space, avail);
        if (n > 0) {
            rcmd_reader_commit(&c->in, (size_t)n);
            return 0;
        }
        if (n == 0)
            return SS_EEOF;
        if (n != -EAGAIN)
            return (int)n;
        int rc = rcmd_transport_wait(&c->t, POLLIN, deadline);
        if (rc < 0)
            return rc;
    }
}

/* Print a server ERROR text on err_fd, escaped. Returns its code. */
static int show_error(const rcmd_frame *f, int fd)
{
    int code = 0;
    char text[RCMD_ERROR_TEXT_MAX + 1];
    if (rcmd_error_decode(f, &code, text, sizeof text) < 0)
        return 0;
    char safe[RCMD_ERROR_TEXT_MAX * 4 + 64];
    size_t n = rcmd_escape(safe, sizeof safe - 40, text, strlen(text));
    char line[sizeof safe + 64];
    int len = snprintf(line, sizeof line, "sockserve: rcmd: server: %.*s\n", (int)n, safe);
    if (fd >= 0 && len > 0)
        (void)!write(fd, line, (size_t)len);
    return code;
}

static int hello(rcmd_client *c, int64_t deadline, ss_error *err)
{
    uint8_t buf[RCMD_HEADER_LEN + 6 + RCMD_HELLO_TEXT_MAX];
    ssize_t n = rcmd_hello_encode(buf, sizeof buf, "sockserve " SS_VERSION_STRING);
    int rc = rcmd_transport_write_all(&c->t, buf, (size_t)n, deadline);
    if (rc < 0)
        return fail(err, rc, "cannot greet %s: %s", c->address, ss_strerror(rc));
    for (;;) {
        rcmd_frame f;
        rc = rcmd_reader_next(&c->in, &f);
        if (rc < 0)
            return fail(err, SS_EPROTO, "%s is not an rcmd server (bad greeting)", c->address);
        if (rc == 1) {
            if (f.type == RCMD_ERROR) {
                show_error(&f, -1);
                return fail(err, SS_EPROTO, "%s refused the greeting", c->address);
            }
            rcmd_hello h;
            if (f.type != RCMD_HELLO || rcmd_hello_decode(&f, &h) < 0)
                return fail(err, SS_EPROTO, "%s is not an rcmd server (no HELLO)", c->address);
            if (h.version != RCMD_VERSION)
                return fail(err, SS_EPROTO, "%s speaks rcmd version %d, we speak %d", c->address,
                            h.version, RCMD_VERSION);
            return 0;
        }
        rc = fill(c, deadline);
        if (rc == SS_ETIMEOUT)
            return fail(err, rc, "%s did not answer the greeting in time", c->address);
        if (rc < 0)
            return fail(err, rc, "%s closed the connection during the greeting%s", c->address,
                        c->tls ? "" : " (is it running with --insecure-no-auth?)");
    }
}

bool rcmd_addrs_all_loopback(const ss_addr *a, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!ss_addr_is_loopback(&a[i]))
            return false;
    return true;
}

int rcmd_dial(ss_sock *out, const char *address, bool cleartext, double timeout, ss_error *err)
{
    ss_addr addrs[RCMD_DIAL_MAX];
    *out = (ss_sock)SS_SOCK_INIT;
    int n = ss_addr_resolve(address, 0, addrs, RCMD_DIAL_MAX, err);
    if (n < 0)
        return n;
    if (cleartext && !rcmd_addrs_all_loopback(addrs, (size_t)n))
        return fail(err, SS_EUSAGE,
                    "cleartext (--insecure-no-auth, --protocol seed) is only allowed on a "
                    "loopback or unix address, and %s is not (or not only) one",
                    address);
    int rc = SS_ENORESOLVE;
    char text[SS_ADDR_STRLEN] = "";
    for (int i = 0; i < n; i++) {
        ss_sock s = SS_SOCK_INIT;
        rc = ss_sock_open_for(&s, &addrs[i]);
        if (rc == 0)
            rc = ss_sock_settimeout(&s, timeout);
        if (rc == 0)
            rc = ss_sock_connect_ex(&s, &addrs[i]);
        if (rc == 0) {
            *out = s;
            return 0;
        }
        ss_sock_close(&s);
        ss_addr_format(&addrs[i], text, sizeof text);
    }
    return fail(err, rc, "cannot connect to %s: %s", text[0] ? text : address, ss_strerror(rc));
}

int rcmd_client_connect(rcmd_client **out, const rcmd_client_opts *o, ss_error *err)
{
    *out = NULL;
    const char *address = o->address ? o->address : RCMD_DEFAULT_ADDRESS;
    double timeout = o->connect_timeout > 0 ? o->connect_timeout : 10.0;
    int64_t deadline = deadline_after(timeout);
    int rc;
    if (!o->insecure && o->key == NULL && o->cert_file == NULL)
        return fail(err, SS_EUSAGE,
                    "no key: give --key FILE (or --insecure-no-auth on "
                    "loopback)");

    rcmd_client *c = calloc(1, sizeof *c);
    if (c == NULL)
        return fail(err, -ENOMEM, "out of memory");
    c->t.fd = -1;
    snprintf(c->address, sizeof c->address, "%s", address);
    c->out = malloc(RCMD_FRAME_MAX);
    if (c->out == NULL || rcmd_reader_init(&c->in) < 0) {
        rcmd_client_close(c);
        return fail(err, -ENOMEM, "out of memory");
    }
    if (!o->insecure) {
        rcmd_tls_config cfg = {.key = o->key,
                               .cert_file = o->cert_file,
                               .cert_key_file = o->cert_key_file,
                               .ca_file = o->ca_file};
        rc = rcmd_tls_ctx_new(&c->tls, false, &cfg, err);
        if (rc < 0) {
            rcmd_client_close(c);
            return rc;
        }
    }
    ss_sock s = SS_SOCK_INIT;
    rc = rcmd_dial(&s, address, o->insecure, timeout, err);
    if (rc < 0) {
        rcmd_client_close(c);
        return rc;
    }
    /* Small frames that wait for an answer (EXEC, STDIN_EOF, the last of
     * the output before EXIT): Nagle + delayed ACK would add up to 40 ms to
     * each, as ssh knows (it sets TCP_NODELAY too). No-op on unix. */
    (void)ss_sock_set_option(&s, SS_OPT_NODELAY, 1);
    int fd = s.fd;
    if (c->tls) {
        rc = rcmd_tls_transport_new(&c->t, c->tls, fd, err);
        if (rc < 0) {
            close(fd);
            rcmd_client_close(c);
            return rc;
        }
        ss_error herr = {0};
        rc = rcmd_tls_handshake(&c->t, deadline, &herr);
        if (rc == SS_EAUTH || rc == SS_ECLOSED || rc == -ECONNRESET) {
            /* a server that rejects our PSK aborts the handshake; to the
             * user that is one thing: the key is wrong */
            rcmd_client_close(c);
            return fail(err, SS_EAUTH, "authentication failed with %s (%s)", address, herr.msg);
        }
        if (rc < 0) {
            rcmd_client_close(c);
            return fail(err, rc, "%s: %s", address, herr.msg);
        }
    } else {
        rc = rcmd_plain_transport_init(&c->t, fd);
        if (rc < 0) {
            close(fd);
            rcmd_client_close(c);
            return fail(err, rc, "%s: %s", address, strerror(-rc));
        }
    }
    rc = hello(c, deadline, err);
    if (rc < 0) {
        rcmd_client_close(c);
        return rc;
    }
    c->usable = true;
    *out = c;
    return 0;
}

bool rcmd_client_usable(const rcmd_client *c)
{
    return c != NULL && c->usable;
}

void rcmd_client_close(rcmd_client *c)
{
    if (c == NULL)
        return;
    if (c->t.ops != NULL && c->t.fd >= 0) {
        if (c->usable) {
            (void)c->t.ops->shutdown_write(&c->t);
        } else {
            /* Giving up on a running command: reset the connection. A plain
             * close would queue our FIN behind any stdin the server has not
             * taken (its window may be shut while the command ignores its
             * input), and the server would not learn we left; a reset
             * reaches it at once, and it kills the command. */
            struct linger abort_now = {.l_onoff = 1, .l_linger = 0};
            (void)setsockopt(c->t.fd, SOL_SOCKET, SO_LINGER, &abort_now, sizeof abort_now);
        }
        c->t.ops->close(&c->t);
    }
    rcmd_tls_ctx_free(c->tls);
    rcmd_reader_free(&c->in);
    free(c->out);
    free(c);
}

/* ---- running a command --------------------------------------------------- */

/* Write everything to a local descriptor (stdout/stderr), waiting if it is
 * non-blocking. */
static int write_local(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            struct pollfd pf = {.fd = fd, .events = POLLOUT};
            (void)poll(&pf, 1, 1000);
            continue;
        }
        return w < 0 ? -errno : -EIO;
    }
    return 0;
}

/* Push the pending frame out without blocking. 0 when all sent or it
 * would block, negative on error. */
static int flush_out(rcmd_client *c)
{
    while (c->out_off < c->out_len) {
        c->out_tried = true;
        ssize_t n = c->t.ops->write(&c->t, c->out + c->out_off, c->out_len - c->out_off);
        if (n == -EAGAIN)
            return 0;
        if (n <= 0)
            return n == 0 ? -EPIPE : (int)n;
        c->out_off += (size_t)n;
    }
    c->out_off = c->out_len = 0;
    c->out_tried = false;
    return 0;
}

/* Queue one small control frame (SIGNAL, STDIN_EOF) after whatever is
 * pending, sending the pending one first, blocking at most 10 s. */
static int send_now(rcmd_client *c, const uint8_t *frame, size_t len)
{
    int64_t deadline = deadline_after(10);
    while (c->out_len > 0) {
        int rc = flush_out(c);
        if (rc < 0)
            return rc;
        if (c->out_len > 0 && (rc = rcmd_transport_wait(&c->t, POLLOUT, deadline)) < 0)
            return rc;
    }
    memcpy(c->out, frame, len);
    c->out_len = len;
    return flush_out(c);
}

typedef struct run_state {
    bool stdin_open;
    bool eof_queued;
    bool interrupted;
    int status; /* >= 0 once EXIT arrived */
    int local;  /* >= 0: we stop for a local reason (130, 141, 128+N) */
} run_state;

/* Handle one frame from the server. */
static int on_frame(rcmd_client *c, const rcmd_frame *f, const rcmd_client_io *io, run_state *st,
                    ss_error *err)
{
    int rc;
    switch (f->type) {
    case RCMD_STDOUT:
    case RCMD_STDERR:
        if (f->len == 0)
            return 0;
        rc = write_local(f->type == RCMD_STDOUT ? io->out_fd : io->err_fd, f->payload, f->len);
        if (rc == -EPIPE) {
            st->local = RCMD_STATUS_PIPE;
            return 0;
        }
        if (rc < 0)
            return fail(err, rc, "cannot write the command's output: %s", strerror(-rc));
        return 0;
    case RCMD_ERROR: {
        int code = show_error(f, io->err_fd);
        if (code == RCMD_ERR_PROTOCOL || code == RCMD_ERR_VERSION || code == RCMD_ERR_BUSY)
            return fail(err, SS_EPROTO, "%s ended the session", c->address);
        return 0;
    }
    case RCMD_EXIT: {
        int kind, value;
        if (rcmd_exit_decode(f, &kind, &value) < 0)
            return fail(err, SS_EPROTO, "bad EXIT from %s", c->address);
        st->status = kind == RCMD_EXIT_CODE ? value : 128 + value;
        if (st->status > 255)
            st->status = 255;
        return 0;
    }
    default:
        return fail(err, SS_EPROTO, "protocol error: unexpected %s frame from %s",
                    rcmd_type_name(f->type), c->address);
    }
}

/* A signal byte from the caller's self-pipe. */
static int on_signal(rcmd_client *c, int sig, run_state *st)
{
    if (sig == SIGINT && !st->interrupted) {
        st->interrupted = true;
        uint8_t frame[RCMD_HEADER_LEN + 1];
        ssize_t n = rcmd_signal_encode(frame, sizeof frame, SIGINT);
        return send_now(c, frame, (size_t)n);
    }
    /* a second Ctrl-C, or TERM/HUP: give up; closing the connection makes the
     * server kill the command */
    st->local = 128 + sig;
    return 0;
}

int rcmd_client_run(rcmd_client *c, int mode, const char *const *argv, size_t argc,
                    const rcmd_client_io *io, ss_error *err)
{
    if (!c->usable)
        return fail(err, SS_ECLOSED, "the connection to %s is closed", c->address);
    run_state st = {.stdin_open = io->in_fd >= 0, .status = -1, .local = -1};

    ssize_t n = rcmd_exec_encode(c->out, RCMD_FRAME_MAX, mode, argv, argc);
    if (n < 0)
        return fail(err, n == SS_ETOOLONG ? SS_ETOOLONG : SS_EUSAGE,
                    n == SS_ETOOLONG ? "the command is too long (over %u bytes or %d arguments)"
                                     : "empty command",
                    RCMD_MAX_PAYLOAD, RCMD_MAX_ARGS);
    c->out_off = 0;
    c->out_len = (size_t)n;
    c->out_tried = false;
    c->usable = false; /* until EXIT comes back */

    int rc = 0;
    while (st.status < 0 && st.local < 0) {
        /* frames already buffered (TLS may hold decrypted bytes poll cannot see) */
        rcmd_frame f;
        while (st.status < 0 && st.local < 0 && (rc = rcmd_reader_next(&c->in, &f)) == 1)
            if ((rc = on_frame(c, &f, io, &st, err)) < 0)
                return rc;
        if (rc < 0)
            return fail(err, SS_EPROTO, "protocol error: bad frame from %s", c->address);
        if (st.status >= 0 || st.local >= 0)
            break;
        if ((rc = flush_out(c)) < 0)
            return fail(err, rc, "lost the connection to %s: %s", c->address, ss_strerror(rc));
        if (!st.stdin_open && !st.eof_queued && c->out_len == 0) {
            n = rcmd_data_encode(c->out, RCMD_FRAME_MAX, RCMD_STDIN_EOF, NULL, 0);
            c->out_len = (size_t)n;
            st.eof_queued = true;
            continue;
        }
        /* try a read before sleeping: SSL may have buffered records */
        size_t avail;
        uint8_t *space = rcmd_reader_space(&c->in, &avail);
        ssize_t got = c->t.ops->read(&c->t, space, avail);
        if (got > 0) {
            rcmd_reader_commit(&c->in, (size_t)got);
            continue;
        }
        if (got == 0)
            return fail(err, SS_EEOF, "%s closed the connection before the command ended",
                        c->address);
        if (got != -EAGAIN)
            return fail(err, (int)got, "lost the connection to %s: %s", c->address,
                        ss_strerror((int)got));

        struct pollfd pf[3];
        int np = 0;
        short ev = POLLIN | (c->out_len ? POLLOUT : 0);
        pf[np++] = (struct pollfd){.fd = c->t.fd, .events = c->t.ops->wait_events(&c->t, ev) | ev};
        int in_ix = -1, sig_ix = -1;
        if (st.stdin_open && c->out_len == 0) {
            in_ix = np;
            pf[np++] = (struct pollfd){.fd = io->in_fd, .events = POLLIN};
        }
        if (io->sig_fd >= 0) {
            sig_ix = np;
            pf[np++] = (struct pollfd){.fd = io->sig_fd, .events = POLLIN};
        }
        if (poll(pf, (nfds_t)np, -1) < 0) {
            if (errno == EINTR)
                continue;
            return fail(err, -errno, "poll: %s", strerror(errno));
        }
        if (sig_ix >= 0 && (pf[sig_ix].revents & POLLIN)) {
            unsigned char sig;
            if (read(io->sig_fd, &sig, 1) == 1 && (rc = on_signal(c, sig, &st)) < 0)
                return fail(err, rc, "lost the connection to %s: %s", c->address, ss_strerror(rc));
        }
        if (in_ix >= 0 && (pf[in_ix].revents & (POLLIN | POLLHUP | POLLERR))) {
            ssize_t r = read(io->in_fd, c->out + RCMD_HEADER_LEN, RCMD_MAX_PAYLOAD);
            if (r < 0 && (errno == EINTR || errno == EAGAIN))
                continue;
            if (r <= 0) {
                st.stdin_open = false; /* EOF (or an unreadable stdin): STDIN_EOF next */
            } else {
                rcmd_header_encode(c->out, RCMD_STDIN, (uint32_t)r);
                c->out_off = 0;
                c->out_len = RCMD_HEADER_LEN + (size_t)r;
            }
        }
    }
    if (st.status >= 0) {
        /* Anything still queued (stdin for a command that has ended) must not
         * reach the server as the next command's: drop it, unless it is
         * half-sent (TLS may have taken part of it even when the write said
         * "again"), in which case finish it so the stream stays framed. */
        if (c->out_len > 0 && c->out_tried) {
            int64_t deadline = deadline_after(10);
            while (c->out_len > 0 && (rc = flush_out(c)) == 0 && c->out_len > 0)
                if ((rc = rcmd_transport_wait(&c->t, POLLOUT, deadline)) < 0)
                    break;
            if (rc < 0)
                return fail(err, rc, "lost the connection to %s", c->address);
        }
        c->out_off = c->out_len = 0;
        c->out_tried = false;
        c->usable = true;
        return st.status;
    }
    return st.local; /* the caller closes the connection: the server kills it */
}
