/* SPDX-License-Identifier: MIT */
/*
 * test_exec_env.c — the environment `sockserve exec` gives its programs
 * (apps/exec/ucspi_env.c): UCSPI's TCP variables for IPv4, IPv6 and
 * IPv4-mapped clients, the UNIX ones from peer credentials, and what is
 * removed from the inherited environment.
 */
#include "sockpeer.h"

#include "exec/ucspi_env.h"

#include <stdlib.h>
#include <string.h>

/* The value of NAME in `v`, or NULL. */
static const char *var(const exec_env_vars *v, const char *name)
{
    size_t len = strlen(name);
    for (int i = 0; i < v->n; i++)
        if (strncmp(v->vec[i], name, len) == 0 && v->vec[i][len] == '=')
            return v->vec[i] + len + 1;
    return NULL;
}

static void tcp_ipv4(void **state)
{
    (void)state;
    exec_conn_info c = {0};
    tp_parse(&c.local, "tcp://127.0.0.1:4000");
    tp_parse(&c.remote, "tcp://127.0.0.2:51234");
    exec_env_vars v;
    exec_env_describe(&c, &v);
    assert_string_equal(var(&v, "PROTO"), "TCP");
    assert_string_equal(var(&v, "TCPLOCALIP"), "127.0.0.1");
    assert_string_equal(var(&v, "TCPLOCALPORT"), "4000");
    assert_string_equal(var(&v, "TCPREMOTEIP"), "127.0.0.2");
    assert_string_equal(var(&v, "TCPREMOTEPORT"), "51234");
    assert_null(var(&v, "TCPREMOTEHOST"));
    assert_null(var(&v, "UNIXREMOTEUID"));
    assert_int_equal(v.n, 5);
    assert_null(v.vec[5]);
}

static void tcp_ipv6_has_no_brackets(void **state)
{
    (void)state;
    exec_conn_info c = {0};
    tp_parse(&c.local, "tcp://[::1]:80");
    tp_parse(&c.remote, "tcp://[2001:db8::7]:65535");
    exec_env_vars v;
    exec_env_describe(&c, &v);
    assert_string_equal(var(&v, "PROTO"), "TCP");
    assert_string_equal(var(&v, "TCPLOCALIP"), "::1");
    assert_string_equal(var(&v, "TCPLOCALPORT"), "80");
    assert_string_equal(var(&v, "TCPREMOTEIP"), "2001:db8::7");
    assert_string_equal(var(&v, "TCPREMOTEPORT"), "65535");
}

static void ipv4_mapped_clients_are_ipv4(void **state)
{
    (void)state;
    exec_conn_info c = {0};
    tp_parse(&c.local, "tcp://[::ffff:10.1.2.3]:9");
    tp_parse(&c.remote, "tcp://[::ffff:192.0.2.1]:1000");
    exec_env_vars v;
    exec_env_describe(&c, &v);
    assert_string_equal(var(&v, "TCPLOCALIP"), "10.1.2.3");
    assert_string_equal(var(&v, "TCPREMOTEIP"), "192.0.2.1");
}

static void unix_with_credentials(void **state)
{
    (void)state;
    exec_conn_info c = {.have_cred = true, .pid = 4242, .uid = 1000, .gid = 100};
    tp_parse(&c.local, "unix:/run/app.sock");
    tp_parse(&c.remote, "unix:/run/app.sock");
    c.remote.len = sizeof(sa_family_t); /* clients rarely bind a name */
    exec_env_vars v;
    exec_env_describe(&c, &v);
    assert_string_equal(var(&v, "PROTO"), "UNIX");
    assert_string_equal(var(&v, "UNIXLOCALPATH"), "/run/app.sock");
    assert_string_equal(var(&v, "UNIXREMOTEUID"), "1000");
    assert_string_equal(var(&v, "UNIXREMOTEGID"), "100");
    assert_string_equal(var(&v, "UNIXREMOTEPID"), "4242");
    assert_string_equal(var(&v, "UNIXREMOTEEUID"), "1000");
    assert_string_equal(var(&v, "UNIXREMOTEEGID"), "100");
    assert_null(var(&v, "TCPREMOTEIP"));
}

