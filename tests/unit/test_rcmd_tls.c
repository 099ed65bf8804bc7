/* SPDX-License-Identifier: MIT */
/* test_rcmd_tls.c — TLS 1.3 PSK transport over a socketpair: handshake, wrong
 * keys on both sides, data both ways, half-close, deadline, no fd leak. */
#include "testutil.h"

#include "rcmd/tls.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct pair {
    rcmd_tls_ctx *sctx, *cctx;
    ss_transport srv, cli;
} pair;

static rcmd_key make_key(unsigned char fill, const char *identity)
{
    rcmd_key k;
    memset(&k, 0, sizeof k);
    memset(k.key, fill, 32);
    k.key_len = 32;
    if (identity)
        strcpy(k.identity, identity);
    else
        rcmd_key_default_identity(k.key, k.key_len, k.identity);
    return k;
}

static void pair_open(pair *p, const rcmd_key *skey, const rcmd_key *ckey)
{
    ss_error err = {0};
    rcmd_tls_config sc = {.key = skey}, cc = {.key = ckey};
    assert_int_equal(rcmd_tls_ctx_new(&p->sctx, true, &sc, &err), 0);
    assert_int_equal(rcmd_tls_ctx_new(&p->cctx, false, &cc, &err), 0);
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    assert_int_equal(rcmd_tls_transport_new(&p->srv, p->sctx, sv[0], &err), 0);
    assert_int_equal(rcmd_tls_transport_new(&p->cli, p->cctx, sv[1], &err), 0);
}

static void pair_close(pair *p)
{
    p->srv.ops->close(&p->srv);
    p->cli.ops->close(&p->cli);
    rcmd_tls_ctx_free(p->sctx);
    rcmd_tls_ctx_free(p->cctx);
}

/* Drive both handshakes in one thread, step by step, until each side has
 * finished or failed. */
static void handshake_both(pair *p, int *src, int *crc, ss_error *serr, ss_error *cerr)
{
    *src = *crc = -EAGAIN;
    for (int i = 0; i < 1000 && (*src == -EAGAIN || *crc == -EAGAIN); i++) {
        if (*crc == -EAGAIN)
            *crc = rcmd_tls_handshake_step(&p->cli, cerr);
        if (*src == -EAGAIN)
            *src = rcmd_tls_handshake_step(&p->srv, serr);
        if (*src < 0 && *src != -EAGAIN && *crc == -EAGAIN) {
            /* the server gave up: let the client see the alert / EOF */
            p->srv.ops->close(&p->srv);
            p->srv.fd = -1;
        }
    }
}

