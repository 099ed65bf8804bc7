/* SPDX-License-Identifier: MIT */
/* test_tls.c — the TLS contexts without a server: both ends of a socketpair
 * stepped non-blocking in one thread. Client session reuse (a burst of
 * connections all resume one ticket) and certificate selection by SNI. The
 * certificates are made here with OpenSSL (self-signed, P-256). */
#include "testutil.h"
#include "internal.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

/* A self-signed certificate for `cn` with subjectAltName `san` (e.g.
 * "DNS:a.test"), written to `<leaf>.pem` and `<leaf>.key`. */
static void make_cert(const char *leaf, const char *cn, const char *san, char *cert_path,
                      char *key_path, size_t len)
{
    char name[64];
    snprintf(name, sizeof name, "%s.pem", leaf);
    tu_temp_path(cert_path, len, name);
    snprintf(name, sizeof name, "%s.key", leaf);
    tu_temp_path(key_path, len, name);
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    assert_non_null(key);
    assert_non_null(x);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -60);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_set_pubkey(x, key);
    X509_NAME *n = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, n);
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, san);
    assert_non_null(ext);
    X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    assert_true(X509_sign(x, key, EVP_sha256()) > 0);
    FILE *f = fopen(cert_path, "w");
    assert_non_null(f);
    PEM_write_X509(f, x);
    fclose(f);
    f = fopen(key_path, "w");
    assert_non_null(f);
    PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL);
    fclose(f);
    X509_free(x);
    EVP_PKEY_free(key);
}

/* One TLS connection over a socketpair: client and server transports. */
typedef struct tls_link {
    ss_transport cli, srv;
} tls_link;

static void link_open(tls_link *l, ss_tls_ctx *client, ss_tls_ctx *server, const char *name)
{
    int sv[2];
    ss_error err = {0};
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    assert_int_equal(ss_tls_transport_new(&l->cli, client, sv[0], name, &err), 0);
    assert_int_equal(ss_tls_transport_new(&l->srv, server, sv[1], NULL, &err), 0);
}

/* Step both ends until both handshakes are done (bounded). */
static void link_handshake(tls_link *l)
{
    bool cli_done = false, srv_done = false;
    for (int i = 0; i < 1000 && !(cli_done && srv_done); i++) {
        ss_error err = {0};
        if (!cli_done) {
            int rc = ss_tls_handshake_step(&l->cli, &err);
            assert_true(rc == 0 || rc == -EAGAIN);
            cli_done = rc == 0;
        }
        if (!srv_done) {
            int rc = ss_tls_handshake_step(&l->srv, &err);
            assert_true(rc == 0 || rc == -EAGAIN);
            srv_done = rc == 0;
        }
        struct pollfd p[2] = {{.fd = l->cli.fd, .events = POLLIN}, {.fd = l->srv.fd, .events = POLLIN}};
        if (!(cli_done && srv_done))
            poll(p, 2, 10);
    }
    assert_true(cli_done && srv_done);
}

/* The server writes one byte and the client reads it: the client then has
 * processed what came before it, the server's session tickets. */
static void link_echo_byte(tls_link *l)
{
    unsigned char b = 'x';
    assert_int_equal(l->srv.ops->write(&l->srv, &b, 1), 1);
    ssize_t n = -EAGAIN;
    for (int i = 0; i < 1000 && n == -EAGAIN; i++) {
        n = l->cli.ops->read(&l->cli, &b, 1);
        if (n == -EAGAIN) {
            struct pollfd p = {.fd = l->cli.fd, .events = POLLIN};
            poll(&p, 1, 10);
        }
    }
    assert_int_equal(n, 1);
}

static void link_close(tls_link *l)
{
    l->cli.ops->close(&l->cli);
    l->srv.ops->close(&l->srv);
}

static bool resumed(const ss_transport *t)
{
    ss_tls_info info;
    assert_int_equal(ss_tls_info_get(t, &info), 0);
    return info.resumed;
}

