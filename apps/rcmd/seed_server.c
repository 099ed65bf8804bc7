/* SPDX-License-Identifier: MIT */
/*
 * seed_server.c — `rcmd-server --protocol seed`: the seed's ssh_server.py
 * exchange byte for byte (docs/rcmd-protocol.md §10), with §7's process
 * rules. The result size must be announced before the bytes, so stdout is
 * spooled to an unlinked temporary file, never to memory.
 */
#include "server.h"
#include "runner.h"
#include "escape.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define SEED_CMD_MAX 1024
#define SEED_ACK_MAX 50
#define NO_OUTPUT "cmd execution has no output..."
#define KILL_GRACE_MS 2000
#define DRAIN_MS 1000 /* output still read after the exit */
#define SEED_PEER_TIMEOUT_S 60.0

static int spool_open(void)
{
    int fd = open("/tmp", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd < 0) {
        char path[] = "/tmp/sockserve-rcmd-XXXXXX";
        fd = mkostemp(path, O_CLOEXEC);
        if (fd >= 0)
            unlink(path);
    }
    return fd < 0 ? -errno : fd;
}

static int write_full(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

typedef struct seed_run {
    uint64_t out;
    int status;
    bool timed_out, over_limit;
    int rc; /* < 0: could not start or spool */
} seed_run;

/* Run `line` with /bin/sh -c, stdout into `spool`. `conn` is watched: the
 * seed's client says nothing while it waits, so a hang-up means it is gone,
 * and its command is killed. The end is the process's exit (its pidfd), not
 * the end of its stdout: after the exit (when the reaper has killed whatever
 * it left behind) the rest of the output is read for at most DRAIN_MS. */
static void run_command(const rcmd_server_cfg *cfg, char *line, int spool, int conn,
                        seed_run *r)
{
    rcmd_child c;
    char *argv[] = {line, NULL};
    memset(r, 0, sizeof *r);
    r->rc = rcmd_spawn(&c, true, argv, RCMD_RUN_STDOUT);
    if (r->rc < 0)
        return;
    uint64_t limit = cfg->max_output ? cfg->max_output : RCMD_SEED_DEFAULT_MAX_OUTPUT;
    long long start = rcmd_runner_now_ms();
    long long deadline = cfg->timeout > 0 ? start + (long long)(cfg->timeout * 1000) : -1;
    long long kill_at = -1, drain_until = -1;
    bool exited = false;
    char buf[65536];
    while (c.out_fd >= 0 || !exited) {
        long long now = rcmd_runner_now_ms();
        if (!exited && rcmd_try_reap(&c, &r->status)) {
            exited = true;
            drain_until = now + DRAIN_MS;
        }
        if (exited && now >= drain_until)
            break;
        if (!exited && deadline >= 0 && now >= deadline && !r->timed_out) {
            r->timed_out = true;
            rcmd_signal_group(&c, SIGTERM);
            kill_at = now + KILL_GRACE_MS;
        }
        if (!exited && kill_at >= 0 && now >= kill_at) {
            rcmd_signal_group(&c, SIGKILL);
            kill_at = -1;
        }
        long long until = exited ? drain_until
                                 : deadline >= 0 && !r->timed_out ? deadline : kill_at;
        if (!exited && c.exit_fd < 0 && (until < 0 || until > now + 100))
            until = now + 100; /* no pidfd (old kernel): look for the exit */
        int wait = until < 0 ? -1 : (int)(until - now > 0 ? until - now : 0);
        struct pollfd p[3] = {{.fd = c.out_fd, .events = POLLIN},
                              {.fd = conn, .events = POLLRDHUP},
                              {.fd = exited ? -1 : c.exit_fd, .events = POLLIN}};
        int n = ss_poll(p, 3, wait);
        if (n <= 0)
            continue;
        if (p[1].revents & (POLLRDHUP | POLLHUP | POLLERR)) {
            r->rc = SS_EEOF; /* the client left: the command goes with it */
            break;
        }
        if (p[0].revents == 0)
            continue;
        ssize_t got = read(c.out_fd, buf, sizeof buf);
        if (got < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (got <= 0) { /* end of its output; the exit may still come */
            close(c.out_fd);
            c.out_fd = -1;
            continue;
        }
        if (r->out + (uint64_t)got > limit) {
            r->over_limit = true;
            break;
        }
        if (write_full(spool, buf, (size_t)got) < 0) {
            r->rc = -EIO;
            break;
        }
        r->out += (uint64_t)got;
    }
    rcmd_child_destroy(&c, exited ? NULL : &r->status);
}

static void audit(ss_request *req, const char *line, const seed_run *r, long long ms)
{
    char peer[256] = "?", cmd[2200], status[64];
    ss_addr_format(&req->client_address, peer, sizeof peer);
    char *argv[] = {(char *)line};
    rcmd_format_command(cmd, sizeof cmd, 1, argv, 1, 512);
    if (r->rc < 0 && r->rc != SS_EEOF) /* EEOF: the client left, it was killed */
        snprintf(status, sizeof status, "error");
    else if (WIFSIGNALED(r->status))
        snprintf(status, sizeof status, "signal:%s", sigabbrev_np(WTERMSIG(r->status)));
    else
        snprintf(status, sizeof status, "exit:%d", WEXITSTATUS(r->status));
    ss_server_log(req->server, SS_LOG_INFO,
                  "rcmd: audit peer=%s cmd=%s status=%s%s%s time=%.3fs in=0 out=%" PRIu64
                  " err=0",
                  peer, cmd, status, r->timed_out ? " timeout" : "",
                  r->over_limit ? " output-limit" : "", (double)ms / 1000.0, r->out);
}

/* Send the spooled result (or the no-output text). */
static int send_result(ss_request *req, int spool, uint64_t n)
{
    char buf[65536];
    if (n == 0)
        return ss_sock_sendall(req->sock, NO_OUTPUT, strlen(NO_OUTPUT));
    if (lseek(spool, 0, SEEK_SET) < 0)
        return -errno;
    while (n > 0) {
        ssize_t got = read(spool, buf, n < sizeof buf ? (size_t)n : sizeof buf);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return -EIO;
        int rc = ss_sock_sendall(req->sock, buf, (size_t)got);
        if (rc < 0)
            return rc;
        n -= (uint64_t)got;
    }
    return 0;
}

/*
 * Python's str.isspace() for the UTF-8 character starting at p (at most n
 * bytes): its length in bytes when it is white space, else 0. The seed runs
 * str(buf, 'utf-8').strip(), which takes more than C's isspace: the ASCII
 * separators 0x1c-0x1f, and NEL, NBSP and the Unicode spaces.
 */
static size_t py_space_len(const unsigned char *p, size_t n)
{
    if (n >= 1 && (p[0] == ' ' || (p[0] >= 0x09 && p[0] <= 0x0d) ||
                   (p[0] >= 0x1c && p[0] <= 0x1f)))
        return 1;
    if (n >= 2 && p[0] == 0xc2 && (p[1] == 0x85 || p[1] == 0xa0))
        return 2; /* U+0085, U+00A0 */
    if (n >= 3) {
        unsigned cp = (p[0] & 0x0fu) << 12 | (p[1] & 0x3fu) << 6 | (p[2] & 0x3fu);
        if ((p[0] & 0xf0) == 0xe0 && (p[1] & 0xc0) == 0x80 && (p[2] & 0xc0) == 0x80 &&
            (cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200a) || cp == 0x2028 ||
             cp == 0x2029 || cp == 0x202f || cp == 0x205f || cp == 0x3000))
            return 3;
    }
    return 0;
}

/* White space that ends exactly at `end` (not before `start`): its length. */
static size_t py_space_len_before(const unsigned char *start, const unsigned char *end)
{
    for (size_t k = 1; k <= 3 && (size_t)(end - start) >= k; k++)
        if (py_space_len(end - k, k) == k)
            return k;
    return 0;
}

static int serve_one(ss_request *req, const rcmd_server_cfg *cfg, char *raw, size_t len)
{
    if (memchr(raw, '\0', len) != NULL)
        return SS_EPROTO; /* a NUL inside: not a command line */
    /* the seed: str(buf, 'utf-8').strip() — surrounding white space goes */
    const unsigned char *b = (const unsigned char *)raw, *e = b + len;
    size_t k;
    while (b < e && (k = py_space_len(b, (size_t)(e - b))) > 0)
        b += k;
    while (e > b && (k = py_space_len_before(b, e)) > 0)
        e -= k;
    char *line = raw + (b - (const unsigned char *)raw);
    line[e - b] = '\0';

    int spool = spool_open();
    if (spool < 0)
        return spool;
    long long start = rcmd_runner_now_ms();
    seed_run r;
    run_command(cfg, line, spool, req->sock->fd, &r);
    audit(req, line, &r, rcmd_runner_now_ms() - start);
    int rc = r.rc;
    if (rc == 0 && r.over_limit)
        rc = SS_ETOOLONG; /* the seed cannot say so: close the connection */
    /* From here on the client must keep up: a bounded wait for its ack and
     * for each send, as the native protocol's writes (never a thread pinned
     * by a peer that stopped reading). Back to waiting freely after. */
    double idle = req->sock->timeout;
    ss_sock_settimeout(req->sock, SEED_PEER_TIMEOUT_S);
    if (rc == 0) {
        uint64_t n = r.out ? r.out : strlen(NO_OUTPUT);
        char head[64];
        int hl = snprintf(head, sizeof head, "CMD_RESULT_SIZE|%" PRIu64, n);
        rc = ss_sock_sendall(req->sock, head, (size_t)hl);
    }
    if (rc == 0) {
        char ack[SEED_ACK_MAX];
        ssize_t got = ss_sock_recv(req->sock, ack, sizeof ack, 0);
        if (got <= 0)
            rc = got == 0 ? SS_EEOF : (int)got;
        else if ((size_t)got != 10 || memcmp(ack, "CMD_RESULT", 10) != 0)
            ss_server_log(req->server, SS_LOG_DEBUG, "rcmd: seed client's ack is not CMD_RESULT");
    }
    if (rc == 0)
        rc = send_result(req, spool, r.out);
    ss_sock_settimeout(req->sock, idle);
    close(spool);
    return rc == SS_ETIMEOUT ? SS_EEOF : rc; /* a peer that stalls is dropped, quietly */
}

int rcmd_seed_handle(ss_request *req)
{
    const rcmd_server_cfg *cfg = ss_server_handler_data(req->server);
    char raw[SEED_CMD_MAX + 1];
    for (;;) {
        ssize_t n = ss_sock_recv(req->sock, raw, SEED_CMD_MAX, 0);
        if (n == 0 || n == SS_EEOF)
            return 0;
        if (n < 0)
            return (int)n;
        int rc = serve_one(req, cfg, raw, (size_t)n);
        if (rc == SS_EEOF)
            return 0;
        if (rc < 0)
            return rc;
    }
}
