/* SPDX-License-Identifier: MIT */
/* test_rcmd_frame.c — the rcmd frame encoder, parser, decoders and reader. */
#include "testutil.h"

#include "rcmd/escape.h"
#include "rcmd/frame.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>

static uint8_t buf[RCMD_FRAME_MAX + 64];

/* Parse exactly one frame that fills `n` bytes; every shorter prefix must
 * ask for more, never fail or read past it. */
static rcmd_frame parse_whole(const uint8_t *b, size_t n)
{
    rcmd_frame f;
    for (size_t cut = 0; cut < n; cut += (n > 4096 ? 997 : 1)) {
        uint8_t *copy = malloc(cut ? cut : 1);
        memcpy(copy, b, cut);
        assert_int_equal(rcmd_frame_parse(copy, cut, &f), 0);
        free(copy);
    }
    assert_int_equal(rcmd_frame_parse(b, n, &f), (ssize_t)n);
    return f;
}

static void hello_round_trip(void **state)
{
    (void)state;
    ssize_t n = rcmd_hello_encode(buf, sizeof buf, "sockserve 0.1.0");
    assert_int_equal(n, RCMD_HEADER_LEN + 6 + 15);
    rcmd_frame f = parse_whole(buf, (size_t)n);
    assert_int_equal(f.type, RCMD_HELLO);
    rcmd_hello h;
    assert_int_equal(rcmd_hello_decode(&f, &h), 0);
    assert_int_equal(h.version, RCMD_VERSION);
    assert_int_equal(h.flags, 0);
    assert_string_equal(h.text, "sockserve 0.1.0");

    /* no text; and a text cut at its bound */
    n = rcmd_hello_encode(buf, sizeof buf, NULL);
    assert_int_equal(n, RCMD_HEADER_LEN + 6);
    char longtext[200];
    memset(longtext, 'x', sizeof longtext - 1);
    longtext[sizeof longtext - 1] = '\0';
    n = rcmd_hello_encode(buf, sizeof buf, longtext);
    assert_int_equal(n, RCMD_HEADER_LEN + 6 + RCMD_HELLO_TEXT_MAX);
    f = parse_whole(buf, (size_t)n);
    assert_int_equal(rcmd_hello_decode(&f, &h), 0);
    assert_int_equal(strlen(h.text), RCMD_HELLO_TEXT_MAX);
}

static void hello_bad_magic_is_refused(void **state)
{
    (void)state;
    ssize_t n = rcmd_hello_encode(buf, sizeof buf, "x");
    buf[RCMD_HEADER_LEN] = 'X';
    rcmd_frame f;
    assert_int_equal(rcmd_frame_parse(buf, (size_t)n, &f), SS_EPROTO);
}

static void exec_argv_round_trip(void **state)
{
    (void)state;
    const char *argv[] = {"ls", "-l", "", "a b\x01"};
    ssize_t n = rcmd_exec_encode(buf, sizeof buf, RCMD_EXEC_ARGV, argv, 4);
    assert_true(n > 0);
    rcmd_frame f = parse_whole(buf, (size_t)n);
    int mode;
    char **v;
    size_t argc;
    assert_int_equal(rcmd_exec_decode(&f, &mode, &v, &argc), 0);
    assert_int_equal(mode, RCMD_EXEC_ARGV);
    assert_int_equal(argc, 4);
    for (size_t i = 0; i < 4; i++)
        assert_string_equal(v[i], argv[i]);
    assert_null(v[4]);
    free(v);
}

