/* test_rcmd_tls.c — TLS 1.3 PSK transport over a socketpair: handshake, wrong
 * keys on both sides, data both ways, half-close, deadline, no fd leak. */
#include "testutil.h"

#include "rcmd/tls.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
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
    assert_int_equal(rcmd_tls_ctx_new(&ctx, true, &missing, &err), SS_ETLS);
    assert_non_null(strstr(err.msg, "/nonexistent.pem"));
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
        cmocka_unit_test(plain_transport_moves_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
