/* SPDX-License-Identifier: MIT */
/* tls.c — TLS 1.3 with an external PSK (or certificates) as an ss_transport. */
#include "rcmd/tls.h"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>

struct rcmd_tls_ctx {
    SSL_CTX *ssl_ctx;
    BIO_METHOD *bio_method; /* socket I/O with MSG_NOSIGNAL */
    bool server;
    bool psk;
    rcmd_key key;
};

/* Per-connection state behind ss_transport.impl. */
typedef struct tls_conn {
    SSL *ssl;
    short want; /* what the last -EAGAIN waits for */
} tls_conn;

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

/* The oldest queued OpenSSL error as text (and the queue cleared). */
static const char *ssl_reason(char *buf, size_t len)
{
    unsigned long e = ERR_get_error();
    unsigned long last;
    while ((last = ERR_get_error()) != 0)
        ; /* keep the first: it is the cause */
    if (e == 0) {
        snprintf(buf, len, "unknown TLS error");
        return buf;
    }
    const char *r = ERR_reason_error_string(e);
    snprintf(buf, len, "%s", r ? r : "unknown TLS error");
    return buf;
}

int64_t rcmd_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- PSK -------------------------------------------------------------- */

/* TLS_AES_128_GCM_SHA256: the suite the PSK is bound to (SHA-256). */
static const unsigned char psk_suite[2] = {0x13, 0x01};

static SSL_SESSION *psk_session(SSL *ssl, const rcmd_key *k)
{
    const SSL_CIPHER *cipher = SSL_CIPHER_find(ssl, psk_suite);
    if (cipher == NULL)
        return NULL;
    SSL_SESSION *s = SSL_SESSION_new();
    if (s == NULL)
        return NULL;
    if (!SSL_SESSION_set1_master_key(s, k->key, k->key_len) || !SSL_SESSION_set_cipher(s, cipher) ||
        !SSL_SESSION_set_protocol_version(s, TLS1_3_VERSION)) {
        SSL_SESSION_free(s);
        return NULL;
    }
    return s;
}

static int client_psk_cb(SSL *ssl, const EVP_MD *md, const unsigned char **id, size_t *idlen,
                         SSL_SESSION **sess)
{
    const rcmd_tls_ctx *c = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
    *sess = NULL;
    const SSL_CIPHER *cipher = SSL_CIPHER_find(ssl, psk_suite);
    /* On a HelloRetryRequest OpenSSL asks again with the chosen hash: a PSK
     * bound to another hash cannot be offered. */
    if (cipher == NULL || (md != NULL && md != SSL_CIPHER_get_handshake_digest(cipher)))
        return 1;
    SSL_SESSION *s = psk_session(ssl, &c->key);
    if (s == NULL)
        return 0;
    *id = (const unsigned char *)c->key.identity;
    *idlen = strlen(c->key.identity);
    *sess = s;
    return 1;
}

static int server_psk_cb(SSL *ssl, const unsigned char *id, size_t idlen, SSL_SESSION **sess)
{
    const rcmd_tls_ctx *c = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
    *sess = NULL;
    /* The identity is not secret; the key is proven by the binder, which
     * OpenSSL checks in constant time. An unknown identity gets no PSK and
     * (with no certificate) the handshake fails. */
    if (idlen != strlen(c->key.identity) || memcmp(id, c->key.identity, idlen) != 0)
        return 1;
    SSL_SESSION *s = psk_session(ssl, &c->key);
    if (s == NULL)
        return 0;
    *sess = s;
    return 1;
}

/* A PSK client trusts no certificate at all: a server that answers with one
 * instead of using the key (any self-signed impostor) fails the handshake
 * before we send a byte of application data. */
static int refuse_any_certificate(int ok, X509_STORE_CTX *store)
{
    (void)ok;
    X509_STORE_CTX_set_error(store, X509_V_ERR_APPLICATION_VERIFICATION);
    return 0;
}

/* ---- socket BIO ----------------------------------------------------------
 * OpenSSL's own socket BIO writes with write(2), which raises SIGPIPE on a
 * peer that has gone; ours sends with MSG_NOSIGNAL, so no caller has to
 * ignore SIGPIPE. Made per context: no global state. */

static int sock_bio_write(BIO *b, const char *buf, size_t len, size_t *done)
{
    int fd = (int)(intptr_t)BIO_get_data(b);
    BIO_clear_retry_flags(b);
    for (;;) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
        if (n >= 0) {
            *done = (size_t)n;
            return 1;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            BIO_set_retry_write(b);
        return 0;
    }
}