static void exec_shell_round_trip(void **state)
{
    (void)state;
    const char *line[] = {"echo hi | wc -c"};
    ssize_t n = rcmd_exec_encode(buf, sizeof buf, RCMD_EXEC_SHELL, line, 1);
    rcmd_frame f = parse_whole(buf, (size_t)n);
    int mode;
    char **v;
    size_t argc;
    assert_int_equal(rcmd_exec_decode(&f, &mode, &v, &argc), 0);
    assert_int_equal(mode, RCMD_EXEC_SHELL);
    assert_int_equal(argc, 1);
    assert_string_equal(v[0], line[0]);
    free(v);
    /* shell mode takes exactly one string */
    const char *two[] = {"a", "b"};
    assert_int_equal(rcmd_exec_encode(buf, sizeof buf, RCMD_EXEC_SHELL, two, 2), SS_EUSAGE);
}

static void exec_bad_payloads_are_refused(void **state)
{
    (void)state;
    rcmd_frame f;
    /* mode 2 */
    uint8_t b1[] = {RCMD_EXEC, 0, 0, 0, 3, 2, 'a', 0};
    assert_int_equal(rcmd_frame_parse(b1, sizeof b1, &f), SS_EPROTO);
    /* last string not terminated */
    uint8_t b2[] = {RCMD_EXEC, 0, 0, 0, 3, 0, 'a', 'b'};
    assert_int_equal(rcmd_frame_parse(b2, sizeof b2, &f), SS_EPROTO);
    /* empty argv[0] */
    uint8_t b3[] = {RCMD_EXEC, 0, 0, 0, 3, 0, 0, 0};
    assert_int_equal(rcmd_frame_parse(b3, sizeof b3, &f), SS_EPROTO);
    /* shell with two strings */
    uint8_t b4[] = {RCMD_EXEC, 0, 0, 0, 5, 1, 'a', 0, 'b', 0};
    assert_int_equal(rcmd_frame_parse(b4, sizeof b4, &f), SS_EPROTO);
    /* too short */
    uint8_t b5[] = {RCMD_EXEC, 0, 0, 0, 1, 0};
    assert_int_equal(rcmd_frame_parse(b5, sizeof b5, &f), SS_EPROTO);
    /* empty later arguments are fine */
    uint8_t b6[] = {RCMD_EXEC, 0, 0, 0, 4, 0, 'a', 0, 0};
    assert_int_equal(rcmd_frame_parse(b6, sizeof b6, &f), (ssize_t)sizeof b6);
}

static void exec_too_many_args(void **state)
{
    (void)state;
    size_t n = RCMD_MAX_ARGS + 1;
    const char **argv = calloc(n, sizeof *argv);
    for (size_t i = 0; i < n; i++)
        argv[i] = "x";
    assert_int_equal(rcmd_exec_encode(buf, sizeof buf, RCMD_EXEC_ARGV, argv, n), SS_ETOOLONG);
    ssize_t len = rcmd_exec_encode(buf, sizeof buf, RCMD_EXEC_ARGV, argv, n - 1);
    assert_true(len > 0);
    rcmd_frame f;
    assert_int_equal(rcmd_frame_parse(buf, (size_t)len, &f), len);
    /* the same on the wire with one more "x\0": refused */
    uint8_t *big = malloc((size_t)len + 2);
    memcpy(big, buf, (size_t)len);
    big[len] = 'x';
    big[len + 1] = 0;
    rcmd_header_encode(big, RCMD_EXEC, (uint32_t)(len + 2 - RCMD_HEADER_LEN));
    assert_int_equal(rcmd_frame_parse(big, (size_t)len + 2, &f), SS_EPROTO);
    free(big);
    free(argv);
}

static void exec_too_long(void **state)
{
    (void)state;
    char *arg = malloc(RCMD_MAX_PAYLOAD);
    memset(arg, 'a', RCMD_MAX_PAYLOAD - 1);
    arg[RCMD_MAX_PAYLOAD - 1] = '\0';
    const char *argv[] = {arg};
    /* 1 (mode) + 65535 + 1 (NUL) = 65537 > bound */
    assert_int_equal(rcmd_exec_encode(buf, sizeof buf, RCMD_EXEC_ARGV, argv, 1), SS_ETOOLONG);
    arg[RCMD_MAX_PAYLOAD - 2] = '\0';
    ssize_t n = rcmd_exec_encode(buf, sizeof buf, RCMD_EXEC_ARGV, argv, 1);
    assert_int_equal(n, RCMD_FRAME_MAX);
    parse_whole(buf, (size_t)n);
    /* and a buffer too small says so */
    assert_int_equal(rcmd_exec_encode(buf, 100, RCMD_EXEC_ARGV, argv, 1), SS_ETOOLONG);
    free(arg);
}

