/* SPDX-License-Identifier: MIT */
/* test_error.c — the error table: codes, names and text. */
#include "testutil.h"

#include <errno.h>
#include <string.h>

static void own_codes_have_text_and_names(void **state)
{
    (void)state;
    assert_string_equal(ss_strerror(SS_ETIMEOUT), "timed out");
    assert_string_equal(ss_err_name(SS_ETIMEOUT), "SS_ETIMEOUT");
    assert_string_equal(ss_strerror(SS_EBADADDR), "malformed address");
    assert_string_equal(ss_err_name(SS_EEOF), "SS_EEOF");
    assert_string_equal(ss_strerror(0), "success");
}

static void errno_codes_pass_through(void **state)
{
    (void)state;
    assert_string_equal(ss_strerror(-ECONNREFUSED), "Connection refused");
    assert_string_equal(ss_err_name(-EADDRINUSE), "EADDRINUSE");
    assert_string_equal(ss_strerror(-99999), "unknown error");
    assert_string_equal(ss_err_name(12345), "UNKNOWN");
}

static void own_codes_never_meet_errno(void **state)
{
    (void)state;
#define CHECK(name, value, msg) assert_true((value) < -4095);
    SS_ERROR_TABLE(CHECK)
#undef CHECK
}

static void version_matches_header(void **state)
{
    (void)state;
    assert_string_equal(ss_version(), SS_VERSION_STRING);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(own_codes_have_text_and_names),
        cmocka_unit_test(errno_codes_pass_through),
        cmocka_unit_test(own_codes_never_meet_errno),
        cmocka_unit_test(version_matches_header),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
