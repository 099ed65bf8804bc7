/* SPDX-License-Identifier: MIT */
/* test_access.c — access rules: CIDR syntax, decisions, rules files. */
#include "testutil.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static ss_addr peer(const char *text)
{
    ss_addr a;
    ss_error err;
    if (ss_addr_parse(&a, text, SS_ADDR_NUMERIC, &err) != 0)
        fail_msg("%s", err.msg);
    return a;
}

static bool in(const char *addr, const char *cidr)
{
    ss_addr a = peer(addr);
    return ss_addr_in_cidr(&a, cidr);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
}

static void cidr_syntax(void **state)
{
    (void)state;
    static const char *good[] = {
        "127.0.0.1",     "10.0.0.0/8", "0.0.0.0/0", "1.2.3.4/32", "::1",
        "2001:db8::/32", "::/0",       "::1/128",   "fe80::/10",  "::ffff:10.0.0.0/104",
    };
    static const struct {
        const char *in, *why;
    } bad[] = {
        {"", "empty"},
        {"/8", "missing address before '/'"},
        {"10.0.0.0/", "missing prefix length after '/'"},
        {"10.0.0.0/33", "prefix length must be 0..32 for IPv4"},
        {"10.0.0.0/99999999999999999999", "prefix length must be 0..32"},
        {"::/129", "prefix length must be 0..128 for IPv6"},
        {"10.0.0.0/-1", "prefix length is not a decimal number"},
        {"10.0.0.0/+8", "prefix length is not a decimal number"},
        {"10.0.0.0/8x", "prefix length is not a decimal number"},
        {"10.0.0.0/8 ", "prefix length is not a decimal number"},
        {"10.0.0.0/8/8", "prefix length is not a decimal number"},
        {"garbage", "not an IPv4 or IPv6 address"},
        {"127.1", "not an IPv4 or IPv6 address"},
        {"1.2.3.4.5", "not an IPv4 or IPv6 address"},
        {"256.0.0.0", "not an IPv4 or IPv6 address"},
        {" 10.0.0.0", "not an IPv4 or IPv6 address"},
        {"10.0.0.0 ", "not an IPv4 or IPv6 address"},
        {"[::1]", "not an IPv4 or IPv6 address"},
        {"fe80::1%lo", "not an IPv4 or IPv6 address"},
        {"localhost", "not an IPv4 or IPv6 address"},
    };
    ss_access *a;
    assert_int_equal(ss_access_new(&a), 0);
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        ss_error err = {0};
        if (ss_access_add(a, true, good[i], &err) != 0)
            fail_msg("'%s' refused: %s", good[i], err.msg);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ss_error err = {0};
        int rc = ss_access_add(a, false, bad[i].in, &err);
        if (rc != SS_EUSAGE || err.code != SS_EUSAGE)
            fail_msg("'%s' gave %d", bad[i].in, rc);
        char want[256];
        snprintf(want, sizeof want, "bad CIDR '%s': ", bad[i].in);
        if (strncmp(err.msg, want, strlen(want)) != 0 || strstr(err.msg, bad[i].why) == NULL)
            fail_msg("'%s': message '%s'", bad[i].in, err.msg);
    }
    /* the failures added nothing: only allow rules, so 10.x is served */
    ss_addr p = peer("10.9.9.9:1");
    assert_true(ss_access_allows(a, &p));
    ss_access_free(a);

    /* a NULL err is fine; the quote is bounded and one line */
    assert_int_equal(ss_access_new(&a), 0);
    assert_int_equal(ss_access_add(a, true, "nope", NULL), SS_EUSAGE);
    char big[1000];
    memset(big, '1', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    big[10] = '\n';
    ss_error err;
    assert_int_equal(ss_access_add(a, true, big, &err), SS_EUSAGE);
    assert_non_null(strstr(err.msg, "...': not an IPv4 or IPv6 address"));
    assert_null(strchr(err.msg, '\n'));
    ss_access_free(a);
    ss_access_free(NULL);
}