static void data_frames_round_trip(void **state)
{
    (void)state;
    const uint8_t types[] = {RCMD_STDIN, RCMD_STDOUT, RCMD_STDERR};
    static uint8_t data[RCMD_MAX_PAYLOAD];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)(i * 7);
    for (size_t t = 0; t < 3; t++) {
        size_t sizes[] = {0, 1, 1000, RCMD_MAX_PAYLOAD};
        for (size_t s = 0; s < 4; s++) {
            ssize_t n = rcmd_data_encode(buf, sizeof buf, types[t], data, sizes[s]);
            assert_int_equal(n, RCMD_HEADER_LEN + sizes[s]);
            rcmd_frame f = parse_whole(buf, (size_t)n);
            assert_int_equal(f.type, types[t]);
            assert_int_equal(f.len, sizes[s]);
            if (sizes[s])
                assert_memory_equal(f.payload, data, sizes[s]);
        }
        assert_int_equal(rcmd_data_encode(buf, sizeof buf, types[t], data, RCMD_MAX_PAYLOAD + 1),
                         SS_ETOOLONG);
    }
    ssize_t n = rcmd_data_encode(buf, sizeof buf, RCMD_STDIN_EOF, NULL, 0);
    assert_int_equal(n, RCMD_HEADER_LEN);
    rcmd_frame f = parse_whole(buf, (size_t)n);
    assert_int_equal(f.type, RCMD_STDIN_EOF);
    assert_int_equal(rcmd_data_encode(buf, sizeof buf, RCMD_STDIN_EOF, "x", 1), SS_ETOOLONG);
    assert_int_equal(rcmd_data_encode(buf, sizeof buf, RCMD_EXIT, "x", 1), SS_EUSAGE);
}

static void signal_round_trip(void **state)
{
    (void)state;
    const int ok[] = {SIGHUP, SIGINT, SIGQUIT, SIGKILL, SIGUSR1, SIGUSR2, SIGTERM};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        ssize_t n = rcmd_signal_encode(buf, sizeof buf, ok[i]);
        assert_int_equal(n, RCMD_HEADER_LEN + 1);
        rcmd_frame f = parse_whole(buf, (size_t)n);
        int sig;
        assert_int_equal(rcmd_signal_decode(&f, &sig), 0);
        assert_int_equal(sig, ok[i]);
    }
    assert_int_equal(rcmd_signal_encode(buf, sizeof buf, SIGSTOP), SS_EUSAGE);
    uint8_t b[] = {RCMD_SIGNAL, 0, 0, 0, 1, SIGSEGV};
    rcmd_frame f;
    assert_int_equal(rcmd_frame_parse(b, sizeof b, &f), SS_EPROTO);
    uint8_t z[] = {RCMD_SIGNAL, 0, 0, 0, 1, 0};
    assert_int_equal(rcmd_frame_parse(z, sizeof z, &f), SS_EPROTO);
}

