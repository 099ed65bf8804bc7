/* SPDX-License-Identifier: MIT */
/*
 * tls.c — rcmd's TLS policy on top of the library's TLS transport (src/tls.c):
 * TLS 1.3 only, an external PSK from the key file (or mutual certificates),
 * no tickets, no resumption, no early data, and the rule that a PSK peer
 * must have used the key. The record layer, the socket BIO and the
 * non-blocking handshake are the library's; this file only makes the
 * SSL_CTX and judges the finished handshake.
 */
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
    ss_tls_ctx *lib; /* the library's context around our SSL_CTX */
    bool server;
    bool psk;
    rcmd_key key;
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

/* ---- context ---------------------------------------------------------- */

static int load_certs(SSL_CTX *x, const rcmd_tls_config *cfg, ss_error *err)
{
    char r[256];
    if (cfg->cert_file == NULL || cfg->cert_key_file == NULL || cfg->ca_file == NULL)
        return fail(err, SS_EUSAGE,
                    "certificate mode needs a certificate, its key and a "
                    "CA file");
    int rc = rcmd_check_private_file(cfg->cert_key_file, "private key", err);
    if (rc < 0)
        return rc;
    if (SSL_CTX_use_certificate_chain_file(x, cfg->cert_file) != 1)
        return fail(err, SS_ETLS, "cannot load certificate '%s': %s", cfg->cert_file,
                    ssl_reason(r, sizeof r));
    if (SSL_CTX_use_PrivateKey_file(x, cfg->cert_key_file, SSL_FILETYPE_PEM) != 1)
        return fail(err, SS_ETLS, "cannot load private key '%s': %s", cfg->cert_key_file,
                    ssl_reason(r, sizeof r));
    if (SSL_CTX_check_private_key(x) != 1)
        return fail(err, SS_ETLS, "private key '%s' does not match certificate '%s'",
                    cfg->cert_key_file, cfg->cert_file);
    if (SSL_CTX_load_verify_locations(x, cfg->ca_file, NULL) != 1)
        return fail(err, SS_ETLS, "cannot load CA file '%s': %s", cfg->ca_file,
                    ssl_reason(r, sizeof r));
    SSL_CTX_set_verify(x, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
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
    SSL_CTX *x = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
    if (x == NULL) {
        free(c);
        return fail(err, SS_ETLS, "cannot make a TLS context: %s", ssl_reason(r, sizeof r));
    }
    SSL_CTX_set_app_data(x, c); /* the PSK callbacks find the key here */
    int rc = 0;
    if ((SSL_CTX_set_min_proto_version(x, TLS1_3_VERSION) != 1 ||
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
        rc = load_certs(x, cfg, err);
    }
    if (rc == 0)
        rc = ss_tls_ctx_adopt(&c->lib, server, x, err); /* takes its own reference */
    SSL_CTX_free(x);
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
    ss_tls_ctx_free(ctx->lib);
    rcmd_key_wipe(&ctx->key);
    free(ctx);
}

SSL_CTX *rcmd_tls_ctx_ssl_ctx(rcmd_tls_ctx *ctx)
{
    return ss_tls_ctx_ssl_ctx(ctx->lib);
}

/* ---- transport: the library's ------------------------------------------ */

bool rcmd_tls_is_tls(const ss_transport *t)
{
    return ss_transport_is_tls(t);
}

int rcmd_tls_transport_new(ss_transport *t, rcmd_tls_ctx *ctx, int fd, ss_error *err)
{
    /* No server name: rcmd's certificate mode checks the chain against its
     * own CA file only, and PSK mode has no certificate at all. */
    return ss_tls_transport_new(t, ctx->lib, fd, NULL, err);
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
    int rc = ss_tls_handshake_step(t, err);
    if (rc == 0)
        return check_psk_used(ss_tls_ssl(t), err);
    /* A protocol-level failure during the handshake is an authentication
     * failure as far as the user can act on it: wrong key or identity, or a
     * peer that is not an rcmd TLS peer at all. */
    if (rc == SS_ETLS && err != NULL)
        err->code = SS_EAUTH;
    return rc == SS_ETLS ? SS_EAUTH : rc;
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
        int n = ss_poll(&p, 1, ms);
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