static int sock_bio_read(BIO *b, char *buf, size_t len, size_t *done)
{
    int fd = (int)(intptr_t)BIO_get_data(b);
    BIO_clear_retry_flags(b);
    for (;;) {
        ssize_t n = recv(fd, buf, len, 0);
        if (n > 0) {
            *done = (size_t)n;
            return 1;
        }
        if (n == 0) {
            errno = 0; /* EOF: SSL_ERROR_SYSCALL with errno 0 */
            return 0;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            BIO_set_retry_read(b);
        return 0;
    }
}

static long sock_bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)b;
    (void)num;
    (void)ptr;
    return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static int sock_bio_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

static BIO_METHOD *sock_bio_method(void)
{
    BIO_METHOD *m = BIO_meth_new(BIO_TYPE_SOURCE_SINK | BIO_get_new_index(), "rcmd-socket");
    if (m == NULL)
        return NULL;
    if (!BIO_meth_set_write_ex(m, sock_bio_write) || !BIO_meth_set_read_ex(m, sock_bio_read) ||
        !BIO_meth_set_ctrl(m, sock_bio_ctrl) || !BIO_meth_set_create(m, sock_bio_create)) {
        BIO_meth_free(m);
        return NULL;
    }
    return m;
}

/* ---- context ---------------------------------------------------------- */