static void exit_round_trip(void **state)
{
    (void)state;
    const int cases[][2] = {{RCMD_EXIT_CODE, 0},   {RCMD_EXIT_CODE, 1},   {RCMD_EXIT_CODE, 127},
                            {RCMD_EXIT_CODE, 255}, {RCMD_EXIT_SIGNAL, 9}, {RCMD_EXIT_SIGNAL, 127}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ssize_t n = rcmd_exit_encode(buf, sizeof buf, cases[i][0], cases[i][1]);
        assert_int_equal(n, RCMD_HEADER_LEN + 2);
        rcmd_frame f = parse_whole(buf, (size_t)n);
        int kind, value;
        assert_int_equal(rcmd_exit_decode(&f, &kind, &value), 0);
        assert_int_equal(kind, cases[i][0]);
        assert_int_equal(value, cases[i][1]);
    }
    assert_int_equal(rcmd_exit_encode(buf, sizeof buf, RCMD_EXIT_CODE, 256), SS_EUSAGE);
    assert_int_equal(rcmd_exit_encode(buf, sizeof buf, RCMD_EXIT_SIGNAL, 0), SS_EUSAGE);
    assert_int_equal(rcmd_exit_encode(buf, sizeof buf, 2, 0), SS_EUSAGE);
    rcmd_frame f;
    uint8_t b[] = {RCMD_EXIT, 0, 0, 0, 2, 2, 0};
    assert_int_equal(rcmd_frame_parse(b, sizeof b, &f), SS_EPROTO);
    uint8_t s[] = {RCMD_EXIT, 0, 0, 0, 2, 1, 200};
    assert_int_equal(rcmd_frame_parse(s, sizeof s, &f), SS_EPROTO);
}

static void error_round_trip(void **state)
{
    (void)state;
    ssize_t n = rcmd_error_encode(buf, sizeof buf, RCMD_ERR_DENIED, "not allowed: rm");
    rcmd_frame f = parse_whole(buf, (size_t)n);
    int code;
    char text[RCMD_ERROR_TEXT_MAX + 1];
    assert_int_equal(rcmd_error_decode(&f, &code, text, sizeof text), 0);
    assert_int_equal(code, RCMD_ERR_DENIED);
    assert_string_equal(text, "not allowed: rm");
    /* a small buffer cuts */
    char small[4];
    assert_int_equal(rcmd_error_decode(&f, &code, small, sizeof small), 0);
    assert_string_equal(small, "not");

    /* a long text is cut at the bound, never inside a UTF-8 sequence */
    char *longtext = malloc(3000);
    for (size_t i = 0; i + 2 < 3000; i += 2) {
        longtext[i] = (char)0xc3;
        longtext[i + 1] = (char)0xa9; /* é */
    }
    longtext[1] = 'a'; /* shift by one so the cut falls inside a pair */
    longtext[2998] = 'z';
    longtext[2999] = '\0';
    n = rcmd_error_encode(buf, sizeof buf, RCMD_ERR_INTERNAL, longtext + 1);
    assert_true(n > 0 && n <= RCMD_HEADER_LEN + 2 + RCMD_ERROR_TEXT_MAX);
    f = parse_whole(buf, (size_t)n);
    assert_int_not_equal(f.payload[f.len - 1] & 0xff, 0xc3);
    free(longtext);

    assert_int_equal(rcmd_error_encode(buf, sizeof buf, 0, "x"), SS_EUSAGE);
    /* code 0 and an embedded NUL are refused on the wire */
    uint8_t z[] = {RCMD_ERROR, 0, 0, 0, 2, 0, 0};
    assert_int_equal(rcmd_frame_parse(z, sizeof z, &f), SS_EPROTO);
    uint8_t nul[] = {RCMD_ERROR, 0, 0, 0, 4, 0, 1, 'a', 0};
    assert_int_equal(rcmd_frame_parse(nul, sizeof nul, &f), SS_EPROTO);
}