static void matching_and_masking(void **state)
{
    (void)state;
    assert_true(in("127.0.0.1:1", "127.0.0.1"));
    assert_false(in("127.0.0.2:1", "127.0.0.1"));
    assert_true(in("10.200.3.4:1", "10.0.0.0/8"));
    assert_false(in("11.0.0.1:1", "10.0.0.0/8"));
    assert_true(in("8.8.8.8:1", "0.0.0.0/0"));
    /* host bits are masked, not an error */
    assert_true(in("10.1.2.3:1", "10.1.2.255/24"));
    assert_false(in("10.1.3.3:1", "10.1.2.255/24"));
    assert_true(in("192.168.1.129:1", "192.168.1.200/25"));
    assert_false(in("192.168.1.127:1", "192.168.1.200/25"));
    /* IPv6, on and off byte and word boundaries */
    assert_true(in("[::1]:1", "::1"));
    assert_false(in("[::2]:1", "::1"));
    assert_true(in("[2001:db8:ffff::1]:1", "2001:db8::/32"));
    assert_false(in("[2001:db9::1]:1", "2001:db8::/32"));
    assert_true(in("[2001:db8::1]:1", "2001:db8::ffff/64"));
    assert_true(in("[2001:db8:0:0:8000::]:1", "2001:db8::ffff:0:0:0/65"));
    assert_false(in("[2001:db8:0:0:7fff::]:1", "2001:db8::ffff:0:0:0/65"));
    assert_true(in("[fe80::1]:1", "fe80::/10"));
    assert_true(in("[febf::1]:1", "fe80::/10"));
    assert_false(in("[fec0::1]:1", "fe80::/10"));
    assert_true(in("[::abcd]:1", "::/0"));
    /* families never cross (except mapped IPv4, below) */
    assert_false(in("[::1]:1", "0.0.0.0/0"));
    assert_false(in("127.0.0.1:1", "::/0"));
    /* a bad CIDR matches nothing */
    assert_false(in("127.0.0.1:1", "127.0.0.1/40"));
    assert_false(in("127.0.0.1:1", "x"));
    ss_addr p = peer("127.0.0.1:1");
    assert_false(ss_addr_in_cidr(&p, NULL));
    assert_false(ss_addr_in_cidr(NULL, "0.0.0.0/0"));
}

static void mapped_ipv4_is_ipv4(void **state)
{
    (void)state;
    assert_true(in("[::ffff:10.1.2.3]:1", "10.0.0.0/8"));
    assert_false(in("[::ffff:11.1.2.3]:1", "10.0.0.0/8"));
    assert_true(in("[::ffff:10.1.2.3]:1", "10.1.2.3"));
    /* an IPv6 rule inside ::ffff:0:0/96 is the IPv4 rule it spells, for
     * both kinds of client */
    assert_true(in("[::ffff:10.1.2.3]:1", "::ffff:0:0/96"));
    assert_true(in("10.1.2.3:1", "::ffff:0:0/96"));
    assert_true(in("10.1.2.3:1", "::ffff:10.0.0.0/104"));
    assert_false(in("11.1.2.3:1", "::ffff:10.0.0.0/104"));
    assert_true(in("10.1.2.3:1", "::ffff:10.1.2.3"));
    /* "all IPv6" does not take IPv4 along */
    assert_false(in("[::ffff:10.1.2.3]:1", "::/0"));
    /* ::a.b.c.d (IPv4-compatible, deprecated) is plain IPv6 */
    assert_false(in("[::10.1.2.3]:1", "10.0.0.0/8"));

    ss_access *a;
    assert_int_equal(ss_access_new(&a), 0);
    assert_int_equal(ss_access_add(a, false, "10.0.0.0/8", NULL), 0);
    ss_addr m = peer("[::ffff:10.0.0.1]:1"), v4 = peer("10.0.0.1:1");
    ss_addr other = peer("[::ffff:192.0.2.1]:1");
    assert_false(ss_access_allows(a, &m));
    assert_false(ss_access_allows(a, &v4));
    assert_true(ss_access_allows(a, &other));
    ss_access_free(a);
}

