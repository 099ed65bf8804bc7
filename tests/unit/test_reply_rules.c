/* SPDX-License-Identifier: MIT */
/* test_reply_rules.c — `sockserve reply`'s MATCH=REPLY rules: parsing, files, matching. */
#include "testutil.h"
#include "reply/rules.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const char *match(const reply_rules *r, const char *msg)
{
    static char out[256];
    const char *text;
    size_t len;
    if (!reply_rules_match(r, msg, strlen(msg), &text, &len))
        return NULL;
    assert_true(len < sizeof out);
    memcpy(out, text, len);
    out[len] = '\0';
    return out;
}

static void first_matching_rule_wins(void **state)
{
    (void)state;
    reply_rules r;
    char why[128];
    reply_rules_init(&r);
    assert_int_equal(reply_rules_add(&r, "nihao=hello,baby,nihao", why, sizeof why), 0);
    assert_int_equal(reply_rules_add(&r, "sb=sb,to you", why, sizeof why), 0);
    assert_string_equal(match(&r, "nihao"), "hello,baby,nihao");
    assert_string_equal(match(&r, "xx sb nihao"), "hello,baby,nihao"); /* order, not position */
    assert_string_equal(match(&r, "say sb"), "sb,to you");
    assert_null(match(&r, "other")); /* no default: no reply */
    assert_int_equal(reply_rules_set_default(&r, "input exit to exit"), 0);
    assert_string_equal(match(&r, "other"), "input exit to exit");
    assert_string_equal(match(&r, ""), "input exit to exit");
    reply_rules_free(&r);
}

static void split_at_first_equals(void **state)
{
    (void)state;
    reply_rules r;
    char why[128];
    reply_rules_init(&r);
    assert_int_equal(reply_rules_add(&r, "a=b=c", why, sizeof why), 0);
    assert_int_equal(reply_rules_add(&r, "q=", why, sizeof why), 0);
    assert_string_equal(match(&r, "xax"), "b=c");
    assert_string_equal(match(&r, "q"), "");
    assert_int_equal(reply_rules_add(&r, "no equals", why, sizeof why), -1);
    assert_string_equal(why, "expected MATCH=REPLY");
    assert_int_equal(reply_rules_add(&r, "=x", why, sizeof why), -1);
    assert_non_null(strstr(why, "empty MATCH"));
    assert_int_equal(r.count, 2);
    reply_rules_free(&r);
}

static void stop_word_ignores_one_line_ending(void **state)
{
    (void)state;
    reply_rules r;
    reply_rules_init(&r);
    assert_false(reply_rules_is_stop(&r, "exit", 4));
    assert_int_equal(reply_rules_set_stop(&r, "exit"), 0);
    assert_true(reply_rules_is_stop(&r, "exit", 4));
    assert_true(reply_rules_is_stop(&r, "exit\n", 5));
    assert_true(reply_rules_is_stop(&r, "exit\r\n", 6));
    assert_false(reply_rules_is_stop(&r, "exit\n\n", 6));
    assert_false(reply_rules_is_stop(&r, " exit", 5));
    assert_false(reply_rules_is_stop(&r, "exi", 3));
    assert_false(reply_rules_is_stop(&r, "exits", 5));
    reply_rules_free(&r);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void rules_file_comments_blanks_and_crlf(void **state)
{
    (void)state;
    char path[512], why[1024];
    tu_temp_path(path, sizeof path, "rules.txt");
    write_file(path, "# the seed's rules\n\nnihao=hello,baby,nihao\r\n   # indented comment\n"
                     "sb=sb,to you # not a comment\n  =lead=kept\n");
    reply_rules r;
    reply_rules_init(&r);
    assert_int_equal(reply_rules_load(&r, path, why, sizeof why), 0);
    assert_int_equal(r.count, 3);
    assert_string_equal(match(&r, "nihao"), "hello,baby,nihao"); /* \r dropped */
    assert_string_equal(match(&r, "sb"), "sb,to you # not a comment");
    assert_string_equal(match(&r, "  "), "lead=kept"); /* spaces are part of MATCH */
    reply_rules_free(&r);
    unlink(path);
}

static void rules_file_errors_name_file_and_line(void **state)
{
    (void)state;
    char path[512], why[1024], want[1100];
    tu_temp_path(path, sizeof path, "bad.txt");
    write_file(path, "a=b\n# c\nnot a rule\nz=y\n");
    reply_rules r;
    reply_rules_init(&r);
    assert_int_equal(reply_rules_load(&r, path, why, sizeof why), -1);
    snprintf(want, sizeof want, "%s:3: expected MATCH=REPLY", path);
    assert_string_equal(why, want);
    reply_rules_free(&r);
    unlink(path);

    reply_rules_init(&r);
    assert_int_equal(reply_rules_load(&r, "/nonexistent/rules.txt", why, sizeof why), -1);
    assert_string_equal(why, "cannot open /nonexistent/rules.txt: No such file or directory");
    reply_rules_free(&r);
}

static void line_ending(void **state)
{
    (void)state;
    assert_int_equal(reply_line_ending("a\n", 2), 1);
    assert_int_equal(reply_line_ending("a\r\n", 3), 2);
    assert_int_equal(reply_line_ending("\n", 1), 1);
    assert_int_equal(reply_line_ending("a", 1), 0);
    assert_int_equal(reply_line_ending("", 0), 0);
}

int main(void)
{
    tu_alarm(30);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(first_matching_rule_wins),
        cmocka_unit_test(split_at_first_equals),
        cmocka_unit_test(stop_word_ignores_one_line_ending),
        cmocka_unit_test(rules_file_comments_blanks_and_crlf),
        cmocka_unit_test(rules_file_errors_name_file_and_line),
        cmocka_unit_test(line_ending),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