/* The CN of the certificate the client got. */
static void peer_cn(const ss_transport *t, char *buf, size_t len)
{
    X509 *peer = SSL_get0_peer_certificate(ss_tls_ssl(t));
    assert_non_null(peer);
    X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, buf, (int)len);
}

static ss_tls_ctx *server_ctx(const char *cert, const char *key)
{
    ss_tls_ctx *c;
    ss_error err = {0};
    ss_tls_opts o = {.cert_file = cert, .key_file = key};
    assert_int_equal(ss_tls_ctx_new(&c, true, &o, &err), 0);
    return c;
}

static ss_tls_ctx *client_ctx(void)
{
    ss_tls_ctx *c;
    ss_error err = {0};
    ss_tls_opts o = {.insecure_no_verify = true};
    assert_int_equal(ss_tls_ctx_new(&c, false, &o, &err), 0);
    return c;
}

/* One connection resumes to the end of its handshake and reads nothing (so
 * no new ticket replaces the context's session); the connections after it
 * must still resume. OpenSSL marks the session of a finished TLS 1.3 client
 * handshake not resumable: a context that handed its one session object to
 * every connection resumed only the first of a burst. */
static void test_burst_resumes_one_ticket(void **state)
{
    (void)state;
    char cert[256], key[256];
    make_cert("burst", "localhost", "DNS:localhost", cert, key, sizeof cert);
    ss_tls_ctx *srv = server_ctx(cert, key), *cli = client_ctx();
    tls_link first;
    link_open(&first, cli, srv, "localhost");
    link_handshake(&first);
    assert_false(resumed(&first.cli));
    link_echo_byte(&first); /* the tickets arrive */
    link_close(&first);

    tls_link burst[8];
    for (int i = 0; i < 8; i++) {
        link_open(&burst[i], cli, srv, "localhost");
        link_handshake(&burst[i]);
        assert_true(resumed(&burst[i].cli));
        assert_true(resumed(&burst[i].srv));
    }
    /* A connection freed without close_notify spoils only its own copy. */
    int fd = burst[0].cli.fd;
    ss_tls_transport_release(&burst[0].cli);
    close(fd);
    burst[0].srv.ops->close(&burst[0].srv);
    tls_link late;
    link_open(&late, cli, srv, "localhost");
    link_handshake(&late);
    assert_true(resumed(&late.cli));
    link_close(&late);
    for (int i = 1; i < 8; i++)
        link_close(&burst[i]);
    ss_tls_ctx_free(cli);
    ss_tls_ctx_free(srv);
}

/* The CN of the certificate a client sending `name` (NULL: no SNI) gets. */
static void served_cn(ss_tls_ctx *cli, ss_tls_ctx *srv, const char *name, char *cn, size_t len)
{
    tls_link l;
    link_open(&l, cli, srv, name);
    link_handshake(&l);
    peer_cn(&l.cli, cn, len);
    link_close(&l);
}

static void expect_cn(ss_tls_ctx *cli, ss_tls_ctx *srv, const char *name, const char *want)
{
    char cn[64] = "";
    served_cn(cli, srv, name, cn, sizeof cn);
    if (strcmp(cn, want) != 0)
        fail_msg("SNI %s: got the certificate of '%s', want '%s'", name ? name : "(none)", cn,
                 want);
}

static void copy_file(const char *from, const char *to)
{
    char buf[8192];
    FILE *in = fopen(from, "r"), *out = fopen(to, "w");
    assert_non_null(in);
    assert_non_null(out);
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        assert_int_equal(fwrite(buf, 1, n, out), n);
    fclose(in);
    fclose(out);
}

/* Several pairs: the client's SNI picks the certificate whose SAN covers
 * it (wildcards too); no SNI or an unknown name gets the first. Reload
 * re-reads every pair; a bad one keeps them all as they were. */