static void unix_abstract_and_unknown_pid(void **state)
{
    (void)state;
    /* pid 0: the client lives in another pid namespace */
    exec_conn_info c = {.have_cred = true, .pid = 0, .uid = 0, .gid = 0};
    tp_parse(&c.local, "unix:@svc");
    c.remote = c.local;
    c.remote.len = sizeof(sa_family_t);
    exec_env_vars v;
    exec_env_describe(&c, &v);
    assert_string_equal(var(&v, "UNIXLOCALPATH"), "@svc");
    assert_string_equal(var(&v, "UNIXREMOTEUID"), "0");
    assert_null(var(&v, "UNIXREMOTEPID"));

    exec_conn_info none = {0};
    tp_parse(&none.local, "unix:@svc");
    none.remote = none.local;
    exec_env_describe(&none, &v);
    assert_string_equal(var(&v, "PROTO"), "UNIX");
    assert_null(var(&v, "UNIXREMOTEUID"));
}

static void a_tcp_client_behind_a_proxy_on_a_unix_listener(void **state)
{
    (void)state;
    exec_conn_info c = {0};
    tp_parse(&c.local, "unix:/run/behind-haproxy.sock");
    tp_parse(&c.remote, "tcp://198.51.100.9:40000");
    exec_env_vars v;
    exec_env_describe(&c, &v);
    assert_string_equal(var(&v, "PROTO"), "TCP");
    assert_string_equal(var(&v, "TCPREMOTEIP"), "198.51.100.9");
    assert_null(var(&v, "TCPLOCALIP"));
}

static void inherited_descriptions_are_removed(void **state)
{
    (void)state;
    char *env[] = {"PATH=/usr/bin",       "PROTO=TCP",
                   "TCPREMOTEIP=6.6.6.6", "TCPREMOTEHOST=evil",
                   "UNIXREMOTEUID=0",     "NOTIFY_SOCKET=/run/x",
                   "LISTEN_FDS=3",        "LISTEN_PID=1",
                   "LISTEN_FDNAMES=a",    "WATCHDOG_USEC=1",
                   "PROTOCOL=kept",       "TCP=kept",
                   "HOME=/root",          NULL};
    char **base;
    assert_int_equal(exec_env_base(env, &base), 0);
    assert_int_equal(exec_env_count(base), 4);
    assert_string_equal(base[0], "PATH=/usr/bin");
    assert_string_equal(base[1], "PROTOCOL=kept");
    assert_string_equal(base[2], "TCP=kept");
    assert_string_equal(base[3], "HOME=/root");
    assert_ptr_not_equal(base[0], env[0]); /* copies */

    exec_conn_info c = {0};
    tp_parse(&c.local, "tcp://127.0.0.1:1");
    tp_parse(&c.remote, "tcp://127.0.0.1:2");
    exec_env_vars v;
    exec_env_describe(&c, &v);
    char **envp = calloc(exec_env_count(base) + EXEC_ENV_MAX_VARS + 1, sizeof *envp);
    assert_non_null(envp);
    exec_env_join(base, &v, envp);
    assert_string_equal(envp[0], "PATH=/usr/bin");
    assert_string_equal(envp[4], "PROTO=TCP");
    assert_string_equal(envp[6], "TCPLOCALPORT=1");
    assert_null(envp[9]);
    free(envp);
    exec_env_free_base(base);

    assert_true(exec_env_is_reserved("PROTO"));
    assert_false(exec_env_is_reserved("PROTO_X=1"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(tcp_ipv4),
        cmocka_unit_test(tcp_ipv6_has_no_brackets),
        cmocka_unit_test(ipv4_mapped_clients_are_ipv4),
        cmocka_unit_test(unix_with_credentials),
        cmocka_unit_test(unix_abstract_and_unknown_pid),
        cmocka_unit_test(a_tcp_client_behind_a_proxy_on_a_unix_listener),
        cmocka_unit_test(inherited_descriptions_are_removed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
