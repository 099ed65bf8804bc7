/* SPDX-License-Identifier: MIT */
/* fuzz_proxy_protocol.c — libFuzzer target: the PROXY protocol parser
 * (src/proxy_protocol.c). Each input is parsed whole, in two pieces split
 * where its first byte says, and byte by byte: the three must agree. Nothing
 * may crash, read out of bounds or take a byte past the header; a header
 * that is accepted must be within the bounds (v1 <= 107 bytes, v2 <= 16 +
 * SS_PROXY_V2_MAX_LEN), every prefix of it must be "more", and the address
 * it carries must format to text that parses back to the same address.
 *
 * Seed: with RCMD_FUZZ_SEED_DIR set (the fuzz tests set it for every
 * target), LLVMFuzzerInitialize writes v1 lines and v2 blocks of every
 * family there, with TLVs and a CRC32C, so the fuzzer starts from the
 * grammar instead of having to find the signature. */
#include "sockserve.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const unsigned char SIG[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                      0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

static void write_seed(const char *dir, int n, const void *data, size_t len)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/seed_%d", dir, n);
    FILE *f = fopen(path, "wb");
    if (f != NULL) {
        fwrite(data, 1, len, f);
        fclose(f);
    }
}

static size_t v2_seed(unsigned char *b, unsigned cmd, unsigned fam, size_t addr_len, bool tlvs)
{
    memcpy(b, SIG, 12);
    b[12] = (unsigned char)cmd;
    b[13] = (unsigned char)fam;
    size_t n = 16;
    for (size_t i = 0; i < addr_len; i++)
        b[n++] = (unsigned char)(i * 37 + 1);
    if (fam >> 4 == 3) { /* unix: NUL-terminated names */
        memcpy(b + 16, "/run/c.sock", 12);
        memcpy(b + 16 + 108, "/run/s.sock", 12);
    }
    size_t crc_at = 0;
    if (tlvs) {
        static const unsigned char t[] = {0x02, 0x00, 0x03, 'a', 'b', 'c', 0x05, 0x00, 0x02, 'i',
                                          'd',  0x20, 0x00, 0x05, 0x01, 0,   0,   0,    0,   0x03,
                                          0x00, 0x04, 0,    0,    0,    0};
        memcpy(b + n, t, sizeof t);
        crc_at = n + sizeof t - 4;
        n += sizeof t;
    }
    b[14] = (unsigned char)((n - 16) >> 8);
    b[15] = (unsigned char)(n - 16);
    if (crc_at != 0) {
        uint32_t crc = ss_crc32c(0, b, n);
        b[crc_at] = (unsigned char)(crc >> 24);
        b[crc_at + 1] = (unsigned char)(crc >> 16);
        b[crc_at + 2] = (unsigned char)(crc >> 8);
        b[crc_at + 3] = (unsigned char)crc;
    }
    return n;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *dir = getenv("RCMD_FUZZ_SEED_DIR");
    if (dir == NULL)
        return 0;
    static const char *lines[] = {
        "PROXY TCP4 192.0.2.1 198.51.100.7 54321 443\r\nGET /",
        "PROXY TCP6 2001:db8::1 ::ffff:10.0.0.1 0 65535\r\n",
        "PROXY UNKNOWN\r\n",
        "PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ::1 1 2\r\n",
    };
    int n = 0;
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++, n++)
        write_seed(dir, n, lines[i], strlen(lines[i]));
    unsigned char b[SS_PROXY_MAX_HEADER];
    static const struct {
        unsigned cmd, fam;
        size_t addr;
    } v2s[] = {{0x21, 0x11, 12}, {0x21, 0x12, 12}, {0x21, 0x21, 36}, {0x21, 0x22, 36},
               {0x21, 0x31, 216}, {0x21, 0x32, 216}, {0x20, 0x00, 0}, {0x21, 0x00, 0}};
    for (size_t i = 0; i < sizeof v2s / sizeof v2s[0]; i++) {
        write_seed(dir, n++, b, v2_seed(b, v2s[i].cmd, v2s[i].fam, v2s[i].addr, false));
        write_seed(dir, n++, b, v2_seed(b, v2s[i].cmd, v2s[i].fam, v2s[i].addr, true));
    }
    return 0;
}