static void test_sni_selects_the_certificate(void **state)
{
    (void)state;
    char dc[256], dk[256], ac[256], ak[256], bc[256], bk[256], a2c[256], a2k[256];
    make_cert("default", "default", "DNS:localhost", dc, dk, sizeof dc);
    make_cert("a", "a", "DNS:a.test", ac, ak, sizeof ac);
    make_cert("b", "b", "DNS:b.test,DNS:*.b.test", bc, bk, sizeof bc);
    make_cert("a2", "a2", "DNS:a.test", a2c, a2k, sizeof a2c);
    char live_c[256], live_k[256];
    tu_temp_path(live_c, sizeof live_c, "live-a.pem");
    tu_temp_path(live_k, sizeof live_k, "live-a.key");
    copy_file(ac, live_c);
    copy_file(ak, live_k);

    ss_tls_ctx *srv = server_ctx(dc, dk), *cli = client_ctx();
    ss_error err = {0};
    assert_int_equal(ss_tls_ctx_add_cert(srv, live_c, live_k, &err), 0);
    assert_int_equal(ss_tls_ctx_add_cert(srv, bc, bk, &err), 0);
    expect_cn(cli, srv, "a.test", "a");
    expect_cn(cli, srv, "b.test", "b");
    expect_cn(cli, srv, "www.b.test", "b");
    expect_cn(cli, srv, "localhost", "default");
    expect_cn(cli, srv, "unknown.test", "default");
    expect_cn(cli, srv, NULL, "default");

    /* a bad pair is refused and changes nothing */
    assert_int_equal(ss_tls_ctx_add_cert(srv, ac, bk, &err), SS_ETLS);
    assert_non_null(strstr(err.msg, "does not match"));
    assert_int_equal(ss_tls_ctx_add_cert(cli, ac, ak, &err), SS_EUSAGE);
    expect_cn(cli, srv, "a.test", "a");

    /* reload covers every pair */
    copy_file(a2c, live_c);
    copy_file(a2k, live_k);
    assert_int_equal(ss_tls_ctx_reload(srv, &err), 0);
    expect_cn(cli, srv, "a.test", "a2");
    expect_cn(cli, srv, "b.test", "b");
    FILE *f = fopen(live_c, "w");
    assert_non_null(f);
    fputs("not a certificate\n", f);
    fclose(f);
    assert_int_equal(ss_tls_ctx_reload(srv, &err), SS_ETLS);
    assert_non_null(strstr(err.msg, live_c));
    expect_cn(cli, srv, "a.test", "a2");
    expect_cn(cli, srv, NULL, "default");
    ss_tls_ctx_free(cli);
    ss_tls_ctx_free(srv);
}

/* ---- a TLS client on the event loop (ss_loop_adopt_tls) ---- */

typedef struct echo_peer {
    ss_tls_ctx *ctx;
    int fd;
    int handshake_rc;
} echo_peer;

/* The server end, blocking, on its own thread: handshake, echo one read. */
static void *echo_peer_run(void *arg)
{
    echo_peer *p = arg;
    ss_transport t;
    ss_error err = {0};
    assert_int_equal(ss_tls_transport_new(&t, p->ctx, p->fd, NULL, &err), 0);
    p->handshake_rc = ss_tls_handshake(&t, 5.0, &err);
    if (p->handshake_rc == 0) {
        char buf[64];
        ssize_t n = -EAGAIN;
        for (int i = 0; i < 500 && n == -EAGAIN; i++) {
            n = t.ops->read(&t, buf, sizeof buf);
            if (n == -EAGAIN)
                poll(&(struct pollfd){.fd = t.fd, .events = t.ops->wait_events(&t, POLLIN)}, 1, 10);
        }
        if (n > 0)
            (void)t.ops->write(&t, buf, (size_t)n);
    }
    t.ops->close(&t);
    return NULL;
}