static void psk_handshake_and_data_both_ways(void **state)
{
    (void)state;
    int fds = tu_count_fds();
    rcmd_key k = make_key(0x42, NULL);
    pair p;
    pair_open(&p, &k, &k);
    assert_true(rcmd_tls_is_tls(&p.srv));
    int src, crc;
    ss_error serr = {0}, cerr = {0};
    handshake_both(&p, &src, &crc, &serr, &cerr);
    assert_int_equal(crc, 0);
    assert_int_equal(src, 0);

    /* 1 MiB each way, interleaved, non-blocking */
    enum { N = 1 << 20 };
    unsigned char *a = malloc(N), *b = malloc(N), *ra = malloc(N), *rb = malloc(N);
    for (size_t i = 0; i < N; i++) {
        a[i] = (unsigned char)(i * 13);
        b[i] = (unsigned char)(i * 7 + 1);
    }
    size_t wa = 0, wb = 0, ga = 0, gb = 0;
    int64_t deadline = rcmd_now_ms() + 20000;
    while ((ga < N || gb < N) && rcmd_now_ms() < deadline) {
        ssize_t n;
        if (wa < N && (n = p.cli.ops->write(&p.cli, a + wa, N - wa)) > 0)
            wa += (size_t)n;
        if (wb < N && (n = p.srv.ops->write(&p.srv, b + wb, N - wb)) > 0)
            wb += (size_t)n;
        if (ga < N && (n = p.srv.ops->read(&p.srv, ra + ga, N - ga)) > 0)
            ga += (size_t)n;
        else
            assert_true(n == -EAGAIN || ga == N);
        if (gb < N && (n = p.cli.ops->read(&p.cli, rb + gb, N - gb)) > 0)
            gb += (size_t)n;
    }
    assert_int_equal(ga, N);
    assert_int_equal(gb, N);
    assert_memory_equal(ra, a, N);
    assert_memory_equal(rb, b, N);

    /* half-close: the client says it is done, the server sees EOF and can
     * still answer */
    assert_int_equal(p.cli.ops->shutdown_write(&p.cli), 0);
    char c;
    ssize_t n = -EAGAIN;
    for (int i = 0; i < 100 && n == -EAGAIN; i++) {
        n = p.srv.ops->read(&p.srv, &c, 1);
        if (n == -EAGAIN)
            rcmd_transport_wait(&p.srv, POLLIN, rcmd_now_ms() + 1000);
    }
    assert_int_equal(n, 0);
    assert_int_equal(rcmd_transport_write_all(&p.srv, "bye", 3, rcmd_now_ms() + 5000), 0);
    char got[3];
    size_t have = 0;
    while (have < 3) {
        n = p.cli.ops->read(&p.cli, got + have, 3 - have);
        if (n == -EAGAIN) {
            assert_int_equal(rcmd_transport_wait(&p.cli, POLLIN, rcmd_now_ms() + 5000), 0);
            continue;
        }
        assert_true(n > 0);
        have += (size_t)n;
    }
    assert_memory_equal(got, "bye", 3);
    free(a);
    free(b);
    free(ra);
    free(rb);
    pair_close(&p);
    assert_int_equal(tu_count_fds(), fds);
}

static void wrong_key_fails_on_both_sides(void **state)
{
    (void)state;
    rcmd_key good = make_key(0x42, "rcmd-same"), bad = make_key(0x43, "rcmd-same");
    pair p;
    pair_open(&p, &good, &bad);
    int src, crc;
    ss_error serr = {0}, cerr = {0};
    handshake_both(&p, &src, &crc, &serr, &cerr);
    assert_int_equal(src, SS_EAUTH);
    assert_true(crc == SS_EAUTH || crc == SS_ECLOSED || crc == -ECONNRESET);
    assert_non_null(strstr(serr.msg, "TLS handshake"));
    pair_close(&p);
}

static void unknown_identity_fails_on_both_sides(void **state)
{
    (void)state;
    rcmd_key good = make_key(0x42, "alice"), other = make_key(0x42, "mallory");
    pair p;
    pair_open(&p, &good, &other);
    int src, crc;
    ss_error serr = {0}, cerr = {0};
    handshake_both(&p, &src, &crc, &serr, &cerr);
    assert_int_equal(src, SS_EAUTH);
    assert_true(crc == SS_EAUTH || crc == SS_ECLOSED || crc == -ECONNRESET);
    pair_close(&p);
}

static void a_plaintext_peer_fails(void **state)
{
    (void)state;
    rcmd_key k = make_key(0x11, NULL);
    ss_error err = {0};
    rcmd_tls_ctx *sctx;
    rcmd_tls_config sc = {.key = &k};
    assert_int_equal(rcmd_tls_ctx_new(&sctx, true, &sc, &err), 0);
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    ss_transport srv;
    assert_int_equal(rcmd_tls_transport_new(&srv, sctx, sv[0], &err), 0);
    const char junk[] = "CMD_RESULT_SIZE|12 this is not TLS at all............\n";
    assert_int_equal(write(sv[1], junk, sizeof junk), (ssize_t)sizeof junk);
    int rc = rcmd_tls_handshake(&srv, rcmd_now_ms() + 5000, &err);
    assert_int_equal(rc, SS_EAUTH);
    srv.ops->close(&srv);
    close(sv[1]);
    rcmd_tls_ctx_free(sctx);
}