typedef struct outcome {
    int rc;
    size_t used; /* bytes of the input taken, over all the feeds */
    ss_proxy_header h;
    char why[128];
} outcome;

/* Feed `data` in pieces of `step` bytes (the first piece `first`). Each
 * piece is a heap copy of exactly its size, so ASan sees any read past it. */
static outcome feed(const uint8_t *data, size_t size, size_t first, size_t step)
{
    outcome o = {.rc = SS_PROXY_MORE};
    ss_proxy_parser p;
    ss_proxy_init(&p);
    size_t at = 0;
    for (bool first_piece = true; o.rc == SS_PROXY_MORE; first_piece = false) {
        size_t piece = first_piece ? first : step;
        if (piece > size - at)
            piece = size - at;
        unsigned char *copy = malloc(piece > 0 ? piece : 1);
        if (copy == NULL)
            abort();
        memcpy(copy, data + at, piece);
        size_t used = (size_t)-1;
        o.rc = ss_proxy_feed(&p, copy, piece, &used, &o.h);
        free(copy);
        if (used > piece)
            abort();
        if (o.rc == SS_PROXY_MORE && used != piece)
            abort();
        at += used;
        o.used = at;
        if (at == size)
            break;
    }
    snprintf(o.why, sizeof o.why, "%s", ss_proxy_error(&p));
    return o;
}

static void check_address(const ss_addr *a)
{
    char text[SS_ADDR_STRLEN];
    int n = ss_addr_format(a, text, sizeof text);
    if (n < 0 || (size_t)n >= sizeof text)
        abort();
    if (a->kind != SS_ADDR_TCP && a->kind != SS_ADDR_UDP)
        return; /* unix names may hold any byte: not all parse back */
    ss_addr back;
    if (ss_addr_parse(&back, text, SS_ADDR_NUMERIC, NULL) != 0)
        abort();
    if (back.len != a->len || memcmp(&back.u, &a->u, a->len) != 0)
        abort();
}

static bool same(const outcome *a, const outcome *b)
{
    if (a->rc != b->rc)
        return false;
    if (a->rc == SS_EPROTO)
        return strcmp(a->why, b->why) == 0;
    if (a->rc == SS_PROXY_MORE)
        return a->used == b->used;
    return a->used == b->used && a->h.length == b->h.length && a->h.local == b->h.local &&
           a->h.version == b->h.version && a->h.crc32c == b->h.crc32c &&
           a->h.source.len == b->h.source.len &&
           memcmp(&a->h.source.u, &b->h.source.u, a->h.source.len) == 0 &&
           a->h.destination.len == b->h.destination.len &&
           memcmp(&a->h.destination.u, &b->h.destination.u, a->h.destination.len) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    outcome whole = feed(data, size, size, size);
    size_t cut = size > 0 ? data[0] % (size + 1) : 0;
    outcome split = feed(data, size, cut, size);
    outcome bytes = feed(data, size, 1, 1);
    if (!same(&whole, &split) || !same(&whole, &bytes))
        abort();

    switch (whole.rc) {
    case SS_PROXY_MORE:
        if (whole.used != size || size >= SS_PROXY_MAX_HEADER)
            abort();
        break;
    case SS_EPROTO:
        if (whole.why[0] == '\0')
            abort();
        break;
    case SS_PROXY_DONE: {
        const ss_proxy_header *h = &whole.h;
        if (h->length != whole.used || h->length > size)
            abort();
        if (h->version == 1 ? h->length > SS_PROXY_V1_MAX
                            : h->version != 2 || h->length > SS_PROXY_MAX_HEADER)
            abort();
        if (h->local) {
            if (h->source.len != 0 || h->destination.len != 0)
                abort();
        } else {
            check_address(&h->source);
            check_address(&h->destination);
        }
        /* the header alone is the same header; any prefix of it is more */
        ss_proxy_header again;
        if (ss_proxy_parse(data, h->length, &again, NULL) != SS_PROXY_DONE ||
            again.length != h->length)
            abort();
        if (ss_proxy_parse(data, h->length - 1, NULL, NULL) != SS_PROXY_MORE)
            abort();
        break;
    }
    default:
        abort();
    }
    return 0;
}