typedef struct loop_client {
    bool opened, resumed;
    int closed_reason, closes;
    char got[64];
    size_t got_len;
} loop_client;

static void lc_open(ss_conn *c)
{
    loop_client *lc = ss_conn_handler_data(c);
    lc->opened = true;
    ss_tls_info info;
    assert_int_equal(ss_tls_info_get(ss_conn_tls(c), &info), 0);
    lc->resumed = info.resumed;
    assert_int_equal(ss_conn_write(c, "ping", 4), 0);
}

static void lc_data(ss_conn *c, const void *data, size_t len)
{
    loop_client *lc = ss_conn_handler_data(c);
    if (len > sizeof lc->got - lc->got_len)
        len = sizeof lc->got - lc->got_len;
    memcpy(lc->got + lc->got_len, data, len);
    lc->got_len += len;
    if (lc->got_len >= 4)
        ss_conn_close(c);
}

static void lc_close(ss_conn *c, int reason)
{
    loop_client *lc = ss_conn_handler_data(c);
    lc->closes++;
    lc->closed_reason = reason;
    ss_loop_stop(ss_conn_loop(c));
}

/* One connection: the loop adopts one end of a socketpair as a TLS client. */
static void loop_dial(ss_tls_ctx *cli, ss_tls_ctx *srv, const char *name, loop_client *lc,
                      echo_peer *peer)
{
    struct ss_event_handler h = {.on_open = lc_open, .on_data = lc_data, .on_close = lc_close,
                                 .data = lc};
    memset(lc, 0, sizeof *lc);
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    *peer = (echo_peer){.ctx = srv, .fd = sv[1]};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, echo_peer_run, peer), 0);
    ss_loop *loop;
    assert_int_equal(ss_loop_new(&loop, NULL), 0);
    ss_conn *c;
    assert_int_equal(ss_loop_adopt_tls(loop, sv[0], &h, cli, name, 5.0, &c), 0);
    assert_non_null(c);
    for (int i = 0; i < 500 && lc->closes == 0; i++)
        ss_loop_run_once(loop, 10);
    pthread_join(th, NULL);
    ss_loop_free(loop);
    assert_int_equal(lc->closes, 1);
}

static void test_loop_adopt_tls_client(void **state)
{
    (void)state;
    char cert[256], key[256], other[256], okey[256];
    make_cert("loop", "loop", "DNS:loop.test", cert, key, sizeof cert);
    make_cert("other", "other", "DNS:other.test", other, okey, sizeof other);
    ss_tls_ctx *srv = server_ctx(cert, key), *cli = client_ctx();
    loop_client lc;
    echo_peer peer;
    loop_dial(cli, srv, "loop.test", &lc, &peer);
    assert_true(lc.opened);
    assert_false(lc.resumed);
    assert_int_equal(lc.got_len, 4);
    assert_memory_equal(lc.got, "ping", 4);
    assert_int_equal(lc.closed_reason, 0);
    loop_dial(cli, srv, "loop.test", &lc, &peer); /* the ticket of the first */
    assert_true(lc.opened);
    assert_true(lc.resumed);

    /* verification fails: on_close with SS_EAUTH, no on_open */
    ss_tls_ctx *strict;
    ss_error err = {0};
    ss_tls_opts o = {.ca_file = other};
    assert_int_equal(ss_tls_ctx_new(&strict, false, &o, &err), 0);
    loop_dial(strict, srv, "loop.test", &lc, &peer);
    assert_false(lc.opened);
    assert_int_equal(lc.closed_reason, SS_EAUTH);
    assert_int_not_equal(peer.handshake_rc, 0);

    /* "" is no name: refused, never "verify nothing" (a script's unset
     * variable in --server-name "$NAME") */
    ss_transport none;
    assert_int_equal(ss_tls_dial(&none, "tcp://127.0.0.1:9", cli, "", 1.0, &err), SS_EUSAGE);
    int pv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pv), 0);
    assert_int_equal(ss_tls_transport_new(&none, cli, pv[0], "", &err), SS_EUSAGE);
    close(pv[0]);
    close(pv[1]);

    /* not a stream socket: refused, the fd closed */
    ss_loop *loop;
    assert_int_equal(ss_loop_new(&loop, NULL), 0);
    int dv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, dv), 0);
    struct ss_event_handler h = {.on_close = lc_close, .data = &lc};
    assert_int_equal(ss_loop_adopt_tls(loop, dv[0], &h, cli, NULL, 1.0, NULL), SS_EUSAGE);
    assert_int_equal(fcntl(dv[0], F_GETFD), -1);
    close(dv[1]);
    ss_loop_free(loop);
    ss_tls_ctx_free(strict);
    ss_tls_ctx_free(cli);
    ss_tls_ctx_free(srv);
}