static int load_certs(rcmd_tls_ctx *c, const rcmd_tls_config *cfg, ss_error *err)
{
    char r[256];
    if (cfg->cert_file == NULL || cfg->cert_key_file == NULL || cfg->ca_file == NULL)
        return fail(err, SS_EUSAGE,
                    "certificate mode needs a certificate, its key and a "
                    "CA file");
    int rc = rcmd_check_private_file(cfg->cert_key_file, "private key", err);
    if (rc < 0)
        return rc;
    if (SSL_CTX_use_certificate_chain_file(c->ssl_ctx, cfg->cert_file) != 1)
        return fail(err, SS_ETLS, "cannot load certificate '%s': %s", cfg->cert_file,
                    ssl_reason(r, sizeof r));
    if (SSL_CTX_use_PrivateKey_file(c->ssl_ctx, cfg->cert_key_file, SSL_FILETYPE_PEM) != 1)
        return fail(err, SS_ETLS, "cannot load private key '%s': %s", cfg->cert_key_file,
                    ssl_reason(r, sizeof r));
    if (SSL_CTX_check_private_key(c->ssl_ctx) != 1)
        return fail(err, SS_ETLS, "private key '%s' does not match certificate '%s'",
                    cfg->cert_key_file, cfg->cert_file);
    if (SSL_CTX_load_verify_locations(c->ssl_ctx, cfg->ca_file, NULL) != 1)
        return fail(err, SS_ETLS, "cannot load CA file '%s': %s", cfg->ca_file,
                    ssl_reason(r, sizeof r));
    SSL_CTX_set_verify(c->ssl_ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    return 0;
}

int rcmd_tls_ctx_new(rcmd_tls_ctx **out, bool server, const rcmd_tls_config *cfg, ss_error *err)
{
    *out = NULL;
    bool psk = cfg->key != NULL;
    bool certs = cfg->cert_file != NULL || cfg->cert_key_file != NULL;
    if (psk == certs)
        return fail(err, SS_EUSAGE, "TLS needs either a key file or a certificate");
    rcmd_tls_ctx *c = calloc(1, sizeof *c);
    if (c == NULL)
        return fail(err, -ENOMEM, "out of memory");
    c->server = server;
    c->psk = psk;
    char r[256];
    c->ssl_ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
    if (c->ssl_ctx == NULL) {
        free(c);
        return fail(err, SS_ETLS, "cannot make a TLS context: %s", ssl_reason(r, sizeof r));
    }
    SSL_CTX *x = c->ssl_ctx;
    SSL_CTX_set_app_data(x, c);
    int rc = 0;
    c->bio_method = sock_bio_method();
    if (c->bio_method == NULL)
        rc = fail(err, SS_ETLS, "cannot make a TLS socket BIO");
    if (rc == 0 && (SSL_CTX_set_min_proto_version(x, TLS1_3_VERSION) != 1 ||
                    SSL_CTX_set_max_proto_version(x, TLS1_3_VERSION) != 1))
        rc = fail(err, SS_ETLS, "TLS 1.3 is not available: %s", ssl_reason(r, sizeof r));
    /* Every connection authenticates afresh: no tickets, no resumption,
     * no 0-RTT (replayable) data. A truncated stream shows as EOF: the rcmd
     * framing (EXIT) tells a complete conversation from a cut one. */
    SSL_CTX_set_options(x, SSL_OP_NO_TICKET | SSL_OP_IGNORE_UNEXPECTED_EOF);
    SSL_CTX_set_session_cache_mode(x, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_mode(x, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (server) {
        SSL_CTX_set_num_tickets(x, 0);
        SSL_CTX_set_max_early_data(x, 0);
    }
    if (rc == 0 && psk) {
        c->key = *cfg->key;
        if (SSL_CTX_set_ciphersuites(x, RCMD_TLS_PSK_SUITES) != 1)
            rc = fail(err, SS_ETLS, "cannot set the TLS suites: %s", ssl_reason(r, sizeof r));
        if (server)
            SSL_CTX_set_psk_find_session_callback(x, server_psk_cb);
        else {
            SSL_CTX_set_psk_use_session_callback(x, client_psk_cb);
            SSL_CTX_set_verify(x, SSL_VERIFY_PEER, refuse_any_certificate);
        }
    } else if (rc == 0) {
        rc = load_certs(c, cfg, err);
    }
    if (rc < 0) {
        rcmd_tls_ctx_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

void rcmd_tls_ctx_free(rcmd_tls_ctx *ctx)
{
    if (ctx == NULL)
        return;
    SSL_CTX_free(ctx->ssl_ctx);
    BIO_meth_free(ctx->bio_method);
    rcmd_key_wipe(&ctx->key);
    free(ctx);
}

SSL_CTX *rcmd_tls_ctx_ssl_ctx(rcmd_tls_ctx *ctx)
{
    return ctx->ssl_ctx;
}

/* ---- transport -------------------------------------------------------- */

/* Map an SSL_get_error result; -EAGAIN remembers what to wait for. */
static int ssl_status(tls_conn *c, int ret)
{
    int e = SSL_get_error(c->ssl, ret);
    switch (e) {
    case SSL_ERROR_WANT_READ: c->want = POLLIN; return -EAGAIN;
    case SSL_ERROR_WANT_WRITE: c->want = POLLOUT; return -EAGAIN;
    case SSL_ERROR_ZERO_RETURN: return 0;
    case SSL_ERROR_SYSCALL: {
        int saved = errno;
        ERR_clear_error();
        return saved ? -saved : SS_ECLOSED;
    }
    default: ERR_clear_error(); return SS_ETLS;
    }
}

static ssize_t tls_read(ss_transport *t, void *buf, size_t len)
{
    tls_conn *c = t->impl;
    size_t got = 0;
    ERR_clear_error();
    c->want = 0;
    if (SSL_read_ex(c->ssl, buf, len, &got) == 1)
        return (ssize_t)got;
    int rc = ssl_status(c, 0);
    return rc == SS_ECLOSED ? 0 : rc; /* EOF without close_notify: EOF */
}

static ssize_t tls_write(ss_transport *t, const void *buf, size_t len)
{
    tls_conn *c = t->impl;
    size_t done = 0;
    ERR_clear_error();
    c->want = 0;
    if (len == 0)
        return 0;
    if (SSL_write_ex(c->ssl, buf, len, &done) == 1)
        return (ssize_t)done;
    int rc = ssl_status(c, 0);
    return rc == 0 ? -EPIPE : rc;
}

static short tls_wait_events(ss_transport *t, short wanted)
{
    tls_conn *c = t->impl;
    return c->want ? c->want : wanted;
}

static int tls_shutdown_write(ss_transport *t)
{
    tls_conn *c = t->impl;
    ERR_clear_error();
    c->want = 0;
    int r = SSL_shutdown(c->ssl);
    if (r >= 0)
        return 0; /* close_notify sent (TLS 1.3 allows reading on after it) */
    return ssl_status(c, r);
}

static void tls_close(ss_transport *t)
{
    tls_conn *c = t->impl;
    if (c != NULL) {
        SSL_free(c->ssl);
        free(c);
    }
    if (t->fd >= 0)
        close(t->fd);
    t->fd = -1;
    t->impl = NULL;
}

static const ss_transport_ops tls_ops = {
    .name = "tls",
    .read = tls_read,
    .write = tls_write,
    .wait_events = tls_wait_events,
    .shutdown_write = tls_shutdown_write,
    .close = tls_close,
};

bool rcmd_tls_is_tls(const ss_transport *t)
{
    return t->ops == &tls_ops;
}

static int set_nonblocking(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return -errno;
    return 0;
}

int rcmd_tls_transport_new(ss_transport *t, rcmd_tls_ctx *ctx, int fd, ss_error *err)
{
    char r[256];
    int rc = set_nonblocking(fd);
    if (rc < 0)
        return fail(err, rc, "cannot make the connection non-blocking: %s", strerror(-rc));
    tls_conn *c = calloc(1, sizeof *c);
    if (c == NULL)
        return fail(err, -ENOMEM, "out of memory");
    c->ssl = SSL_new(ctx->ssl_ctx);
    BIO *bio = c->ssl ? BIO_new(ctx->bio_method) : NULL;
    if (bio == NULL) {
        SSL_free(c->ssl);
        free(c);
        return fail(err, SS_ETLS, "cannot start TLS: %s", ssl_reason(r, sizeof r));
    }
    BIO_set_data(bio, (void *)(intptr_t)fd);
    SSL_set_bio(c->ssl, bio, bio); /* the SSL owns the BIO now */
    if (ctx->server)
        SSL_set_accept_state(c->ssl);
    else
        SSL_set_connect_state(c->ssl);
    t->ops = &tls_ops;
    t->fd = fd;
    t->impl = c;
    return 0;
}

/* In PSK mode a finished handshake counts only if the external PSK was the
 * one used (OpenSSL marks that as a resumed session) and no certificate came
 * with it: the peer proved the key, nothing else will do. */
static int check_psk_used(SSL *ssl, ss_error *err)
{
    const rcmd_tls_ctx *ctx = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
    if (!ctx->psk)
        return 0;
    X509 *cert = SSL_get1_peer_certificate(ssl);
    bool reused = SSL_session_reused(ssl) == 1;
    X509_free(cert);
    if (!reused || cert != NULL)
        return fail(err, SS_EAUTH, "the peer did not prove the key (no PSK in the handshake)");
    return 0;
}

int rcmd_tls_handshake_step(ss_transport *t, ss_error *err)
{
    tls_conn *c = t->impl;
    char r[256];
    ERR_clear_error();
    c->want = 0;
    int ret = SSL_do_handshake(c->ssl);
    if (ret == 1)
        return check_psk_used(c->ssl, err);
    int e = SSL_get_error(c->ssl, ret);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        return ssl_status(c, ret);
    if (e == SSL_ERROR_SYSCALL) {
        int saved = errno;
        ERR_clear_error();
        if (saved == 0)
            return fail(err, SS_ECLOSED,
                        "the peer closed the connection during the TLS "
                        "handshake");
        return fail(err, -saved, "TLS handshake: %s", strerror(saved));
    }
    /* A protocol-level failure during the handshake is an authentication
     * failure as far as the user can act on it: wrong key or identity, or a
     * peer that is not an rcmd TLS peer at all. */
    return fail(err, SS_EAUTH, "TLS handshake failed: %s", ssl_reason(r, sizeof r));
}

int rcmd_transport_wait(ss_transport *t, short events, int64_t deadline_ms)
{
    for (;;) {
        struct pollfd p = {.fd = t->fd, .events = t->ops->wait_events(t, events)};
        int ms = -1;
        if (deadline_ms >= 0) {
            int64_t left = deadline_ms - rcmd_now_ms();
            if (left <= 0)
                return SS_ETIMEOUT;
            ms = left > INT32_MAX ? INT32_MAX : (int)left;
        }
        int n = poll(&p, 1, ms);
        if (n > 0)
            return 0;
        if (n < 0 && errno != EINTR)
            return -errno;
    }
}

int rcmd_tls_handshake(ss_transport *t, int64_t deadline_ms, ss_error *err)
{
    for (;;) {
        int rc = rcmd_tls_handshake_step(t, err);
        if (rc != -EAGAIN)
            return rc;
        rc = rcmd_transport_wait(t, POLLIN, deadline_ms);
        if (rc == SS_ETIMEOUT)
            return fail(err, rc, "TLS handshake timed out");
        if (rc < 0)
            return fail(err, rc, "TLS handshake: %s", strerror(-rc));
    }
}

int rcmd_transport_write_all(ss_transport *t, const void *buf, size_t len, int64_t deadline_ms)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = t->ops->write(t, p, len);
        if (n > 0) {
            p += n;
            len -= (size_t)n;
            continue;
        }
        if (n != -EAGAIN)
            return n == 0 ? -EPIPE : (int)n;
        int rc = rcmd_transport_wait(t, POLLOUT, deadline_ms);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* ---- plain transport (--insecure-no-auth) ----------------------------- */

/* The library's descriptor transport: the same contract, nothing of our own. */
int rcmd_plain_transport_init(ss_transport *t, int fd)
{
    return ss_transport_fd_init(t, fd);
}
