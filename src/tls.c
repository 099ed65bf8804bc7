/* SPDX-License-Identifier: MIT */
/*
 * tls.c — TLS over OpenSSL 3 as an ss_transport: contexts (certificates,
 * peer verification, resumption, reload) and the per-connection state.
 *
 * Shape (Redis's connection types, HAProxy's ssl_sock): the transport never
 * blocks; SSL_ERROR_WANT_READ/WRITE become -EAGAIN plus what to poll for
 * (wait_events), so the same object serves a blocking stream (stream.c
 * waits in poll) and an event loop (event_conn.c waits in epoll).
 *
 * The socket BIO is ours: OpenSSL's writes with write(2), which raises
 * SIGPIPE on a vanished peer; ours sends with MSG_NOSIGNAL, so no user of
 * the library has to ignore SIGPIPE. Its method table is made once per
 * process and never changes (pthread_once), the one piece of process-wide
 * state here, immutable after it is made.
 *
 * Reload: the files are read into memory (tls_material.c) and the SSL_CTX
 * is built from those bytes outside any lock; the swap holds a mutex only
 * for the swap and for SSL_new. Connections keep the SSL_CTX they were made
 * from (OpenSSL counts references). The reloading process also publishes
 * the bytes in a shared mapping made before any fork: a prefork worker
 * sees the generation change at its next connection and builds from those
 * bytes, so it serves what the parent last loaded successfully, never a
 * file that has gone bad since.
 *
 * Several certificate/key pairs (ss_tls_ctx_add_cert): the first is the
 * SSL_CTX's own; a certificate callback picks another whose names cover
 * the client's SNI.
 */
#include "internal.h"
#include "tls_material.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <unistd.h>

#define SESSION_ID_CONTEXT "sockserve"
#define TICKET_KEYS_LEN 80 /* OpenSSL's name + HMAC + AES keys */

struct ss_tls_ctx {
    pthread_mutex_t lock;        /* guards cur and session (held briefly) */
    pthread_mutex_t config_lock; /* serialises builds: names, reload, catch-up */
    SSL_CTX *cur;
    bool server;
    bool adopted; /* made by the caller: nothing to reload */
    tls_names names; /* the files (names.cert[0] is ss_tls_opts.cert_file) */
    ss_tls_opts opts; /* the flags of the options (file names above) */
    SSL_SESSION *session; /* client: a copy of the latest resumable session */
    char session_name[256]; /* the server name it was made for ("" = none) */
    tls_shared *shared; /* server: what the latest reload loaded, shared across fork */
    bool shared_reader; /* a forked process: reads `shared`, never writes it */
    _Atomic uint64_t local_gen; /* the generation of cur in this process */
};

/* Per-connection state behind ss_transport.impl. */
typedef struct tls_conn {
    SSL *ssl;
    short want; /* what the last -EAGAIN waits for */
} tls_conn;

/* ---- the socket BIO --------------------------------------------------------- */

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
            errno = 0; /* end of file: SSL_ERROR_SYSCALL (or ZERO_RETURN) */
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
    return cmd == BIO_CTRL_FLUSH ? 1 : 0; /* nothing is buffered here */
}

static int sock_bio_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

static BIO_METHOD *bio_method;
static pthread_once_t bio_once = PTHREAD_ONCE_INIT;

static void bio_method_make(void)
{
    BIO_METHOD *m = BIO_meth_new(BIO_TYPE_SOURCE_SINK | BIO_get_new_index(), "sockserve-socket");
    if (m == NULL)
        return;
    if (!BIO_meth_set_write_ex(m, sock_bio_write) || !BIO_meth_set_read_ex(m, sock_bio_read) ||
        !BIO_meth_set_ctrl(m, sock_bio_ctrl) || !BIO_meth_set_create(m, sock_bio_create)) {
        BIO_meth_free(m);
        return;
    }
    bio_method = m;
}

static BIO_METHOD *socket_bio_method(void)
{
    pthread_once(&bio_once, bio_method_make);
    return bio_method;
}

/* ---- contexts ---------------------------------------------------------------- */

/* Client: keep a private copy of the newest session for the next
 * connections (one server per client context is the common case; a
 * session for another name is not offered, see offer_session).
 *
 * A copy, never the object OpenSSL hands us: that one is the connection's
 * own s->session, and OpenSSL marks a connection's session not resumable
 * when the handshake ends with TLS 1.3 ("use a ticket once": the client
 * cache removes it), on a fatal alert, or when the SSL is freed without
 * close_notify. Kept shared, one resumed connection of a burst would
 * poison the session for every connection started after it (the burst
 * then resumed 1 of 20). The copy belongs to no SSL, so nothing marks it;
 * each connection offers a copy of its own (offer_session). */