/* ---- a half-close (close_notify) that finds the socket full ---- */

typedef struct slow_reader {
    ss_tls_ctx *ctx;
    int fd;
    size_t got;
    bool clean_eof; /* read returned 0: the close_notify came */
    atomic_bool done;
} slow_reader;

/* The server end, on its own thread: handshake, let the writer fill the
 * socket, then read to the end (bounded: 2 s). */
static void *slow_reader_run(void *arg)
{
    slow_reader *r = arg;
    ss_transport t;
    ss_error err = {0};
    assert_int_equal(ss_tls_transport_new(&t, r->ctx, r->fd, NULL, &err), 0);
    if (ss_tls_handshake(&t, 5.0, &err) == 0) {
        usleep(30000);
        char buf[4096];
        for (int i = 0; i < 200; i++) {
            ssize_t n = t.ops->read(&t, buf, sizeof buf);
            if (n > 0) {
                r->got += (size_t)n;
                i = 0; /* progress: the 200 x 10 ms bound is for silence */
                continue;
            }
            if (n == 0)
                r->clean_eof = true;
            if (n != -EAGAIN)
                break;
            poll(&(struct pollfd){.fd = t.fd, .events = t.ops->wait_events(&t, POLLIN)}, 1, 10);
        }
    }
    t.ops->close(&t);
    atomic_store(&r->done, true);
    return NULL;
}

static size_t hc_len;

static void hc_open(ss_conn *c)
{
    static unsigned char block[256 * 1024];
    assert_true(hc_len <= sizeof block);
    memset(block, 'h', hc_len);
    assert_int_equal(ss_conn_write(c, block, hc_len), 0);
    ss_conn_shutdown(c); /* after the queue: close_notify, then FIN */
}

static void hc_close(ss_conn *c, int reason)
{
    (void)c, (void)reason;
}

/* A reply then ss_conn_shutdown, with a peer that reads late over a small
 * socket buffer: when the queue empties the socket may be full, so the
 * close_notify cannot go at once. It must go when the socket has room:
 * the peer sees every byte and then a clean end. (It was tried once and
 * given up on EAGAIN: the peer waited for the end forever.) Sizes vary so
 * that some of the rounds end their reply with the socket just full. */