static void handshake_deadline(void **state)
{
    (void)state;
    int fds = tu_count_fds();
    rcmd_key k = make_key(0x11, NULL);
    ss_error err = {0};
    rcmd_tls_ctx *cctx;
    rcmd_tls_config cc = {.key = &k};
    assert_int_equal(rcmd_tls_ctx_new(&cctx, false, &cc, &err), 0);
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    ss_transport cli;
    assert_int_equal(rcmd_tls_transport_new(&cli, cctx, sv[1], &err), 0);
    /* the peer never answers */
    int64_t t0 = rcmd_now_ms();
    assert_int_equal(rcmd_tls_handshake(&cli, t0 + 200, &err), SS_ETIMEOUT);
    assert_true(rcmd_now_ms() - t0 >= 190);
    assert_non_null(strstr(err.msg, "timed out"));
    /* and a peer that closes gives SS_ECLOSED */
    close(sv[0]);
    cli.ops->close(&cli);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    assert_int_equal(rcmd_tls_transport_new(&cli, cctx, sv[1], &err), 0);
    close(sv[0]);
    int rc = rcmd_tls_handshake(&cli, rcmd_now_ms() + 5000, &err);
    assert_true(rc == SS_ECLOSED || rc == -EPIPE || rc == -ECONNRESET);
    cli.ops->close(&cli);
    rcmd_tls_ctx_free(cctx);
    assert_int_equal(tu_count_fds(), fds);
}

static void config_errors(void **state)
{
    (void)state;
    rcmd_tls_ctx *ctx;
    ss_error err = {0};
    rcmd_tls_config none = {0};
    assert_int_equal(rcmd_tls_ctx_new(&ctx, true, &none, &err), SS_EUSAGE);
    assert_null(ctx);
    rcmd_tls_config missing = {.cert_file = "/nonexistent.pem",
                               .cert_key_file = "/nonexistent.key",
                               .ca_file = "/nonexistent.ca"};
    /* the private key is checked first (it must be private, as key files) */
    assert_int_equal(rcmd_tls_ctx_new(&ctx, true, &missing, &err), -ENOENT);
    assert_non_null(strstr(err.msg, "/nonexistent.key"));
}

/* A self-made PKI: a CA and one certificate signed by it, as PEM files. */
static EVP_PKEY *new_key(void)
{
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    assert_non_null(k);
    return k;
}

static X509 *new_cert(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *issuer_key, int ca)
{
    X509 *x = X509_new();
    assert_non_null(x);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), ca ? 1 : 2);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, key);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name);
    if (ca) {
        X509_EXTENSION *ext =
            X509V3_EXT_conf_nid(NULL, NULL, NID_basic_constraints, "critical,CA:TRUE");
        X509_add_ext(x, ext, -1);
        X509_EXTENSION_free(ext);
    }
    assert_true(X509_sign(x, issuer_key ? issuer_key : key, EVP_sha256()) > 0);
    return x;
}

static void write_pem(const char *path, X509 *cert, EVP_PKEY *key)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    if (cert)
        PEM_write_X509(f, cert);
    if (key) {
        PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL);
        assert_int_equal(fchmod(fileno(f), 0600), 0);
    }
    fclose(f);
}

static rcmd_tls_config scfg_ok(const char *pem, const char *key, const char *ca)
{
    return (rcmd_tls_config){.cert_file = pem, .cert_key_file = key, .ca_file = ca};
}