static int client_new_session(SSL *ssl, SSL_SESSION *sess)
{
    ss_tls_ctx *c = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
    if (c == NULL || !SSL_SESSION_is_resumable(sess))
        return 0;
    SSL_SESSION *mine = SSL_SESSION_dup(sess);
    if (mine == NULL)
        return 0; /* out of memory: the next connection does a full handshake */
    const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    pthread_mutex_lock(&c->lock);
    SSL_SESSION *old = c->session;
    c->session = mine;
    snprintf(c->session_name, sizeof c->session_name, "%s", name != NULL ? name : "");
    pthread_mutex_unlock(&c->lock);
    SSL_SESSION_free(old);
    return 0; /* OpenSSL keeps (and frees) its own reference */
}

/* ---- certificate selection by SNI -------------------------------------------- */

/* The pairs of a server context with more than one, owned by its SSL_CTX
 * (ex_data, freed with it): connections made from an SSL_CTX keep it. */
typedef struct cert_set {
    size_t n;
    tls_pair pair[TLS_MAX_CERTS];
} cert_set;

static int cert_set_index = -1;
static pthread_once_t cert_set_once = PTHREAD_ONCE_INIT;

static void cert_set_free(cert_set *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->n; i++)
        tls_pair_free(&s->pair[i]);
    free(s);
}

static void cert_set_ex_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
                             void *argp)
{
    (void)parent;
    (void)ad;
    (void)idx;
    (void)argl;
    (void)argp;
    cert_set_free(ptr);
}

static void cert_set_index_make(void)
{
    cert_set_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, cert_set_ex_free);
}

/* After the ClientHello: the first pair whose certificate covers the SNI
 * (its SAN DNS names, wildcards as a browser matches them); no SNI, or no
 * match, keeps the first pair, already the SSL_CTX's. */
static int select_cert(SSL *ssl, void *arg)
{
    const cert_set *s = arg;
    const char *sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    if (sni == NULL || s == NULL)
        return 1;
    size_t len = strlen(sni);
    if (X509_check_host(s->pair[0].cert, sni, len, 0, NULL) == 1)
        return 1;
    for (size_t i = 1; i < s->n; i++)
        if (X509_check_host(s->pair[i].cert, sni, len, 0, NULL) == 1)
            return SSL_use_cert_and_key(ssl, s->pair[i].cert, s->pair[i].key, s->pair[i].chain,
                                        1) == 1;
    return 1;
}

/* ---- building and reloading ------------------------------------------------------ */

/* Load the pairs of `m` into `x`: the first is the SSL_CTX's own, and a
 * server with more selects among them by SNI. */
static int load_pairs(ss_tls_ctx *c, SSL_CTX *x, const tls_material *m, ss_error *err)
{
    char r[256];
    if (m->ncerts == 0)
        return 0;
    cert_set *s = calloc(1, sizeof *s);
    if (s == NULL)
        return ss__fail(err, -ENOMEM, "out of memory");
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < m->ncerts; i++) {
        const char *cn = i < c->names.ncerts ? c->names.cert[i] : "(shared)";
        const char *kn = i < c->names.ncerts ? c->names.key[i] : "(shared)";
        rc = tls_pair_load(&s->pair[i], &m->cert[i], &m->key[i], cn, kn, err);
        if (rc == 0)
            s->n = i + 1;
    }
    if (rc == 0 && SSL_CTX_use_cert_and_key(x, s->pair[0].cert, s->pair[0].key,
                                            s->pair[0].chain, 1) != 1)
        rc = ss__fail(err, SS_ETLS, "cannot use certificate '%s': %s", c->names.cert[0],
                      ss__tls_reason(r, sizeof r));
    if (rc == 0 && c->server && s->n > 1) {
        pthread_once(&cert_set_once, cert_set_index_make);
        if (cert_set_index < 0 || SSL_CTX_set_ex_data(x, cert_set_index, s) != 1) {
            rc = ss__fail(err, SS_ETLS, "cannot keep the certificates: %s",
                          ss__tls_reason(r, sizeof r));
        } else {
            SSL_CTX_set_cert_cb(x, select_cert, s);
            s = NULL; /* x owns it now */
        }
    }
    cert_set_free(s); /* one pair: the SSL_CTX holds its own references */
    return rc;
}

/* Build an SSL_CTX from the bytes of `m` (the files named in `c`, read by
 * this process or published by the one that reloaded). */