static void oversized_lengths_are_refused_from_the_header(void **state)
{
    (void)state;
    rcmd_frame f;
    for (int t = RCMD_HELLO; t <= RCMD_ERROR; t++) {
        uint8_t b[RCMD_HEADER_LEN] = {(uint8_t)t, 0xff, 0xff, 0xff, 0xff};
        /* the header alone is enough to refuse: no payload needed */
        assert_int_equal(rcmd_frame_parse(b, sizeof b, &f), SS_EPROTO);
        uint8_t type;
        uint32_t len;
        assert_int_equal(rcmd_header_check(b, &type, &len), SS_EPROTO);
    }
    /* one past the payload bound */
    uint8_t b[RCMD_HEADER_LEN];
    rcmd_header_encode(b, RCMD_STDOUT, RCMD_MAX_PAYLOAD + 1);
    assert_int_equal(rcmd_frame_parse(b, sizeof b, &f), SS_EPROTO);
    rcmd_header_encode(b, RCMD_STDOUT, RCMD_MAX_PAYLOAD);
    assert_int_equal(rcmd_frame_parse(b, sizeof b, &f), 0); /* wants more */
    /* fixed-size types refuse every other length */
    rcmd_header_encode(b, RCMD_EXIT, 3);
    assert_int_equal(rcmd_frame_parse(b, sizeof b, &f), SS_EPROTO);
    rcmd_header_encode(b, RCMD_STDIN_EOF, 1);
    assert_int_equal(rcmd_frame_parse(b, sizeof b, &f), SS_EPROTO);
}

static void unknown_types_are_refused(void **state)
{
    (void)state;
    rcmd_frame f;
    const uint8_t bad[] = {0x00, 0x0a, 0x10, 0x7f, 0x80, 0xff};
    for (size_t i = 0; i < sizeof bad; i++) {
        uint8_t b[] = {bad[i], 0, 0, 0, 0};
        assert_int_equal(rcmd_frame_parse(b, sizeof b, &f), SS_EPROTO);
        assert_null(rcmd_type_name(bad[i]));
    }
    assert_string_equal(rcmd_type_name(RCMD_EXEC), "EXEC");
}

static void truncated_frames_ask_for_more(void **state)
{
    (void)state;
    rcmd_frame f;
    assert_int_equal(rcmd_frame_parse(buf, 0, &f), 0);
    ssize_t n = rcmd_data_encode(buf, sizeof buf, RCMD_STDOUT, "hello", 5);
    for (ssize_t i = 0; i < n; i++)
        assert_int_equal(rcmd_frame_parse(buf, (size_t)i, &f), 0);
}

static void reader_splits_a_stream_in_any_chunks(void **state)
{
    (void)state;
    /* A stream of many frames, fed in odd-sized chunks. */
    size_t total = 0;
    static uint8_t stream[4 * RCMD_FRAME_MAX];
    const char *argv[] = {"cat"};
    total += (size_t)rcmd_hello_encode(stream + total, sizeof stream - total, "t");
    total += (size_t)rcmd_exec_encode(stream + total, sizeof stream - total, 0, argv, 1);
    static uint8_t big[RCMD_MAX_PAYLOAD];
    memset(big, 'b', sizeof big);
    total += (size_t)rcmd_data_encode(stream + total, sizeof stream - total, RCMD_STDIN, big,
                                      sizeof big);
    total += (size_t)rcmd_data_encode(stream + total, sizeof stream - total, RCMD_STDIN, "x", 1);
    total += (size_t)rcmd_data_encode(stream + total, sizeof stream - total, RCMD_STDIN, big,
                                      sizeof big);
    total +=
        (size_t)rcmd_data_encode(stream + total, sizeof stream - total, RCMD_STDIN_EOF, NULL, 0);
    total += (size_t)rcmd_signal_encode(stream + total, sizeof stream - total, SIGINT);
    const uint8_t want[] = {RCMD_HELLO, RCMD_EXEC,      RCMD_STDIN, RCMD_STDIN,
                            RCMD_STDIN, RCMD_STDIN_EOF, RCMD_SIGNAL};

    const size_t chunks[] = {1, 3, 5, 4096, 70001, 65541, 131072};
    for (size_t c = 0; c < sizeof chunks / sizeof chunks[0]; c++) {
        rcmd_reader r;
        assert_int_equal(rcmd_reader_init(&r), 0);
        size_t fed = 0, got = 0, bytes_in = 0;
        while (got < sizeof want) {
            rcmd_frame f;
            int rc = rcmd_reader_next(&r, &f);
            assert_true(rc >= 0);
            if (rc == 1) {
                assert_int_equal(f.type, want[got]);
                if (f.type == RCMD_STDIN)
                    bytes_in += f.len;
                got++;
                continue;
            }
            assert_true(fed < total);
            size_t avail;
            uint8_t *space = rcmd_reader_space(&r, &avail);
            assert_true(avail >= 1);
            size_t n = chunks[c] < avail ? chunks[c] : avail;
            if (n > total - fed)
                n = total - fed;
            memcpy(space, stream + fed, n);
            rcmd_reader_commit(&r, n);
            fed += n;
        }
        assert_int_equal(fed, total);
        assert_int_equal(rcmd_reader_pending(&r), 0);
        assert_int_equal(bytes_in, 2 * sizeof big + 1);
        rcmd_reader_free(&r);
    }
}