static void test_shutdown_waits_for_room_for_close_notify(void **state)
{
    (void)state;
    char cert[256], key[256];
    make_cert("halfclose", "halfclose", "DNS:halfclose.test", cert, key, sizeof cert);
    ss_tls_ctx *srv = server_ctx(cert, key), *cli = client_ctx();
    struct ss_event_handler h = {.on_open = hc_open, .on_close = hc_close};
    int bad = 0;
    for (int round = 0; round < 24; round++) {
        hc_len = 20000 + (size_t)round * 4099;
        int sv[2];
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        int small = 4096;
        assert_int_equal(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small), 0);
        slow_reader r = {.ctx = srv, .fd = sv[1]};
        atomic_init(&r.done, false);
        pthread_t th;
        assert_int_equal(pthread_create(&th, NULL, slow_reader_run, &r), 0);
        ss_loop *loop;
        assert_int_equal(ss_loop_new(&loop, NULL), 0);
        assert_int_equal(ss_loop_adopt_tls(loop, sv[0], &h, cli, "halfclose.test", 5.0, NULL), 0);
        for (int i = 0; i < 400 && !atomic_load(&r.done); i++)
            ss_loop_run_once(loop, 10);
        pthread_join(th, NULL);
        ss_loop_free(loop);
        if (r.got != hc_len || !r.clean_eof) {
            print_message("round %d: %zu of %zu bytes, %s\n", round, r.got, hc_len,
                          r.clean_eof ? "clean end" : "no close_notify");
            bad++;
        }
    }
    assert_int_equal(bad, 0);
    ss_tls_ctx_free(cli);
    ss_tls_ctx_free(srv);
}

/* A forked worker that frees its copy of the context (or reloads it) must
 * not touch the shared area: it wiped the bytes every other worker still
 * had to read, so a sibling forked before the parent's reload kept
 * serving the old certificate. */
static void test_forked_reader_never_writes_the_shared_area(void **state)
{
    (void)state;
    char ac[256], ak[256], bc[256], bk[256], live_c[256], live_k[256];
    make_cert("fa", "first", "DNS:localhost", ac, ak, sizeof ac);
    make_cert("fb", "second", "DNS:localhost", bc, bk, sizeof bc);
    tu_temp_path(live_c, sizeof live_c, "forklive.pem");
    tu_temp_path(live_k, sizeof live_k, "forklive.key");
    copy_file(ac, live_c);
    copy_file(ak, live_k);
    ss_tls_ctx *srv = server_ctx(live_c, live_k), *cli = client_ctx();
    int go[2];
    assert_int_equal(pipe(go), 0);
    pid_t sibling = fork();
    assert_true(sibling >= 0);
    if (sibling == 0) { /* forked before the reload: it catches up later */
        ss__tls_ctx_after_fork(srv);
        char c;
        if (read(go[0], &c, 1) != 1)
            _exit(3);
        char cn[64] = "";
        served_cn(cli, srv, "localhost", cn, sizeof cn);
        _exit(strcmp(cn, "second") == 0 ? 0 : 4);
    }
    copy_file(bc, live_c);
    copy_file(bk, live_k);
    ss_error err = {0};
    assert_int_equal(ss_tls_ctx_reload(srv, &err), 0);
    pid_t worker = fork();
    assert_true(worker >= 0);
    if (worker == 0) { /* forked after it: reloads and frees its copy */
        ss__tls_ctx_after_fork(srv);
        ss_error e = {0};
        if (ss_tls_ctx_reload(srv, &e) != 0)
            _exit(5);
        ss_tls_ctx_free(srv);
        _exit(0);
    }
    int st;
    assert_int_equal(waitpid(worker, &st, 0), worker);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    assert_int_equal(write(go[1], "g", 1), 1);
    assert_int_equal(waitpid(sibling, &st, 0), sibling);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        fail_msg("the sibling did not serve the reloaded certificate (status %#x)", st);
    close(go[0]);
    close(go[1]);
    ss_tls_ctx_free(cli);
    ss_tls_ctx_free(srv);
}

/* ---- handle_request under the event model --------------------------------
 * The core's accept path hands each connection to a loop. It must be
 * served as the loop's listener serves its own: TLS first (a plaintext
 * client was echoed in clear, client certificates unchecked), and the
 * listener's idle timeout (the adopted connection had none). */
static void echo_data(ss_conn *c, const void *d, size_t n)
{
    (void)ss_conn_write(c, d, n);
}

typedef struct one_request {
    ss_server *srv;
    int rc;
} one_request;

static void *handle_one(void *arg)
{
    one_request *r = arg;
    r->rc = ss_server_handle_request(r->srv);
    return NULL;
}