static int build(ss_tls_ctx *c, const tls_material *m, SSL_CTX **out, ss_error *err)
{
    char r[256];
    *out = NULL;
    SSL_CTX *x = SSL_CTX_new(c->server ? TLS_server_method() : TLS_client_method());
    if (x == NULL)
        return ss__fail(err, SS_ETLS, "cannot make a TLS context: %s", ss__tls_reason(r, sizeof r));
    int floor = c->opts.min_version == SS_TLS_1_3 ? TLS1_3_VERSION : TLS1_2_VERSION;
    int rc = 0;
    if (SSL_CTX_set_min_proto_version(x, floor) != 1)
        rc = ss__fail(err, SS_ETLS, "cannot set the TLS floor: %s", ss__tls_reason(r, sizeof r));
    /* A peer that closes without close_notify reads as end of file: what a
     * socket does. Protocols that must detect truncation frame their data.
     * No renegotiation: it is a CPU lever for a hostile client. Idle
     * connections give their buffers back (the event model holds many). */
    SSL_CTX_set_options(x, SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_mode(x, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                            SSL_MODE_RELEASE_BUFFERS);
    if (rc == 0)
        rc = load_pairs(c, x, m, err);
    if (rc == 0 && c->names.ca != NULL)
        rc = tls_ca_load(x, &m->ca, c->names.ca, c->server, err);
    if (rc == 0 && c->server) {
        SSL_CTX_set_session_id_context(x, (const unsigned char *)SESSION_ID_CONTEXT,
                                       sizeof SESSION_ID_CONTEXT - 1);
        if (c->names.ca != NULL)
            SSL_CTX_set_verify(x, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
        /* Stateless tickets only, no server-side cache: a ticket works in
         * every process of a forking or prefork server (they share the
         * keys, made before the fork), a per-process cache would not, and
         * tickets cost the server no memory. */
        SSL_CTX_set_session_cache_mode(x, SSL_SESS_CACHE_OFF);
        if (c->opts.no_resumption) {
            SSL_CTX_set_options(x, SSL_OP_NO_TICKET);
            SSL_CTX_set_num_tickets(x, 0);
        }
        SSL_CTX_set_max_early_data(x, 0); /* 0-RTT data can be replayed */
    }
    if (rc == 0 && !c->server) {
        if (c->names.ca == NULL && SSL_CTX_set_default_verify_paths(x) != 1)
            rc = ss__fail(err, SS_ETLS, "cannot load the system CAs: %s",
                          ss__tls_reason(r, sizeof r));
        SSL_CTX_set_verify(x, c->opts.insecure_no_verify ? SSL_VERIFY_NONE : SSL_VERIFY_PEER, NULL);
        if (!c->opts.no_resumption) {
            SSL_CTX_set_session_cache_mode(x, SSL_SESS_CACHE_CLIENT |
                                                  SSL_SESS_CACHE_NO_INTERNAL_STORE);
            SSL_CTX_sess_set_new_cb(x, client_new_session);
        }
    }
    if (rc < 0) {
        SSL_CTX_free(x);
        return rc;
    }
    SSL_CTX_set_app_data(x, c);
    *out = x;
    return 0;
}

/* Read the files now and build from them; `m` keeps the bytes (to publish). */
static int build_from_files(ss_tls_ctx *c, tls_material *m, SSL_CTX **out, ss_error *err)
{
    int rc = tls_material_read(m, &c->names, err);
    if (rc == 0)
        rc = build(c, m, out, err);
    if (rc < 0)
        tls_material_free(m);
    return rc;
}

static char *dup_or_null(const char *s, bool *oom)
{
    if (s == NULL)
        return NULL;
    char *d = strdup(s);
    if (d == NULL)
        *oom = true;
    return d;
}

static int ctx_alloc(ss_tls_ctx **out, bool server, bool reloadable, ss_error *err)
{
    ss_tls_ctx *c = calloc(1, sizeof *c);
    if (c == NULL)
        return ss__fail(err, -ENOMEM, "out of memory");
    /* Made now, before any fork: the processes of a forking or prefork
     * server share it with the one that reloads. */
    if (server && reloadable) {
        int rc = tls_shared_new(&c->shared, err);
        if (rc < 0) {
            free(c);
            return rc;
        }
    }
    atomic_init(&c->local_gen, 0);
    pthread_mutex_init(&c->lock, NULL);
    pthread_mutex_init(&c->config_lock, NULL);
    c->server = server;
    *out = c;
    return 0;
}

int ss_tls_ctx_new(ss_tls_ctx **out, bool server, const ss_tls_opts *opts, ss_error *err)
{
    *out = NULL;
    ss_tls_opts none = {0};
    const ss_tls_opts *o = opts != NULL ? opts : &none;
    if (o->min_version != 0 && o->min_version != SS_TLS_1_2 && o->min_version != SS_TLS_1_3)
        return ss__fail(err, SS_EUSAGE, "TLS minimum version must be 1.2 or 1.3");
    if ((o->cert_file == NULL) != (o->key_file == NULL))
        return ss__fail(err, SS_EUSAGE, "a TLS certificate needs its key, and a key its certificate");
    if (server && o->cert_file == NULL)
        return ss__fail(err, SS_EUSAGE, "a TLS server needs a certificate and its key");
    if (socket_bio_method() == NULL)
        return ss__fail(err, SS_ETLS, "cannot make the TLS socket BIO");
    ss_tls_ctx *c = NULL;
    int rc = ctx_alloc(&c, server, true, err);
    if (rc < 0)
        return rc;
    bool oom = false;
    c->opts = *o;
    if (o->cert_file != NULL) {
        c->names.ncerts = 1;
        c->names.cert[0] = dup_or_null(o->cert_file, &oom);
        c->names.key[0] = dup_or_null(o->key_file, &oom);
    }
    c->names.ca = dup_or_null(o->ca_file, &oom);
    c->opts.cert_file = c->opts.key_file = c->opts.ca_file = NULL;
    tls_material m;
    rc = oom ? ss__fail(err, -ENOMEM, "out of memory") : build_from_files(c, &m, &c->cur, err);
    if (rc < 0) {
        ss_tls_ctx_free(c);
        return rc;
    }
    tls_material_free(&m); /* generation 0: every process has this one */
    *out = c;
    return 0;
}

int ss_tls_ctx_adopt(ss_tls_ctx **out, bool server, void *ssl_ctx, ss_error *err)
{
    *out = NULL;
    if (ssl_ctx == NULL)
        return ss__fail(err, SS_EUSAGE, "no SSL_CTX to adopt");
    if (socket_bio_method() == NULL)
        return ss__fail(err, SS_ETLS, "cannot make the TLS socket BIO");
    ss_tls_ctx *c = NULL;
    int rc = ctx_alloc(&c, server, false, err);
    if (rc < 0)
        return rc;
    SSL_CTX_up_ref(ssl_ctx);
    c->cur = ssl_ctx;
    c->adopted = true;
    *out = c;
    return 0;
}

/* Swap in `x` (holding the lock); the old context is returned to be freed
 * outside it. Ticket keys move across, so tickets issued before stay good. */
static SSL_CTX *swap_locked(ss_tls_ctx *c, SSL_CTX *x)
{
    SSL_CTX *old = c->cur;
    if (c->server && old != NULL) {
        unsigned char keys[TICKET_KEYS_LEN];
        if (SSL_CTX_get_tlsext_ticket_keys(old, keys, sizeof keys) == 1)
            SSL_CTX_set_tlsext_ticket_keys(x, keys, sizeof keys);
        OPENSSL_cleanse(keys, sizeof keys);
    }
    c->cur = x;
    return old;
}

static void retire(SSL_CTX *old)
{
    if (old == NULL)
        return;
    SSL_CTX_set_app_data(old, NULL); /* connections still on it outlive c */
    SSL_CTX_free(old);
}

/* Read the files, build, publish the bytes to the processes forked before
 * (a server), swap. Holding config_lock. On failure nothing changes. */
static int rebuild_locked(ss_tls_ctx *c, ss_error *err)
{
    tls_material m;
    SSL_CTX *x;
    int rc = build_from_files(c, &m, &x, err);
    if (rc < 0)
        return rc;
    uint64_t gen = 0;
    /* A forked process's own reload stays its own, until the next one the
     * parent publishes. */
    if (c->shared_reader)
        gen = tls_shared_generation(c->shared);
    else if (c->shared != NULL && (rc = tls_shared_publish(c->shared, &m, &gen, err)) < 0) {
        tls_material_free(&m);
        SSL_CTX_free(x);
        return rc;
    }
    tls_material_free(&m);
    pthread_mutex_lock(&c->lock);
    SSL_CTX *old = swap_locked(c, x);
    pthread_mutex_unlock(&c->lock);
    atomic_store(&c->local_gen, gen);
    retire(old);
    return 0;
}

int ss_tls_ctx_reload(ss_tls_ctx *ctx, ss_error *err)
{
    if (ctx->adopted)
        return ss__fail(err, SS_EUNSUPPORTED, "an adopted TLS context cannot reload");
    pthread_mutex_lock(&ctx->config_lock);
    int rc = rebuild_locked(ctx, err);
    pthread_mutex_unlock(&ctx->config_lock);
    return rc;
}

int ss_tls_ctx_add_cert(ss_tls_ctx *ctx, const char *cert_file, const char *key_file,
                        ss_error *err)
{
    if (ctx == NULL || !ctx->server || ctx->adopted)
        return ss__fail(err, SS_EUSAGE, "certificates are added to a server context of its own");
    if (cert_file == NULL || key_file == NULL)
        return ss__fail(err, SS_EUSAGE, "a TLS certificate needs its key, and a key its certificate");
    pthread_mutex_lock(&ctx->config_lock);
    size_t i = ctx->names.ncerts;
    int rc = 0;
    if (i >= TLS_MAX_CERTS)
        rc = ss__fail(err, SS_EUSAGE, "at most %d certificates in a TLS context", TLS_MAX_CERTS);
    if (rc == 0) {
        ctx->names.cert[i] = strdup(cert_file);
        ctx->names.key[i] = strdup(key_file);
        ctx->names.ncerts = i + 1;
        rc = ctx->names.cert[i] == NULL || ctx->names.key[i] == NULL
                 ? ss__fail(err, -ENOMEM, "out of memory")
                 : rebuild_locked(ctx, err);
        if (rc < 0) {
            free(ctx->names.cert[i]);
            free(ctx->names.key[i]);
            ctx->names.cert[i] = ctx->names.key[i] = NULL;
            ctx->names.ncerts = i;
        }
    }
    pthread_mutex_unlock(&ctx->config_lock);
    return rc;
}

/* A process forked before the latest reload (or added certificate) builds
 * from the bytes the reloading process published, never from the files: it
 * serves what that process last loaded successfully. A writer caught in the
 * middle, or a failure here (memory), leaves it as it is until its next
 * connection. */
static void catch_up(ss_tls_ctx *c)
{
    if (c->shared == NULL)
        return;
    uint64_t gen = tls_shared_generation(c->shared);
    if (gen == atomic_load(&c->local_gen))
        return; /* the common case: one atomic load */
    pthread_mutex_lock(&c->config_lock);
    tls_material m;
    SSL_CTX *x = NULL;
    if (gen != atomic_load(&c->local_gen) && tls_shared_fetch(c->shared, &m, &gen) == 0) {
        if (build(c, &m, &x, NULL) == 0) {
            pthread_mutex_lock(&c->lock);
            SSL_CTX *old = swap_locked(c, x);
            pthread_mutex_unlock(&c->lock);
            atomic_store(&c->local_gen, gen);
            retire(old);
        }
        tls_material_free(&m);
    }
    pthread_mutex_unlock(&c->config_lock);
}

void ss__tls_ctx_after_fork(ss_tls_ctx *ctx)
{
    /* Another thread of the parent may have held a lock at fork(). */
    if (ctx != NULL) {
        pthread_mutex_init(&ctx->lock, NULL);
        pthread_mutex_init(&ctx->config_lock, NULL);
        if (ctx->shared != NULL && !ctx->shared_reader) {
            ctx->shared_reader = true;
            tls_shared_make_readonly(ctx->shared);
        }
    }
}

void ss_tls_ctx_free(ss_tls_ctx *ctx)
{
    if (ctx == NULL)
        return;
    if (ctx->adopted)
        SSL_CTX_free(ctx->cur);
    else
        retire(ctx->cur);
    SSL_SESSION_free(ctx->session);
    tls_shared_free(ctx->shared, !ctx->shared_reader);
    pthread_mutex_destroy(&ctx->lock);
    pthread_mutex_destroy(&ctx->config_lock);
    for (size_t i = 0; i < ctx->names.ncerts; i++) {
        free(ctx->names.cert[i]);
        free(ctx->names.key[i]);
    }
    free(ctx->names.ca);
    free(ctx);
}

void *ss_tls_ctx_ssl_ctx(ss_tls_ctx *ctx)
{
    pthread_mutex_lock(&ctx->lock);
    SSL_CTX *x = ctx->cur;
    pthread_mutex_unlock(&ctx->lock);
    return x;
}

/* ---- the transport -------------------------------------------------------------- */

/* Map SSL_get_error; -EAGAIN remembers what to wait for. */
static int ssl_status(tls_conn *c, int ret)
{
    switch (SSL_get_error(c->ssl, ret)) {
    case SSL_ERROR_WANT_READ: c->want = POLLIN; return -EAGAIN;
    case SSL_ERROR_WANT_WRITE: c->want = POLLOUT; return -EAGAIN;
    case SSL_ERROR_ZERO_RETURN: return 0;
    case SSL_ERROR_SYSCALL: {
        int saved = errno;
        ERR_clear_error();
        return saved != 0 ? -saved : SS_ECLOSED;
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
    return rc == SS_ECLOSED ? 0 : rc;
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
    return rc == 0 || rc == SS_ECLOSED ? -EPIPE : rc;
}

static short tls_wait_events(ss_transport *t, short wanted)
{
    tls_conn *c = t->impl;
    return c->want != 0 ? c->want : wanted;
}

/* close_notify, then the socket's own half-close, so a peer reading until
 * end of file sees it whatever its TLS library does with the alert. */
static int tls_shutdown_write(ss_transport *t)
{
    tls_conn *c = t->impl;
    ERR_clear_error();
    c->want = 0;
    int r = SSL_shutdown(c->ssl);
    if (r < 0) {
        int rc = ssl_status(c, r);
        if (rc == -EAGAIN)
            return rc;
    }
    if (shutdown(t->fd, SHUT_WR) < 0)
        return -errno;
    return 0;
}

static void tls_free_state(ss_transport *t)
{
    tls_conn *c = t->impl;
    if (c != NULL) {
        SSL_free(c->ssl);
        free(c);
    }
    t->impl = NULL;
}

static void tls_close(ss_transport *t)
{
    /* close_notify, one try: it never waits. It also keeps the session
     * resumable: OpenSSL drops the session of a connection freed without
     * it, as it would one that failed. */
    tls_conn *c = t->impl;
    if (c != NULL && SSL_is_init_finished(c->ssl) && !(SSL_get_shutdown(c->ssl) & SSL_SENT_SHUTDOWN)) {
        ERR_clear_error();
        (void)SSL_shutdown(c->ssl);
        ERR_clear_error();
    }
    tls_free_state(t);
    if (t->fd >= 0)
        close(t->fd); /* no retry on EINTR: Linux has freed the number */
    t->fd = -1;
}

static const ss_transport_ops tls_ops = {
    .name = "tls",
    .read = tls_read,
    .write = tls_write,
    .wait_events = tls_wait_events,
    .shutdown_write = tls_shutdown_write,
    .close = tls_close,
};

bool ss_transport_is_tls(const ss_transport *t)
{
    return t != NULL && t->ops == &tls_ops;
}

void *ss_tls_ssl(const ss_transport *t)
{
    return ss_transport_is_tls(t) && t->impl != NULL ? ((tls_conn *)t->impl)->ssl : NULL;
}

void ss_tls_transport_release(ss_transport *t)
{
    if (!ss_transport_is_tls(t))
        return;
    tls_free_state(t); /* SSL_free sends nothing: no shutdown was asked */
    t->ops = NULL;
    t->fd = -1;
}

static bool is_ip_literal(const char *name)
{
    unsigned char buf[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, name, buf) == 1 || inet_pton(AF_INET6, name, buf) == 1;
}

/* Client: SNI and the name to verify; an IP literal is verified against
 * the certificate's IP entries and not sent as SNI (RFC 6066). */
static int set_peer_name(SSL *ssl, const char *name, ss_error *err)
{
    if (name == NULL)
        return 0;
    /* "" would verify no name at all: a caller's unset variable must not
     * turn verification off */
    if (name[0] == '\0')
        return ss__fail(err, SS_EUSAGE, "empty TLS server name (NULL means the address's host)");
    if (strlen(name) > 253)
        return ss__fail(err, SS_EUSAGE, "TLS server name too long");
    if (is_ip_literal(name)) {
        if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name) != 1)
            return ss__fail(err, SS_ETLS, "cannot verify IP address '%s'", name);
        return 0;
    }
    if (SSL_set_tlsext_host_name(ssl, name) != 1 || SSL_set1_host(ssl, name) != 1)
        return ss__fail(err, SS_ETLS, "cannot set the TLS server name '%s'", name);
    return 0;
}

/* Client: offer a copy of the context's latest session if it was made for
 * this name (an IP literal is sent as no name). The copy is the
 * connection's to spoil (see client_new_session); the server accepts one
 * stateless ticket any number of times (no 0-RTT, so no anti-replay). */
static void offer_session(ss_tls_ctx *c, SSL *ssl, const char *name)
{
    const char *sni = name != NULL && !is_ip_literal(name) ? name : "";
    SSL_SESSION *latest = NULL;
    pthread_mutex_lock(&c->lock);
    if (c->session != NULL && strcmp(c->session_name, sni) == 0 && SSL_SESSION_up_ref(c->session))
        latest = c->session;
    pthread_mutex_unlock(&c->lock);
    if (latest == NULL)
        return;
    SSL_SESSION *copy = SSL_SESSION_dup(latest);
    SSL_SESSION_free(latest);
    if (copy != NULL) {
        SSL_set_session(ssl, copy); /* takes its own reference */
        SSL_SESSION_free(copy);
    }
}

int ss_tls_transport_new(ss_transport *t, ss_tls_ctx *ctx, int fd, const char *server_name,
                         ss_error *err)
{
    char r[256];
    if (ctx == NULL || fd < 0)
        return ss__fail(err, SS_EUSAGE, "TLS transport: no context or descriptor");
    int rc = ss__set_nonblocking(fd, 1);
    if (rc < 0)
        return ss__fail(err, rc, "cannot make the connection non-blocking: %s", ss_strerror(rc));
    /* A handshake flight is several records, each its own send: with Nagle
     * the later ones wait for an ACK the peer delays (40 ms a handshake).
     * Not a socket option error worth failing for (unix sockets have none). */
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (ctx->server && !ctx->adopted)
        catch_up(ctx);
    tls_conn *c = calloc(1, sizeof *c);
    if (c == NULL)
        return ss__fail(err, -ENOMEM, "out of memory");
    pthread_mutex_lock(&ctx->lock);
    c->ssl = SSL_new(ctx->cur);
    pthread_mutex_unlock(&ctx->lock);
    BIO *bio = c->ssl != NULL ? BIO_new(socket_bio_method()) : NULL;
    if (bio == NULL) {
        SSL_free(c->ssl);
        free(c);
        return ss__fail(err, SS_ETLS, "cannot start TLS: %s", ss__tls_reason(r, sizeof r));
    }
    BIO_set_data(bio, (void *)(intptr_t)fd);
    SSL_set_bio(c->ssl, bio, bio); /* the SSL owns the BIO now */
    if (ctx->server) {
        SSL_set_accept_state(c->ssl);
    } else {
        rc = set_peer_name(c->ssl, server_name, err);
        if (rc < 0) {
            SSL_free(c->ssl);
            free(c);
            return rc;
        }
        SSL_set_connect_state(c->ssl);
        if (!ctx->opts.no_resumption && !ctx->adopted)
            offer_session(ctx, c->ssl, server_name);
    }
    t->ops = &tls_ops;
    t->fd = fd;
    t->impl = c;
    return 0;
}

/* Why a handshake failed, in the words a user can act on. */
static int handshake_failure(tls_conn *c, ss_error *err)
{
    char r[256];
    long v = SSL_get_verify_result(c->ssl);
    unsigned long e = ERR_peek_error();
    if (v != X509_V_OK) {
        ERR_clear_error();
        return ss__fail(err, SS_EAUTH, "certificate verify failed: %s",
                        X509_verify_cert_error_string(v));
    }
    bool auth = ERR_GET_LIB(e) == ERR_LIB_SSL &&
                (ERR_GET_REASON(e) == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE ||
                 ERR_GET_REASON(e) == SSL_R_CERTIFICATE_VERIFY_FAILED ||
                 ERR_GET_REASON(e) == SSL_R_TLSV1_ALERT_UNKNOWN_CA ||
                 ERR_GET_REASON(e) == SSL_R_SSLV3_ALERT_BAD_CERTIFICATE ||
                 ERR_GET_REASON(e) == SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED ||
                 ERR_GET_REASON(e) == SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED);
    return ss__fail(err, auth ? SS_EAUTH : SS_ETLS, "TLS handshake failed: %s",
                    ss__tls_reason(r, sizeof r));
}

int ss_tls_handshake_step(ss_transport *t, ss_error *err)
{
    if (!ss_transport_is_tls(t))
        return ss__fail(err, SS_EUSAGE, "not a TLS transport");
    tls_conn *c = t->impl;
    ERR_clear_error();
    c->want = 0;
    int ret = SSL_do_handshake(c->ssl);
    if (ret == 1)
        return 0;
    int e = SSL_get_error(c->ssl, ret);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        return ssl_status(c, ret);
    if (e == SSL_ERROR_SYSCALL || e == SSL_ERROR_ZERO_RETURN) {
        int saved = e == SSL_ERROR_SYSCALL ? errno : 0;
        if (ERR_peek_error() != 0)
            return handshake_failure(c, err);
        if (saved == 0)
            return ss__fail(err, SS_ECLOSED, "the peer closed during the TLS handshake");
        return ss__fail(err, -saved, "TLS handshake: %s", strerror(saved));
    }
    return handshake_failure(c, err);
}

int ss_tls_handshake(ss_transport *t, double timeout, ss_error *err)
{
    int64_t deadline = ss__deadline(timeout);
    for (;;) {
        int rc = ss_tls_handshake_step(t, err);
        if (rc != -EAGAIN)
            return rc;
        rc = ss__wait_fd(t->fd, t->ops->wait_events(t, POLLIN), deadline);
        if (rc == SS_ETIMEOUT)
            return ss__fail(err, rc, "TLS handshake timed out");
        if (rc < 0)
            return ss__fail(err, rc, "TLS handshake: %s", ss_strerror(rc));
    }
}

int ss_tls_info_get(const ss_transport *t, ss_tls_info *out)
{
    memset(out, 0, sizeof *out);
    SSL *ssl = ss_tls_ssl(t);
    if (ssl == NULL)
        return SS_EUSAGE;
    snprintf(out->version, sizeof out->version, "%s", SSL_get_version(ssl));
    const SSL_CIPHER *cipher = SSL_get_current_cipher(ssl);
    if (cipher != NULL)
        snprintf(out->cipher, sizeof out->cipher, "%s", SSL_CIPHER_get_name(cipher));
    const char *sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    if (sni != NULL && SSL_is_server(ssl))
        snprintf(out->server_name, sizeof out->server_name, "%s", sni);
    X509 *peer = SSL_get0_peer_certificate(ssl);
    if (peer != NULL) {
        X509_NAME_oneline(X509_get_subject_name(peer), out->peer_subject,
                          (int)sizeof out->peer_subject);
        out->peer_verified = SSL_get_verify_result(ssl) == X509_V_OK &&
                             (SSL_get_verify_mode(ssl) & SSL_VERIFY_PEER) != 0;
    }
    out->resumed = SSL_session_reused(ssl) == 1;
    return 0;
}

/* The host part of an address, for SNI: "tcp://h:1" -> "h", "[::1]:1" ->
 * "::1"; nothing for unix addresses. */
static void host_of(const char *address, char *buf, size_t len)
{
    buf[0] = '\0';
    const char *p = strstr(address, "://");
    if (p != NULL) {
        if (strncasecmp(address, "tcp", 3) != 0 || p != address + 3)
            return; /* tls only over tcp and unix; a unix path has no host */
        p += 3;
    } else if (strncasecmp(address, "unix:", 5) == 0 || strchr(address, ':') == NULL) {
        return;
    } else {
        p = address;
    }
    const char *end;
    if (*p == '[') {
        p++;
        end = strchr(p, ']');
        const char *pct = end != NULL ? memchr(p, '%', (size_t)(end - p)) : NULL;
        if (pct != NULL)
            end = pct;
    } else {
        end = strrchr(p, ':');
    }
    if (end == NULL || end == p || (size_t)(end - p) >= len)
        return;
    memcpy(buf, p, (size_t)(end - p));
    buf[end - p] = '\0';
}

int ss_tls_dial(ss_transport *t, const char *address, ss_tls_ctx *ctx, const char *server_name,
                double timeout, ss_error *err)
{
    t->ops = NULL;
    t->fd = -1;
    t->impl = NULL;
    if (ctx == NULL || ctx->server)
        return ss__fail(err, SS_EUSAGE, "ss_tls_dial needs a client TLS context");
    if (server_name != NULL && server_name[0] == '\0')
        return ss__fail(err, SS_EUSAGE, "empty TLS server name (NULL means the address's host)");
    char host[256];
    if (server_name == NULL) {
        host_of(address, host, sizeof host);
        server_name = host[0] != '\0' ? host : NULL;
    }
    ss_sock s = SS_SOCK_INIT;
    int rc = ss_dial(&s, address, timeout, err);
    if (rc < 0)
        return rc;
    if (!ss_addr_is_stream(s.kind)) {
        ss_sock_close(&s);
        return ss__fail(err, SS_EUSAGE, "%s: TLS needs a stream address", address);
    }
    rc = ss_tls_transport_new(t, ctx, s.fd, server_name, err);
    if (rc < 0) {
        ss_sock_close(&s);
        return rc;
    }
    ss_error inner = {0};
    rc = ss_tls_handshake(t, timeout, &inner);
    if (rc < 0) {
        t->ops->close(t);
        return ss__fail(err, rc, "%s: %s", address, inner.msg);
    }
    return 0;
}