static void decisions(void **state)
{
    (void)state;
    ss_access *a;
    ss_addr lo = peer("127.0.0.1:1"), ten = peer("10.0.0.1:1"), net = peer("192.0.2.1:1");
    ss_addr v6 = peer("[2001:db8::1]:1"), v6lo = peer("[::1]:1");

    /* empty: everyone */
    assert_int_equal(ss_access_new(&a), 0);
    assert_true(ss_access_allows(a, &lo));
    assert_true(ss_access_allows(a, &v6));
    assert_true(ss_access_allows(NULL, &lo));

    /* deny only: everyone else is served */
    assert_int_equal(ss_access_add(a, false, "10.0.0.0/8", NULL), 0);
    assert_false(ss_access_allows(a, &ten));
    assert_true(ss_access_allows(a, &lo));
    assert_true(ss_access_allows(a, &v6));
    ss_access_free(a);

    /* allow only: only those */
    assert_int_equal(ss_access_new(&a), 0);
    assert_int_equal(ss_access_add(a, true, "127.0.0.0/8", NULL), 0);
    assert_int_equal(ss_access_add(a, true, "::1", NULL), 0);
    assert_true(ss_access_allows(a, &lo));
    assert_true(ss_access_allows(a, &v6lo));
    assert_false(ss_access_allows(a, &ten));
    assert_false(ss_access_allows(a, &v6));
    ss_access_free(a);

    /* a matching deny wins over a matching allow, in either order */
    for (int order = 0; order < 2; order++) {
        assert_int_equal(ss_access_new(&a), 0);
        if (order == 0)
            assert_int_equal(ss_access_add(a, true, "0.0.0.0/0", NULL), 0);
        assert_int_equal(ss_access_add(a, false, "192.0.2.0/24", NULL), 0);
        if (order == 1)
            assert_int_equal(ss_access_add(a, true, "0.0.0.0/0", NULL), 0);
        assert_false(ss_access_allows(a, &net));
        assert_true(ss_access_allows(a, &ten));
        assert_false(ss_access_allows(a, &v6)); /* an allow rule, none matches */
        ss_access_free(a);
    }
}

static void unix_peers_are_never_refused(void **state)
{
    (void)state;
    ss_access *a;
    assert_int_equal(ss_access_new(&a), 0);
    assert_int_equal(ss_access_add(a, true, "127.0.0.1", NULL), 0);
    assert_int_equal(ss_access_add(a, false, "0.0.0.0/0", NULL), 0);
    assert_int_equal(ss_access_add(a, false, "::/0", NULL), 0);
    ss_addr path = peer("unix:/tmp/x.sock"), abstract = peer("unix:@x");
    ss_addr unnamed;
    memset(&unnamed, 0, sizeof unnamed);
    unnamed.kind = SS_ADDR_UNIX;
    unnamed.u.un.sun_family = AF_UNIX;
    unnamed.len = sizeof(sa_family_t);
    assert_true(ss_access_allows(a, &path));
    assert_true(ss_access_allows(a, &abstract));
    assert_true(ss_access_allows(a, &unnamed));
    assert_false(ss_addr_in_cidr(&path, "0.0.0.0/0"));
    ss_access_free(a);
}

