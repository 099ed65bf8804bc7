/* SPDX-License-Identifier: MIT */
/* test_server_models.c — every thread-based model (serial, threading, pool)
 * on every socket kind serves several clients at once correctly: CPython's
 * test_socketserver run_server matrix (TCPServer, ThreadingTCPServer,
 * UDPServer, ThreadingUDPServer, UnixStreamServer, ...).
 * ctest-labels: tsan */
#include "server_test.h"

#define NCLIENTS 4
#define ROUNDS 3

typedef struct client_job {
    const char *address;
    int id;
    int rc;
} client_job;

static void *client_main(void *arg)
{
    client_job *job = arg;
    ss_sock s;
    job->rc = st_connect(job->address, &s);
    if (job->rc < 0)
        return NULL;
    for (int r = 0; r < ROUNDS && job->rc == 0; r++) {
        char msg[64];
        snprintf(msg, sizeof msg, "client %d round %d\n", job->id, r);
        job->rc = st_roundtrip(&s, msg);
    }
    ss_sock_close(&s);
    return NULL;
}

/* NCLIENTS client threads, each doing ROUNDS echoes. */
static void clients_in_parallel(const char *address, const char *label)
{
    pthread_t t[NCLIENTS];
    client_job jobs[NCLIENTS];
    for (int i = 0; i < NCLIENTS; i++) {
        jobs[i] = (client_job){address, i, 0};
        assert_int_equal(pthread_create(&t[i], NULL, client_main, &jobs[i]), 0);
    }
    for (int i = 0; i < NCLIENTS; i++) {
        pthread_join(t[i], NULL);
        if (jobs[i].rc != 0)
            fail_msg("%s (%s): client %d: %s", label, address, i,
                     ss_strerror(jobs[i].rc));
    }
}

/* All connections open at once, then served out of order: only a model
 * that really runs requests concurrently passes. */
static void clients_interleaved(const char *address, const char *label)
{
    ss_sock s[NCLIENTS];
    for (int i = 0; i < NCLIENTS; i++)
        assert_int_equal(st_connect(address, &s[i]), 0);
    for (int r = 0; r < 2; r++) {
        for (int i = NCLIENTS - 1; i >= 0; i--) {
            char msg[64];
            snprintf(msg, sizeof msg, "conn %d round %d\n", i, r);
            int rc = st_roundtrip(&s[i], msg);
            if (rc != 0)
                fail_msg("%s: interleaved conn %d: %s", label, i, ss_strerror(rc));
        }
    }
    for (int i = 0; i < NCLIENTS; i++)
        ss_sock_close(&s[i]);
}

static void echo_matrix(ss_model model, bool concurrent)
{
    tu_alarm(60);
    int fds = tu_count_fds();
    for (size_t k = 0; k < ST_NKINDS; k++) {
        char address[256];
        st_address(&st_kinds[k], address, sizeof address);
        ss_server_opts o;
        ss_server_opts_init(&o);
        o.model = model;
        o.workers = NCLIENTS;
        st_server s;
        st_start(&s, address, &st_echo, &o);
        clients_in_parallel(s.addr, st_kinds[k].label);
        if (concurrent && !st_kinds[k].dgram)
            clients_interleaved(s.addr, st_kinds[k].label);
        st_stop(&s);
        if (st_kinds[k].unix_path)
            assert_int_equal(access(address + strlen(st_kinds[k].scheme), F_OK),
                             -1); /* server_close removed its socket file */
    }
    assert_int_equal(tu_count_fds(), fds);
}

static void serial_serves_every_kind(void **state)
{
    (void)state;
    echo_matrix(SS_MODEL_SERIAL, false);
}

static void threading_serves_every_kind(void **state)
{
    (void)state;
    echo_matrix(SS_MODEL_THREADING, true);
}

static void pool_serves_every_kind(void **state)
{
    (void)state;
    echo_matrix(SS_MODEL_POOL, true);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(serial_serves_every_kind),
        cmocka_unit_test(threading_serves_every_kind),
        cmocka_unit_test(pool_serves_every_kind),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