static void test_event_handle_request_serves_tls(void **state)
{
    (void)state;
    char cert[256], key[256];
    make_cert("hr", "localhost", "DNS:localhost", cert, key, sizeof cert);
    ss_tls_ctx *tls = server_ctx(cert, key), *cli = client_ctx();
    static const struct ss_event_handler h = {.on_data = echo_data};
    ss_server_opts o;
    ss_server_opts_init(&o);
    o.model = SS_MODEL_EVENT;
    o.workers = 1;
    o.event = &h;
    o.tls = tls;
    o.idle_timeout = 0.5;
    o.handshake_timeout = 2;
    ss_server *srv;
    ss_error err = {0};
    static const ss_handler none = {0};
    assert_int_equal(ss_server_new(&srv, "tcp://127.0.0.1:0", &none, &o, &err), 0);
    char addr[SS_ADDR_STRLEN];
    assert_true(ss_addr_format(ss_server_address(srv), addr, sizeof addr) > 0);

    /* a plaintext client: never echoed */
    one_request r = {srv, 1};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, handle_one, &r), 0);
    ss_sock plain;
    assert_int_equal(ss_dial(&plain, addr, 5.0, &err), 0);
    static const char secret[] = "PLAINTEXT SECRET\n";
    assert_int_equal(send(plain.fd, secret, sizeof secret - 1, MSG_NOSIGNAL),
                     (ssize_t)sizeof secret - 1);
    assert_int_equal(pthread_join(t, NULL), 0); /* it waits for a first byte */
    assert_int_equal(r.rc, 0);
    char buf[256];
    size_t got = 0;
    for (;;) { /* whatever the server says until it closes: an alert at most */
        struct pollfd p = {.fd = plain.fd, .events = POLLIN};
        assert_int_equal(poll(&p, 1, 5000), 1);
        ssize_t n = recv(plain.fd, buf + got, sizeof buf - got, 0);
        if (n <= 0)
            break;
        got += (size_t)n;
        assert_true(got < sizeof buf);
    }
    assert_null(memmem(buf, got, "SECRET", 6));
    ss_sock_close(&plain);

    /* a TLS client: echoed, then closed by the idle timeout */
    assert_int_equal(pthread_create(&t, NULL, handle_one, &r), 0);
    ss_transport tt;
    assert_int_equal(ss_tls_dial(&tt, addr, cli, "localhost", 5.0, &err), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    ss_stream *s;
    ss_stream_opts so = {0};
    so.timeout = 5.0;
    assert_int_equal(ss_stream_new(&s, &tt, &so), 0);
    assert_int_equal(ss_stream_write(s, "ping", 4), 0);
    assert_int_equal(ss_stream_flush(s), 0);
    char back[4];
    assert_int_equal(ss_stream_read_exact(s, back, 4, NULL), 0);
    assert_memory_equal(back, "ping", 4);
    /* the idle close comes long before the stream's own 5 s timeout */
    ssize_t n = ss_stream_read(s, back, sizeof back);
    if (!(n == 0 || n == SS_EEOF || n == SS_ECLOSED || n == -ECONNRESET))
        fail_msg("after the idle timeout: read gave %zd (%s)", n, ss_strerror((int)n));
    ss_stream_free(s);
    tt.ops->close(&tt);

    ss_server_close(srv);
    ss_server_free(srv);
    ss_tls_ctx_free(cli);
    ss_tls_ctx_free(tls);
}

int main(void)
{
    tu_alarm(60);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_burst_resumes_one_ticket),
        cmocka_unit_test(test_sni_selects_the_certificate),
        cmocka_unit_test(test_loop_adopt_tls_client),
        cmocka_unit_test(test_event_handle_request_serves_tls),
        cmocka_unit_test(test_forked_reader_never_writes_the_shared_area),
        cmocka_unit_test(test_shutdown_waits_for_room_for_close_notify),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