static void load_a_file(void **state)
{
    (void)state;
    char path[512];
    tu_temp_path(path, sizeof path, "rules-good");
    write_file(path, "# who may talk to us\n"
                     "\n"
                     "allow 127.0.0.0/8\n"
                     "  allow\t::1   # loopback\n"
                     "\t\n"
                     "deny 127.0.0.2\r\n"
                     "allow 10.0.0.0/8#no space before the comment\n"
                     "   # indented comment\n"
                     "allow 192.0.2.0/24"); /* no final newline */
    ss_access *a;
    ss_error err = {0};
    assert_int_equal(ss_access_new(&a), 0);
    if (ss_access_load(a, path, &err) != 0)
        fail_msg("%s", err.msg);
    ss_addr ok[] = {peer("127.0.0.1:1"), peer("[::1]:1"), peer("10.1.1.1:1"), peer("192.0.2.9:1")};
    ss_addr no[] = {peer("127.0.0.2:1"), peer("[::2]:1"), peer("11.0.0.1:1")};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        assert_true(ss_access_allows(a, &ok[i]));
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
        assert_false(ss_access_allows(a, &no[i]));

    /* a load adds to what is there */
    tu_temp_path(path, sizeof path, "rules-more");
    write_file(path, "deny 10.1.0.0/16\n");
    assert_int_equal(ss_access_load(a, path, &err), 0);
    ss_addr ten1 = peer("10.1.1.1:1"), ten2 = peer("10.2.1.1:1");
    assert_false(ss_access_allows(a, &ten1));
    assert_true(ss_access_allows(a, &ten2));
    ss_access_free(a);

    /* an empty file and a comments-only one add nothing */
    tu_temp_path(path, sizeof path, "rules-empty");
    write_file(path, "");
    assert_int_equal(ss_access_new(&a), 0);
    assert_int_equal(ss_access_load(a, path, &err), 0);
    write_file(path, "# nothing\n\n   \n");
    assert_int_equal(ss_access_load(a, path, &err), 0);
    ss_addr any = peer("203.0.113.5:1");
    assert_true(ss_access_allows(a, &any));
    ss_access_free(a);
}

static void a_bad_file_adds_nothing(void **state)
{
    (void)state;
    static const struct {
        const char *text, *want; /* want: after "PATH:" */
    } cases[] = {
        {"allow 10.0.0.0/8\ndeny 1.2.3.4/33\n", "2: bad CIDR '1.2.3.4/33': prefix length"},
        {"allow 10.0.0.0/8\n\n# c\npermit 1.2.3.4\n",
         "4: expected 'allow CIDR' or 'deny CIDR', not 'permit'"},
        {"allow\n", "1: missing CIDR after 'allow'"},
        {"deny   # nothing\n", "1: missing CIDR after 'deny'"},
        {"allow 10.0.0.0/8 10.0.0.1\n", "1: unexpected '10.0.0.1' after the CIDR"},
        {"allow 10.0.0.0/8 junk # c\n", "1: unexpected 'junk' after the CIDR"},
        {"ALLOW 10.0.0.0/8\n", "1: expected 'allow CIDR'"},
        {"allow garbage\n", "1: bad CIDR 'garbage': not an IPv4 or IPv6 address"},
        {"allow 10.0.0.0/8\nallow 10.0.0.0/8\ndeny x", "3: bad CIDR 'x'"},
        {"allow10.0.0.0/8\n", "1: expected 'allow CIDR' or 'deny CIDR', not 'allow10.0.0.0/8'"},
    };
    char path[512];
    tu_temp_path(path, sizeof path, "rules-bad");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        write_file(path, cases[i].text);
        ss_access *a;
        ss_error err = {0};
        assert_int_equal(ss_access_new(&a), 0);
        assert_int_equal(ss_access_add(a, true, "127.0.0.1", NULL), 0);
        int rc = ss_access_load(a, path, &err);
        char want[700];
        snprintf(want, sizeof want, "%s:%s", path, cases[i].want);
        if (rc != SS_EUSAGE || strncmp(err.msg, want, strlen(want)) != 0)
            fail_msg("case %zu: rc %d, '%s', want '%s'", i, rc, err.msg, want);
        /* nothing from the file: 10.x (allowed on its line 1) is still out,
         * the rule that was there still works */
        ss_addr ten = peer("10.0.0.1:1"), lo = peer("127.0.0.1:1");
        assert_false(ss_access_allows(a, &ten));
        assert_true(ss_access_allows(a, &lo));
        ss_access_free(a);
    }

    /* a NUL byte is an error, not the end of the line */
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fwrite("allow 10.0.0.0/8\0 junk\n", 1, 23, f);
    fclose(f);
    ss_access *a;
    ss_error err;
    assert_int_equal(ss_access_new(&a), 0);
    assert_int_equal(ss_access_load(a, path, &err), SS_EUSAGE);
    assert_non_null(strstr(err.msg, ":1: NUL byte"));
    ss_access_free(a);
    unlink(path);
}

