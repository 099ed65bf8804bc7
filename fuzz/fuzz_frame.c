/* SPDX-License-Identifier: MIT */
/* fuzz_frame.c — libFuzzer target: the rcmd frame parser, decoders and
 * reader. Any input must be accepted or refused, never crash, read out of
 * bounds or leak; every accepted frame must re-encode to the same bytes. */
#include "rcmd/frame.h"

#include <stdlib.h>
#include <string.h>

static void check_round_trip(const rcmd_frame *f, const uint8_t *wire, size_t n)
{
    static uint8_t out[RCMD_FRAME_MAX];
    ssize_t m = -1;
    switch (f->type) {
    case RCMD_HELLO: {
        rcmd_hello h;
        if (rcmd_hello_decode(f, &h) != 0)
            abort();
        if (h.version == RCMD_VERSION && h.flags == 0)
            m = rcmd_hello_encode(out, sizeof out, h.text);
        break;
    }
    case RCMD_EXEC: {
        int mode;
        char **argv;
        size_t argc;
        if (rcmd_exec_decode(f, &mode, &argv, &argc) != 0)
            abort();
        if (argv[argc] != NULL)
            abort();
        m = rcmd_exec_encode(out, sizeof out, mode, (const char *const *)argv, argc);
        free(argv);
        break;
    }
    case RCMD_STDIN:
    case RCMD_STDOUT:
    case RCMD_STDERR:
    case RCMD_STDIN_EOF: m = rcmd_data_encode(out, sizeof out, f->type, f->payload, f->len); break;
    case RCMD_SIGNAL: {
        int sig;
        if (rcmd_signal_decode(f, &sig) != 0)
            abort();
        m = rcmd_signal_encode(out, sizeof out, sig);
        break;
    }
    case RCMD_EXIT: {
        int kind, value;
        if (rcmd_exit_decode(f, &kind, &value) != 0)
            abort();
        m = rcmd_exit_encode(out, sizeof out, kind, value);
        break;
    }
    case RCMD_ERROR: {
        int code;
        char text[RCMD_ERROR_TEXT_MAX + 1];
        if (rcmd_error_decode(f, &code, text, sizeof text) != 0)
            abort();
        m = rcmd_error_encode(out, sizeof out, code, text);
        break;
    }
    default: abort(); /* the parser let an unknown type through */
    }
    /* HELLO with another version/flags is legal on the wire but our encoder
     * only writes ours: skip it */
    if (m == -1 && f->type == RCMD_HELLO)
        return;
    if (m < 0 || (size_t)m != n || memcmp(out, wire, n) != 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* 1. the parser straight over the input */
    size_t off = 0;
    while (off < size) {
        rcmd_frame f;
        ssize_t n = rcmd_frame_parse(data + off, size - off, &f);
        if (n <= 0)
            break;
        if ((size_t)n > size - off || f.len + RCMD_HEADER_LEN != (size_t)n)
            abort();
        check_round_trip(&f, data + off, (size_t)n);
        off += (size_t)n;
    }

    /* 2. the reader, fed in chunks whose sizes come from the first byte */
    if (size == 0)
        return 0;
    size_t chunk = (size_t)data[0] * 37 + 1;
    rcmd_reader r;
    if (rcmd_reader_init(&r) != 0)
        return 0;
    size_t fed = 1;
    for (;;) {
        rcmd_frame f;
        int rc = rcmd_reader_next(&r, &f);
        if (rc < 0)
            break;
        if (rc == 1)
            continue;
        if (fed >= size)
            break;
        size_t avail;
        uint8_t *space = rcmd_reader_space(&r, &avail);
        if (avail == 0)
            abort();
        size_t n = chunk < avail ? chunk : avail;
        if (n > size - fed)
            n = size - fed;
        memcpy(space, data + fed, n);
        rcmd_reader_commit(&r, n);
        fed += n;
    }
    rcmd_reader_free(&r);
    return 0;
}