static void certificate_mode_is_mutual(void **state)
{
    (void)state;
    char ca_pem[256], other_ca_pem[256], srv_pem[256], srv_key[256], cli_pem[256], cli_key[256];
    tu_temp_path(ca_pem, sizeof ca_pem, "ca.pem");
    tu_temp_path(other_ca_pem, sizeof other_ca_pem, "other-ca.pem");
    tu_temp_path(srv_pem, sizeof srv_pem, "srv.pem");
    tu_temp_path(srv_key, sizeof srv_key, "srv.key");
    tu_temp_path(cli_pem, sizeof cli_pem, "cli.pem");
    tu_temp_path(cli_key, sizeof cli_key, "cli.key");
    EVP_PKEY *cak = new_key(), *ock = new_key(), *sk = new_key(), *ck = new_key();
    X509 *ca = new_cert(cak, "test ca", NULL, NULL, 1);
    X509 *oca = new_cert(ock, "other ca", NULL, NULL, 1);
    X509 *sc = new_cert(sk, "server", ca, cak, 0);
    X509 *cc = new_cert(ck, "client", ca, cak, 0);
    write_pem(ca_pem, ca, NULL);
    write_pem(other_ca_pem, oca, NULL);
    write_pem(srv_pem, sc, NULL);
    write_pem(srv_key, NULL, sk);
    write_pem(cli_pem, cc, NULL);
    write_pem(cli_key, NULL, ck);

    for (int trial = 0; trial < 2; trial++) {
        /* trial 1: the client trusts another CA: both sides must fail */
        rcmd_tls_config scfg = {.cert_file = srv_pem, .cert_key_file = srv_key, .ca_file = ca_pem};
        rcmd_tls_config ccfg = {.cert_file = cli_pem,
                                .cert_key_file = cli_key,
                                .ca_file = trial == 0 ? ca_pem : other_ca_pem};
        pair p;
        ss_error err = {0};
        assert_int_equal(rcmd_tls_ctx_new(&p.sctx, true, &scfg, &err), 0);
        assert_int_equal(rcmd_tls_ctx_new(&p.cctx, false, &ccfg, &err), 0);
        int sv[2];
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        assert_int_equal(rcmd_tls_transport_new(&p.srv, p.sctx, sv[0], &err), 0);
        assert_int_equal(rcmd_tls_transport_new(&p.cli, p.cctx, sv[1], &err), 0);
        int src, crc;
        ss_error serr = {0}, cerr = {0};
        handshake_both(&p, &src, &crc, &serr, &cerr);
        if (trial == 0) {
            assert_int_equal(crc, 0);
            assert_int_equal(src, 0);
        } else {
            assert_int_equal(crc, SS_EAUTH);
            assert_true(src != 0);
        }
        pair_close(&p);
    }
    /* a server certificate with the wrong key is refused at setup */
    rcmd_tls_config bad = {.cert_file = srv_pem, .cert_key_file = cli_key, .ca_file = ca_pem};
    rcmd_tls_ctx *ctx;
    ss_error err = {0};
    assert_int_equal(rcmd_tls_ctx_new(&ctx, true, &bad, &err), SS_ETLS);
    /* a private key others may read is refused, as ssh refuses one */
    assert_int_equal(chmod(srv_key, 0644), 0);
    rcmd_tls_config open_key = scfg_ok(srv_pem, srv_key, ca_pem);
    assert_int_equal(rcmd_tls_ctx_new(&ctx, true, &open_key, &err), -EACCES);
    assert_non_null(strstr(err.msg, "chmod 600"));
    X509_free(ca);
    X509_free(oca);
    X509_free(sc);
    X509_free(cc);
    EVP_PKEY_free(cak);
    EVP_PKEY_free(ock);
    EVP_PKEY_free(sk);
    EVP_PKEY_free(ck);
}

static void plain_transport_moves_bytes(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    ss_transport a, b;
    assert_int_equal(rcmd_plain_transport_init(&a, sv[0]), 0);
    assert_int_equal(rcmd_plain_transport_init(&b, sv[1]), 0);
    assert_false(rcmd_tls_is_tls(&a));
    char buf[8];
    assert_int_equal(b.ops->read(&b, buf, sizeof buf), -EAGAIN);
    assert_int_equal(rcmd_transport_write_all(&a, "hello", 5, -1), 0);
    assert_int_equal(rcmd_transport_wait(&b, POLLIN, rcmd_now_ms() + 2000), 0);
    assert_int_equal(b.ops->read(&b, buf, sizeof buf), 5);
    assert_int_equal(a.ops->shutdown_write(&a), 0);
    assert_int_equal(b.ops->read(&b, buf, sizeof buf), 0);
    a.ops->close(&a);
    b.ops->close(&b);
}

int main(void)
{
    tu_alarm(60);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(psk_handshake_and_data_both_ways),
        cmocka_unit_test(wrong_key_fails_on_both_sides),
        cmocka_unit_test(unknown_identity_fails_on_both_sides),
        cmocka_unit_test(a_plaintext_peer_fails),
        cmocka_unit_test(handshake_deadline),
        cmocka_unit_test(config_errors),
        cmocka_unit_test(certificate_mode_is_mutual),
        cmocka_unit_test(plain_transport_moves_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
