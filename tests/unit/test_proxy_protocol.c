/* SPDX-License-Identifier: MIT */
/* test_proxy_protocol.c — the PROXY protocol parser: valid v1 and v2 headers
 * of every family, LOCAL and UNKNOWN, every malformed case with its reason,
 * every split of every header, CRC32C good and bad, and the bounds: nothing
 * is read past what was given, nothing is taken past the header, and a
 * length is refused before the bytes it announces. */
#include "testutil.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- an independent CRC32C and a v2 header builder ---------------------- */

/* Bit by bit, straight from the polynomial: not the library's table. */
static uint32_t crc32c_bitwise(const unsigned char *p, size_t n)
{
    uint32_t crc = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        for (int k = 0; k < 8; k++)
            crc = (crc & 1) ? (crc >> 1) ^ 0x82f63b78u : crc >> 1;
    }
    return ~crc;
}

static const unsigned char SIG[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                      0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

typedef struct hdr {
    unsigned char b[SS_PROXY_MAX_HEADER + 64];
    size_t n;
} hdr;

/* Signature, ver_cmd, fam, then `body` (addresses and TLVs) with the length
 * field set to its size. */
static void v2(hdr *h, unsigned ver_cmd, unsigned fam, const void *body, size_t len)
{
    memcpy(h->b, SIG, 12);
    h->b[12] = (unsigned char)ver_cmd;
    h->b[13] = (unsigned char)fam;
    h->b[14] = (unsigned char)(len >> 8);
    h->b[15] = (unsigned char)len;
    if (len > 0)
        memcpy(h->b + 16, body, len);
    h->n = 16 + len;
}

/* Append a TLV and fix the length field. */
static void tlv(hdr *h, unsigned type, const void *value, size_t len)
{
    h->b[h->n] = (unsigned char)type;
    h->b[h->n + 1] = (unsigned char)(len >> 8);
    h->b[h->n + 2] = (unsigned char)len;
    if (len > 0)
        memcpy(h->b + h->n + 3, value, len);
    h->n += 3 + len;
    h->b[14] = (unsigned char)((h->n - 16) >> 8);
    h->b[15] = (unsigned char)(h->n - 16);
}

/* Append a CRC32C TLV holding the right checksum (or `wrong` xored in). */
static void crc_tlv(hdr *h, uint32_t wrong)
{
    static const unsigned char zero[4];
    tlv(h, 0x03, zero, 4);
    uint32_t crc = crc32c_bitwise(h->b, h->n) ^ wrong;
    unsigned char *v = h->b + h->n - 4;
    v[0] = (unsigned char)(crc >> 24);
    v[1] = (unsigned char)(crc >> 16);
    v[2] = (unsigned char)(crc >> 8);
    v[3] = (unsigned char)crc;
}

static const unsigned char INET_BODY[12] = {192,  0,    2,   1, /* src 192.0.2.1 */
                                            198,  51,   100, 7, /* dst 198.51.100.7 */
                                            0xd4, 0x31,         /* 54321 */
                                            0x01, 0xbb};        /* 443 */

static void inet6_body(unsigned char b[36])
{
    inet_pton(AF_INET6, "2001:db8::1", b);
    inet_pton(AF_INET6, "2001:db8:ffff::2", b + 16);
    b[32] = 0x04, b[33] = 0xd2; /* 1234 */
    b[34] = 0x00, b[35] = 0x50; /* 80 */
}

static void unix_body(unsigned char b[216], const char *src, size_t srclen, const char *dst)
{
    memset(b, 0, 216);
    memcpy(b, src, srclen);
    memcpy(b + 108, dst, strlen(dst));
}

static char *text_of(const ss_addr *a)
{
    static char buf[4][SS_ADDR_STRLEN];
    static int k;
    char *t = buf[k++ % 4];
    if (ss_addr_format(a, t, SS_ADDR_STRLEN) < 0)
        snprintf(t, SS_ADDR_STRLEN, "(unformattable)");
    return t;
}

/* Feed `len` bytes from a heap copy of exactly that size (ASan sees any read
 * past it). */
static int feed_exact(ss_proxy_parser *p, const void *data, size_t len, size_t *used,
                      ss_proxy_header *out)
{
    unsigned char *copy = malloc(len > 0 ? len : 1);
    assert_non_null(copy);
    memcpy(copy, data, len);
    int rc = ss_proxy_feed(p, copy, len, used, out);
    free(copy);
    return rc;
}

static void expect_done(const void *buf, size_t len, size_t want_len, ss_proxy_header *out)
{
    ss_proxy_parser p;
    ss_proxy_init(&p);
    size_t used = 99999;
    int rc = feed_exact(&p, buf, len, &used, out);
    if (rc != SS_PROXY_DONE)
        fail_msg("rc %d (%s)", rc, ss_proxy_error(&p));
    assert_int_equal(used, want_len);
    assert_int_equal(out->length, want_len);
}

/* Refused with `why` in the reason, whether given whole or byte by byte. */
static void expect_refused(const void *buf, size_t len, const char *why)
{
    ss_proxy_parser p;
    ss_proxy_init(&p);
    size_t used;
    ss_proxy_header h;
    int rc = feed_exact(&p, buf, len, &used, &h);
    if (rc != SS_EPROTO || strstr(ss_proxy_error(&p), why) == NULL)
        fail_msg("rc %d, reason '%s', wanted '%s'", rc, ss_proxy_error(&p), why);
    assert_true(used <= len);
    /* stays failed */
    assert_int_equal(ss_proxy_feed(&p, "x", 1, &used, &h), SS_EPROTO);

    ss_proxy_init(&p);
    rc = SS_PROXY_MORE;
    for (size_t i = 0; i < len && rc == SS_PROXY_MORE; i++)
        rc = feed_exact(&p, (const unsigned char *)buf + i, 1, &used, &h);
    if (rc != SS_EPROTO || strstr(ss_proxy_error(&p), why) == NULL)
        fail_msg("byte by byte: rc %d, reason '%s', wanted '%s'", rc, ss_proxy_error(&p), why);
}

/* ---- CRC32C -------------------------------------------------------------- */

static void crc32c_values(void **state)
{
    (void)state;
    assert_int_equal(ss_crc32c(0, "123456789", 9), 0xe3069283u);
    assert_int_equal(ss_crc32c(0, "", 0), 0);
    /* RFC 3720 B.4: 32 bytes of zeros, of 0xff */
    unsigned char z[32] = {0}, f[32];
    memset(f, 0xff, sizeof f);
    assert_int_equal(ss_crc32c(0, z, 32), 0x8a9136aau);
    assert_int_equal(ss_crc32c(0, f, 32), 0x62a8ab43u);
    /* in pieces = at once, and the table agrees with the polynomial */
    unsigned char buf[1000];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (unsigned char)(i * 131 + 7);
    for (size_t cut = 0; cut <= sizeof buf; cut += 97)
        assert_int_equal(ss_crc32c(ss_crc32c(0, buf, cut), buf + cut, sizeof buf - cut),
                         crc32c_bitwise(buf, sizeof buf));
}

/* ---- v1 ---------------------------------------------------------------------- */

static void v1_valid(void **state)
{
    (void)state;
    ss_proxy_header h;
    const char *l4 = "PROXY TCP4 192.0.2.1 198.51.100.7 54321 443\r\n";
    expect_done(l4, strlen(l4), strlen(l4), &h);
    assert_int_equal(h.version, 1);
    assert_false(h.local);
    assert_false(h.crc32c);
    assert_string_equal(text_of(&h.source), "tcp://192.0.2.1:54321");
    assert_string_equal(text_of(&h.destination), "tcp://198.51.100.7:443");

    const char *l6 = "PROXY TCP6 2001:db8::1 ::1 0 65535\r\n";
    expect_done(l6, strlen(l6), strlen(l6), &h);
    assert_string_equal(text_of(&h.source), "tcp://[2001:db8::1]:0");
    assert_string_equal(text_of(&h.destination), "tcp://[::1]:65535");

    const char *mapped = "PROXY TCP6 ::ffff:10.1.2.3 ::1 1 2\r\n";
    expect_done(mapped, strlen(mapped), strlen(mapped), &h);
    assert_string_equal(text_of(&h.source), "tcp://[::ffff:10.1.2.3]:1");

    const char *unk = "PROXY UNKNOWN\r\n";
    expect_done(unk, strlen(unk), strlen(unk), &h);
    assert_true(h.local);
    assert_int_equal(h.source.len, 0);

    /* the longest line the spec allows: UNKNOWN with the longest addresses */
    const char *longest = "PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
                          "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
    assert_int_equal(strlen(longest), SS_PROXY_V1_MAX);
    expect_done(longest, strlen(longest), SS_PROXY_V1_MAX, &h);
    assert_true(h.local);

    /* data after the header is not taken */
    char with_data[128];
    snprintf(with_data, sizeof with_data, "%sGET / HTTP/1.0\r\n", l4);
    expect_done(with_data, strlen(with_data), strlen(l4), &h);
    assert_string_equal(text_of(&h.source), "tcp://192.0.2.1:54321");
}

static void v1_malformed(void **state)
{
    (void)state;
    static const struct {
        const char *in, *why;
    } bad[] = {
        {"GET / HTTP/1.1\r\n", "not a PROXY protocol header"},
        {"proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n", "not a PROXY protocol header"},
        {"PROXY\r\n", "not a PROXY protocol header"},
        {"PROXYTCP4 1.2.3.4 5.6.7.8 1 2\r\n", "not a PROXY protocol header"},
        {"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", "does not end in CRLF"},
        {"PROXY \n", "does not end in CRLF"},
        {"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX\n", "CR not followed by LF"},
        {"PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n", "protocol is not TCP4, TCP6 or UNKNOWN"},
        {"PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n", "protocol is not"},
        {"PROXY TCP4\r\n", "protocol is not"},
        {"PROXY UNKNOWNX\r\n", "protocol is not"},
        {"PROXY \r\n", "protocol is not"},
        {"PROXY  TCP4 1.2.3.4 5.6.7.8 1 2\r\n", "protocol is not"},
        {"PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n", "single spaces"},
        {"PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n", "single spaces"},
        {"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n", "single spaces"},
        {"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n", "single spaces"},
        {"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n", "single spaces"},
        {"PROXY TCP4 1.2.3.4 5.6.7.8 1 \r\n", "single spaces"},
        {"PROXY TCP4 1.2.3.4\t5.6.7.8 1 2\r\n", "control byte"},
        {"PROXY TCP4 ::1 5.6.7.8 1 2\r\n", "bad TCP4 source"},
        {"PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n", "bad TCP4 source"},
        {"PROXY TCP4 127.1 5.6.7.8 1 2\r\n", "bad TCP4 source"},
        {"PROXY TCP4 256.2.3.4 5.6.7.8 1 2\r\n", "bad TCP4 source"},
        {"PROXY TCP4 localhost 5.6.7.8 1 2\r\n", "bad TCP4 source"},
        {"PROXY TCP4 1.2.3.4 5.6.7 1 2\r\n", "bad TCP4 destination"},
        {"PROXY TCP6 1.2.3.4 ::1 1 2\r\n", "bad TCP6 source"},
        {"PROXY TCP6 ::1 ::g 1 2\r\n", "bad TCP6 destination"},
        {"PROXY TCP6 fe80::1%lo ::1 1 2\r\n", "bad TCP6 source"},
        {"PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n", "bad TCP4 source"},
        {"PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n", "bad TCP4 source"},
        {"PROXY TCP4 1.2.3.4 5.6.7.8 +1 2\r\n", "bad TCP4 source"},
        {"PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n", "bad TCP4 source"},
        {"PROXY TCP4 1.2.3.4 5.6.7.8 1x 2\r\n", "bad TCP4 source"},
        {"PROXY TCP4 1.2.3.4 5.6.7.8 1 99999\r\n", "bad TCP4 destination"},
        {"PROXY TCP4 1.2.3.4 5.6.7.8 1 0x10\r\n", "bad TCP4 destination"},
        {"PROXY TCP4 1.2.3.4 5.6.7.8 1 000000002\r\n", "single spaces"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect_refused(bad[i].in, strlen(bad[i].in), bad[i].why);

    /* a NUL inside a field would end it early for inet_pton */
    static const char nul[] = "PROXY TCP4 1.2.3.4\0xx 5.6.7.8 1 2\r\n";
    expect_refused(nul, sizeof nul - 1, "control byte");

    /* 108 bytes without an LF: refused at the 107th, before the 108th */
    char longer[200];
    memset(longer, 'a', sizeof longer);
    memcpy(longer, "PROXY UNKNOWN ", 14);
    ss_proxy_parser p;
    ss_proxy_init(&p);
    size_t used;
    assert_int_equal(feed_exact(&p, longer, sizeof longer, &used, NULL), SS_EPROTO);
    assert_int_equal(used, SS_PROXY_V1_MAX);
    assert_non_null(strstr(ss_proxy_error(&p), "107"));
    /* ... and so is the longest line with one more byte */
    char plus[SS_PROXY_V1_MAX + 1];
    memcpy(plus, longer, sizeof plus);
    memcpy(plus + SS_PROXY_V1_MAX - 1, "\r\n", 2);
    expect_refused(plus, SS_PROXY_V1_MAX + 1, "107");
}

/* ---- v2 ---------------------------------------------------------------------- */

static void v2_inet_and_inet6(void **state)
{
    (void)state;
    hdr h;
    ss_proxy_header out;
    v2(&h, 0x21, 0x11, INET_BODY, sizeof INET_BODY);
    expect_done(h.b, h.n, 28, &out);
    assert_int_equal(out.version, 2);
    assert_false(out.local);
    assert_false(out.crc32c);
    assert_string_equal(text_of(&out.source), "tcp://192.0.2.1:54321");
    assert_string_equal(text_of(&out.destination), "tcp://198.51.100.7:443");

    v2(&h, 0x21, 0x12, INET_BODY, sizeof INET_BODY); /* UDP over IPv4 */
    expect_done(h.b, h.n, 28, &out);
    assert_string_equal(text_of(&out.source), "udp://192.0.2.1:54321");

    unsigned char b6[36];
    inet6_body(b6);
    v2(&h, 0x21, 0x21, b6, sizeof b6);
    expect_done(h.b, h.n, 52, &out);
    assert_string_equal(text_of(&out.source), "tcp://[2001:db8::1]:1234");
    assert_string_equal(text_of(&out.destination), "tcp://[2001:db8:ffff::2]:80");
    v2(&h, 0x21, 0x22, b6, sizeof b6);
    expect_done(h.b, h.n, 52, &out);
    assert_string_equal(text_of(&out.source), "udp://[2001:db8::1]:1234");

    /* a longer address block than the family needs: the rest are TLVs */
    v2(&h, 0x21, 0x11, INET_BODY, sizeof INET_BODY);
    tlv(&h, 0x02, "example.com", 11); /* PP2_TYPE_AUTHORITY */
    tlv(&h, 0x04, NULL, 0);           /* NOOP, empty */
    tlv(&h, 0x05, "unique-id-0123", 14);
    unsigned char ssl[40] = {0x01, 0, 0, 0, 0, 0x21, 0x00, 0x07, 'T', 'L', 'S', 'v', '1', '.', '3'};
    tlv(&h, 0x20, ssl, sizeof ssl);
    tlv(&h, 0xE0, "custom", 6);
    expect_done(h.b, h.n, h.n, &out);
    assert_string_equal(text_of(&out.source), "tcp://192.0.2.1:54321");
}

static void v2_unix(void **state)
{
    (void)state;
    hdr h;
    ss_proxy_header out;
    unsigned char b[216];
    unix_body(b, "/run/client.sock", 16, "/run/haproxy.sock");
    v2(&h, 0x21, 0x31, b, sizeof b);
    expect_done(h.b, h.n, 232, &out);
    assert_false(out.local);
    assert_int_equal(out.source.kind, SS_ADDR_UNIX);
    assert_string_equal(text_of(&out.source), "unix:/run/client.sock");
    assert_string_equal(text_of(&out.destination), "unix:/run/haproxy.sock");

    unix_body(b, "\0abstract", 9, "/x");
    v2(&h, 0x21, 0x32, b, sizeof b);
    expect_done(h.b, h.n, 232, &out);
    assert_int_equal(out.source.kind, SS_ADDR_UNIXGRAM);
    assert_string_equal(text_of(&out.source), "unixgram:@abstract");

    unix_body(b, "", 0, "/srv.sock"); /* an unnamed client */
    v2(&h, 0x21, 0x31, b, sizeof b);
    expect_done(h.b, h.n, 232, &out);
    assert_false(out.local);
    assert_int_equal(out.source.len, sizeof(sa_family_t));
    assert_string_equal(text_of(&out.source), "unix:");

    /* a path of all 108 bytes, with no NUL at all */
    char path[108];
    memset(path, 'p', sizeof path);
    path[0] = '/';
    unix_body(b, path, 108, "/d");
    v2(&h, 0x21, 0x31, b, sizeof b);
    expect_done(h.b, h.n, 232, &out);
    assert_int_equal(out.source.len, offsetof(struct sockaddr_un, sun_path) + 108);
}

static void v2_local_and_unspec(void **state)
{
    (void)state;
    hdr h;
    ss_proxy_header out;
    /* HAProxy's health check: LOCAL, AF_UNSPEC, nothing else */
    v2(&h, 0x20, 0x00, NULL, 0);
    expect_done(h.b, h.n, 16, &out);
    assert_true(out.local);
    assert_int_equal(out.source.len, 0);
    /* LOCAL with an address: the address is ignored, as the spec says */
    v2(&h, 0x20, 0x11, INET_BODY, sizeof INET_BODY);
    expect_done(h.b, h.n, 28, &out);
    assert_true(out.local);
    assert_int_equal(out.source.len, 0);
    /* PROXY over AF_UNSPEC: no address either */
    v2(&h, 0x21, 0x00, NULL, 0);
    expect_done(h.b, h.n, 16, &out);
    assert_true(out.local);
    /* LOCAL with TLVs only (and a CRC) */
    v2(&h, 0x20, 0x00, NULL, 0);
    tlv(&h, 0x01, "h2", 2);
    crc_tlv(&h, 0);
    expect_done(h.b, h.n, h.n, &out);
    assert_true(out.local);
    assert_true(out.crc32c);
}

static void v2_crc32c(void **state)
{
    (void)state;
    hdr h;
    ss_proxy_header out;
    v2(&h, 0x21, 0x11, INET_BODY, sizeof INET_BODY);
    tlv(&h, 0x02, "example.com", 11);
    crc_tlv(&h, 0);
    tlv(&h, 0x05, "after the crc", 13);
    /* the checksum covers the TLV after it too: recompute over the whole */
    unsigned char *v = h.b + 16 + 12 + 3 + 11 + 3;
    memset(v, 0, 4);
    uint32_t crc = crc32c_bitwise(h.b, h.n);
    v[0] = (unsigned char)(crc >> 24), v[1] = (unsigned char)(crc >> 16);
    v[2] = (unsigned char)(crc >> 8), v[3] = (unsigned char)crc;
    expect_done(h.b, h.n, h.n, &out);
    assert_true(out.crc32c);
    assert_string_equal(text_of(&out.source), "tcp://192.0.2.1:54321");

    /* any bit flipped after the fixed part: refused (but in the CRC TLV's
     * own type byte, which makes it an unchecked TLV of another type) */
    const size_t crc_type_at = 16 + 12 + 3 + 11;
    assert_int_equal(h.b[crc_type_at], 0x03);
    for (size_t i = 16; i < h.n; i++) {
        if (i == crc_type_at)
            continue;
        hdr bad = h;
        bad.b[i] ^= 0x01;
        ss_proxy_parser p;
        ss_proxy_init(&p);
        size_t used;
        int rc = ss_proxy_feed(&p, bad.b, bad.n, &used, &out);
        /* a flip in a TLV's type or length may make it malformed before
         * the checksum is looked at; either way it is refused */
        if (rc != SS_EPROTO)
            fail_msg("bit flipped at %zu accepted", i);
    }
    hdr wrong;
    v2(&wrong, 0x21, 0x11, INET_BODY, sizeof INET_BODY);
    crc_tlv(&wrong, 0x80000000u);
    expect_refused(wrong.b, wrong.n, "CRC32C does not match");
    /* the checksum in little-endian order is wrong too */
    v2(&wrong, 0x21, 0x11, INET_BODY, sizeof INET_BODY);
    crc_tlv(&wrong, 0);
    unsigned char *w = wrong.b + wrong.n - 4;
    unsigned char t = w[0];
    w[0] = w[3], w[3] = t, t = w[1], w[1] = w[2], w[2] = t;
    expect_refused(wrong.b, wrong.n, "CRC32C does not match");
}

static void v2_malformed(void **state)
{
    (void)state;
    hdr h;
    unsigned char b6[36];
    inet6_body(b6);

    v2(&h, 0x21, 0x11, INET_BODY, sizeof INET_BODY);
    for (size_t i = 0; i < 12; i++) {
        hdr bad = h;
        bad.b[i] ^= 0x20;
        expect_refused(bad.b, bad.n, "not a PROXY protocol header");
    }
    v2(&h, 0x11, 0x11, INET_BODY, sizeof INET_BODY);
    expect_refused(h.b, h.n, "version is not 2");
    v2(&h, 0x31, 0x11, INET_BODY, sizeof INET_BODY);
    expect_refused(h.b, h.n, "version is not 2");
    v2(&h, 0x22, 0x11, INET_BODY, sizeof INET_BODY);
    expect_refused(h.b, h.n, "neither LOCAL nor PROXY");
    v2(&h, 0x2f, 0x11, INET_BODY, sizeof INET_BODY);
    expect_refused(h.b, h.n, "neither LOCAL nor PROXY");
    static const unsigned char bad_fams[] = {0x01, 0x02, 0x10, 0x13, 0x20, 0x23,
                                             0x30, 0x33, 0x41, 0xf1, 0x03};
    for (size_t i = 0; i < sizeof bad_fams; i++) {
        v2(&h, 0x21, bad_fams[i], b6, sizeof b6);
        expect_refused(h.b, h.n, "unknown address family");
    }
    /* shorter than the family's addresses */
    v2(&h, 0x21, 0x11, INET_BODY, 11);
    expect_refused(h.b, h.n, "too short for its address family");
    v2(&h, 0x21, 0x21, b6, 35);
    expect_refused(h.b, h.n, "too short for its address family");
    unsigned char ub[216] = {0};
    v2(&h, 0x21, 0x31, ub, 215);
    expect_refused(h.b, h.n, "too short for its address family");
    v2(&h, 0x20, 0x21, b6, 12); /* LOCAL too: the block is the family's */
    expect_refused(h.b, h.n, "too short for its address family");

    /* TLVs that do not fit */
    v2(&h, 0x21, 0x11, INET_BODY, sizeof INET_BODY);
    tlv(&h, 0x02, "abc", 3);
    h.b[h.n - 5] = 0; /* its length: 4, one more than is there */
    h.b[h.n - 4] = 4;
    expect_refused(h.b, h.n, "a TLV longer than the header");
    v2(&h, 0x21, 0x11, INET_BODY, sizeof INET_BODY);
    tlv(&h, 0x02, "abc", 3);
    h.b[h.n - 5] = 0xff; /* 65283 */
    expect_refused(h.b, h.n, "a TLV longer than the header");
    for (size_t stray = 1; stray <= 2; stray++) {
        unsigned char body[14];
        memcpy(body, INET_BODY, 12);
        body[12] = 0x02, body[13] = 0x00;
        v2(&h, 0x21, 0x11, body, 12 + stray);
        expect_refused(h.b, h.n, "a TLV cut short");
    }
    v2(&h, 0x21, 0x11, INET_BODY, sizeof INET_BODY);
    tlv(&h, 0x03, "abc", 3);
    expect_refused(h.b, h.n, "CRC32C TLV whose length is not 4");
    v2(&h, 0x21, 0x11, INET_BODY, sizeof INET_BODY);
    tlv(&h, 0x03, "abcde", 5);
    expect_refused(h.b, h.n, "CRC32C TLV whose length is not 4");
    v2(&h, 0x21, 0x11, INET_BODY, sizeof INET_BODY);
    crc_tlv(&h, 0);
    crc_tlv(&h, 0);
    expect_refused(h.b, h.n, "two CRC32C TLVs");
}

static void v2_length_bounds(void **state)
{
    (void)state;
    hdr h;
    ss_proxy_header out;
    /* exactly the cap: one TLV filling it */
    static unsigned char filler[SS_PROXY_V2_MAX_LEN];
    v2(&h, 0x21, 0x11, INET_BODY, sizeof INET_BODY);
    tlv(&h, 0xEE, filler, SS_PROXY_V2_MAX_LEN - 12 - 3);
    assert_int_equal(h.n, SS_PROXY_MAX_HEADER);
    expect_done(h.b, h.n, SS_PROXY_MAX_HEADER, &out);

    /* one more is refused as soon as the length field is in: after 16
     * bytes, whatever follows */
    for (unsigned len = SS_PROXY_V2_MAX_LEN + 1; len <= 0xffff; len += 4093) {
        unsigned char fixed[16 + 100];
        memcpy(fixed, SIG, 12);
        fixed[12] = 0x21, fixed[13] = 0x11;
        fixed[14] = (unsigned char)(len >> 8), fixed[15] = (unsigned char)len;
        memset(fixed + 16, 0, 100);
        ss_proxy_parser p;
        ss_proxy_init(&p);
        size_t used;
        assert_int_equal(feed_exact(&p, fixed, sizeof fixed, &used, &out), SS_EPROTO);
        assert_int_equal(used, 16);
        assert_non_null(strstr(ss_proxy_error(&p), "longer than"));
        /* and with only the 16 bytes given */
        ss_proxy_init(&p);
        assert_int_equal(feed_exact(&p, fixed, 16, &used, &out), SS_EPROTO);
    }
    /* 0xffff itself */
    unsigned char fixed[16];
    memcpy(fixed, SIG, 12);
    fixed[12] = 0x21, fixed[13] = 0x11, fixed[14] = 0xff, fixed[15] = 0xff;
    expect_refused(fixed, 16, "longer than SS_PROXY_V2_MAX_LEN");
}

/* ---- feeding: splits, early refusal, after the end ------------------------ */

/* Every valid header, fed in two pieces at every position and byte by byte,
 * gives the same header, and takes only its own bytes. */
static void split_at_every_byte(void **state)
{
    (void)state;
    hdr all[12];
    size_t n = 0;
    const char *v1s[] = {"PROXY TCP4 192.0.2.1 198.51.100.7 54321 443\r\n",
                         "PROXY TCP6 2001:db8::1 ::1 0 65535\r\n", "PROXY UNKNOWN\r\n",
                         "PROXY UNKNOWN 1.2.3.4 whatever\r\n"};
    for (size_t i = 0; i < 4; i++) {
        all[n].n = strlen(v1s[i]);
        memcpy(all[n].b, v1s[i], all[n].n);
        n++;
    }
    unsigned char b6[36], ub[216];
    inet6_body(b6);
    unix_body(ub, "/c", 2, "/s");
    v2(&all[n++], 0x21, 0x11, INET_BODY, 12);
    v2(&all[n++], 0x21, 0x22, b6, 36);
    v2(&all[n++], 0x21, 0x31, ub, 216);
    v2(&all[n++], 0x20, 0x00, NULL, 0);
    v2(&all[n], 0x21, 0x11, INET_BODY, 12);
    tlv(&all[n], 0x02, "example.com", 11);
    crc_tlv(&all[n++], 0);

    static const char tail[] = "DATA";
    for (size_t k = 0; k < n; k++) {
        hdr *h = &all[k];
        size_t hlen = h->n;
        memcpy(h->b + hlen, tail, 4);
        size_t total = hlen + 4;
        ss_proxy_header whole;
        expect_done(h->b, total, hlen, &whole);
        for (size_t cut = 0; cut <= total; cut++) {
            ss_proxy_parser p;
            ss_proxy_init(&p);
            ss_proxy_header got;
            size_t used;
            int rc = feed_exact(&p, h->b, cut, &used, &got);
            if (cut < hlen) {
                assert_int_equal(rc, SS_PROXY_MORE);
                assert_int_equal(used, cut);
                rc = feed_exact(&p, h->b + cut, total - cut, &used, &got);
                assert_int_equal(rc, SS_PROXY_DONE);
                assert_int_equal(used, hlen - cut);
            } else {
                assert_int_equal(rc, SS_PROXY_DONE);
                assert_int_equal(used, hlen);
            }
            assert_int_equal(got.length, hlen);
            assert_int_equal(got.local, whole.local);
            assert_int_equal(got.crc32c, whole.crc32c);
            assert_int_equal(got.source.len, whole.source.len);
            assert_memory_equal(&got.source.u, &whole.source.u, whole.source.len);
            assert_memory_equal(&got.destination.u, &whole.destination.u, whole.destination.len);
        }
        /* byte by byte */
        ss_proxy_parser p;
        ss_proxy_init(&p);
        ss_proxy_header got;
        size_t used = 0;
        int rc = SS_PROXY_MORE;
        size_t i;
        for (i = 0; i < total && rc == SS_PROXY_MORE; i++)
            rc = feed_exact(&p, h->b + i, 1, &used, &got);
        assert_int_equal(rc, SS_PROXY_DONE);
        assert_int_equal(i, hlen);
        assert_int_equal(used, 1);
        /* fed again after the end: done again, nothing taken */
        memset(&got, 0xaa, sizeof got);
        assert_int_equal(ss_proxy_feed(&p, tail, 4, &used, &got), SS_PROXY_DONE);
        assert_int_equal(used, 0);
        assert_int_equal(got.length, hlen);
        assert_int_equal(got.local, whole.local);
        /* ss_proxy_parse agrees */
        const char *why = "unset";
        assert_int_equal(ss_proxy_parse(h->b, total, &got, &why), SS_PROXY_DONE);
        assert_int_equal(got.length, hlen);
        assert_int_equal(ss_proxy_parse(h->b, hlen - 1, &got, &why), SS_PROXY_MORE);
    }
}

/* Not a PROXY header at all: refused at the first byte that says so. */
static void refused_early(void **state)
{
    (void)state;
    ss_proxy_parser p;
    size_t used;
    static const char *starts[] = {"GET / HTTP/1.1\r\n",
                                   "\x16\x03\x01\x02\x00",
                                   "SSH-2.0-x\r\n",
                                   "\r\n\r\nQUIT",
                                   "PROXX",
                                   "\n"};
    static const size_t at[] = {1, 1, 1, 5, 5, 1};
    for (size_t i = 0; i < sizeof starts / sizeof starts[0]; i++) {
        ss_proxy_init(&p);
        assert_int_equal(feed_exact(&p, starts[i], strlen(starts[i]), &used, NULL), SS_EPROTO);
        assert_int_equal(used, at[i]);
        assert_string_equal(ss_proxy_error(&p), "not a PROXY protocol header");
    }
    ss_proxy_init(&p);
    assert_string_equal(ss_proxy_error(&p), "");
    assert_int_equal(ss_proxy_feed(&p, NULL, 0, &used, NULL), SS_PROXY_MORE);
    assert_int_equal(used, 0);
    const char *why = NULL;
    assert_int_equal(ss_proxy_parse("GET", 3, NULL, &why), SS_EPROTO);
    assert_string_equal(why, "not a PROXY protocol header");
}

/* Every truncation of a valid header is "more", never done or refused. */
static void truncated_is_more(void **state)
{
    (void)state;
    hdr h;
    v2(&h, 0x21, 0x11, INET_BODY, 12);
    tlv(&h, 0x05, "id", 2);
    crc_tlv(&h, 0);
    for (size_t cut = 0; cut < h.n; cut++)
        assert_int_equal(ss_proxy_parse(h.b, cut, NULL, NULL), SS_PROXY_MORE);
    const char *l = "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n";
    for (size_t cut = 0; cut < strlen(l); cut++)
        assert_int_equal(ss_proxy_parse(l, cut, NULL, NULL), SS_PROXY_MORE);
}

int main(void)
{
    tu_alarm(60);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(crc32c_values),    cmocka_unit_test(v1_valid),
        cmocka_unit_test(v1_malformed),     cmocka_unit_test(v2_inet_and_inet6),
        cmocka_unit_test(v2_unix),          cmocka_unit_test(v2_local_and_unspec),
        cmocka_unit_test(v2_crc32c),        cmocka_unit_test(v2_malformed),
        cmocka_unit_test(v2_length_bounds), cmocka_unit_test(split_at_every_byte),
        cmocka_unit_test(refused_early),    cmocka_unit_test(truncated_is_more),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