static void reader_reports_a_bad_frame(void **state)
{
    (void)state;
    rcmd_reader r;
    assert_int_equal(rcmd_reader_init(&r), 0);
    size_t avail;
    uint8_t *space = rcmd_reader_space(&r, &avail);
    const uint8_t junk[] = {0x42, 0xff, 0xff, 0xff, 0xff};
    memcpy(space, junk, sizeof junk);
    rcmd_reader_commit(&r, sizeof junk);
    rcmd_frame f;
    assert_int_equal(rcmd_reader_next(&r, &f), SS_EPROTO);
    rcmd_reader_free(&r);
}

static void escape_makes_bytes_printable(void **state)
{
    (void)state;
    char out[64];
    assert_int_equal(rcmd_escape(out, sizeof out, "a\nb\"\\\x1b[0m\xc3\xa9", 11), 25);
    assert_string_equal(out, "a\\x0ab\\\"\\\\\\x1b[0m\\xc3\\xa9");
    char tiny[8];
    rcmd_escape(tiny, sizeof tiny, "abcdefghijkl", 12);
    assert_string_equal(tiny, "abcd...");

    char *argv[] = {"ls", "-l", "x\ny"};
    rcmd_format_command(out, sizeof out, RCMD_EXEC_ARGV, argv, 3, 512);
    assert_string_equal(out, "\"ls\" \"-l\" \"x\\x0ay\"");
    char *line[] = {"echo hi"};
    rcmd_format_command(out, sizeof out, RCMD_EXEC_SHELL, line, 1, 512);
    assert_string_equal(out, "sh:\"echo hi\"");
    rcmd_format_command(out, sizeof out, RCMD_EXEC_SHELL, line, 1, 4);
    assert_string_equal(out, "sh:\"echo\"...");
}

int main(void)
{
    tu_alarm(60);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(hello_round_trip),
        cmocka_unit_test(hello_bad_magic_is_refused),
        cmocka_unit_test(exec_argv_round_trip),
        cmocka_unit_test(exec_shell_round_trip),
        cmocka_unit_test(exec_bad_payloads_are_refused),
        cmocka_unit_test(exec_too_many_args),
        cmocka_unit_test(exec_too_long),
        cmocka_unit_test(data_frames_round_trip),
        cmocka_unit_test(signal_round_trip),
        cmocka_unit_test(exit_round_trip),
        cmocka_unit_test(error_round_trip),
        cmocka_unit_test(oversized_lengths_are_refused_from_the_header),
        cmocka_unit_test(unknown_types_are_refused),
        cmocka_unit_test(truncated_frames_ask_for_more),
        cmocka_unit_test(reader_splits_a_stream_in_any_chunks),
        cmocka_unit_test(reader_reports_a_bad_frame),
        cmocka_unit_test(escape_makes_bytes_printable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