static void files_that_cannot_be_read(void **state)
{
    (void)state;
    ss_access *a;
    ss_error err = {0};
    assert_int_equal(ss_access_new(&a), 0);
    int fds = tu_count_fds();

    assert_int_equal(ss_access_load(a, "/nonexistent/rules", &err), -ENOENT);
    assert_string_equal(err.msg, "cannot read /nonexistent/rules: No such file or directory");

    char dir[512];
    tu_temp_path(dir, sizeof dir, "");
    assert_int_equal(ss_access_load(a, dir, &err), -EISDIR);
    assert_non_null(strstr(err.msg, "cannot read "));

    /* /dev/zero: stops at the cap, in bounded memory */
    assert_int_equal(ss_access_load(a, "/dev/zero", &err), -EFBIG);
    assert_string_equal(err.msg, "cannot read /dev/zero: more than 1 MiB");

    /* exactly 1 MiB is fine, one byte more is not */
    char path[512];
    tu_temp_path(path, sizeof path, "rules-big");
    size_t n = 1024 * 1024;
    char *text = malloc(n + 2);
    assert_non_null(text);
    memset(text, ' ', n + 1);
    memcpy(text, "deny 10.0.0.0/8\n#", 17);
    text[n - 1] = '\n';
    text[n] = '\0';
    write_file(path, text);
    assert_int_equal(ss_access_load(a, path, &err), 0);
    text[n] = ' ';
    text[n + 1] = '\0';
    write_file(path, text);
    assert_int_equal(ss_access_load(a, path, &err), -EFBIG);
    assert_non_null(strstr(err.msg, "more than 1 MiB"));
    free(text);
    unlink(path);

    assert_int_equal(tu_count_fds(), fds);
    ss_addr ten = peer("10.0.0.1:1");
    assert_false(ss_access_allows(a, &ten)); /* the 1 MiB file's rule only */
    assert_int_equal(ss_access_load(NULL, path, &err), SS_EUSAGE);
    assert_int_equal(ss_access_load(a, NULL, &err), SS_EUSAGE);
    ss_access_free(a);
}

/* Many rules: the checks stay right (and the scan is over binary rules). */
static void many_rules(void **state)
{
    (void)state;
    ss_access *a;
    assert_int_equal(ss_access_new(&a), 0);
    char cidr[64];
    for (int i = 0; i < 1000; i++) {
        snprintf(cidr, sizeof cidr, "10.%d.%d.0/24", i / 256, i % 256);
        assert_int_equal(ss_access_add(a, true, cidr, NULL), 0);
    }
    ss_addr yes = peer("10.3.231.7:1"), no = peer("10.3.232.7:1");
    assert_true(ss_access_allows(a, &yes));
    assert_false(ss_access_allows(a, &no));
    ss_access_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(cidr_syntax),
        cmocka_unit_test(matching_and_masking),
        cmocka_unit_test(mapped_ipv4_is_ipv4),
        cmocka_unit_test(decisions),
        cmocka_unit_test(unix_peers_are_never_refused),
        cmocka_unit_test(load_a_file),
        cmocka_unit_test(a_bad_file_adds_nothing),
        cmocka_unit_test(files_that_cannot_be_read),
        cmocka_unit_test(many_rules),
    };
    tu_alarm(60);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
