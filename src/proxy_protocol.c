/* SPDX-License-Identifier: MIT */
/*
 * proxy_protocol.c — the PROXY protocol header (HAProxy's proxy-protocol.txt):
 * v1, one text line, and v2, a binary block of addresses and TLVs. A parser
 * fed the connection's bytes as they arrive, in pieces of any size, that
 * says "more", "done: the header was N bytes and carried this address", or
 * "malformed: why".
 *
 * Why this shape: the header comes from the network, so it is bounded
 * before it is trusted. The parser keeps the header's bytes in its own
 * fixed buffer (SS_PROXY_MAX_HEADER), never takes a byte past the header's
 * end (v1 ends at its LF, v2 at 16 + its length field), and checks each
 * byte as soon as it can: a signature byte that does not match, a version,
 * command, family or length that is not allowed is refused at once, before
 * anything more is read. Only the complete header is interpreted, so the
 * interpretation is one plain pass over bytes known to be in the buffer.
 *
 * Nothing here knows sockets: the server's acceptor and the event loop
 * read with it (proxy_read.c), the fuzz target and the unit tests feed it.
 */
#include "sockserve.h"

#include <arpa/inet.h>
#include <stddef.h>
#include <string.h>

enum { ST_START = 0, ST_V1, ST_V2, ST_DONE, ST_BAD };

static const char v1_sig[6] = {'P', 'R', 'O', 'X', 'Y', ' '};
static const unsigned char v2_sig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                         0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

#define V2_FIXED 16
#define V2_CMD_LOCAL 0x0
#define V2_CMD_PROXY 0x1
#define PP2_TYPE_CRC32C 0x03

/* ---- CRC32C ---------------------------------------------------------------- */

/* Reflected Castagnoli polynomial 0x82F63B78, one entry per byte value. */
static const uint32_t crc32c_table[256] = {
    0x00000000u, 0xf26b8303u, 0xe13b70f7u, 0x1350f3f4u, 0xc79a971fu, 0x35f1141cu, 0x26a1e7e8u,
    0xd4ca64ebu, 0x8ad958cfu, 0x78b2dbccu, 0x6be22838u, 0x9989ab3bu, 0x4d43cfd0u, 0xbf284cd3u,
    0xac78bf27u, 0x5e133c24u, 0x105ec76fu, 0xe235446cu, 0xf165b798u, 0x030e349bu, 0xd7c45070u,
    0x25afd373u, 0x36ff2087u, 0xc494a384u, 0x9a879fa0u, 0x68ec1ca3u, 0x7bbcef57u, 0x89d76c54u,
    0x5d1d08bfu, 0xaf768bbcu, 0xbc267848u, 0x4e4dfb4bu, 0x20bd8edeu, 0xd2d60dddu, 0xc186fe29u,
    0x33ed7d2au, 0xe72719c1u, 0x154c9ac2u, 0x061c6936u, 0xf477ea35u, 0xaa64d611u, 0x580f5512u,
    0x4b5fa6e6u, 0xb93425e5u, 0x6dfe410eu, 0x9f95c20du, 0x8cc531f9u, 0x7eaeb2fau, 0x30e349b1u,
    0xc288cab2u, 0xd1d83946u, 0x23b3ba45u, 0xf779deaeu, 0x05125dadu, 0x1642ae59u, 0xe4292d5au,
    0xba3a117eu, 0x4851927du, 0x5b016189u, 0xa96ae28au, 0x7da08661u, 0x8fcb0562u, 0x9c9bf696u,
    0x6ef07595u, 0x417b1dbcu, 0xb3109ebfu, 0xa0406d4bu, 0x522bee48u, 0x86e18aa3u, 0x748a09a0u,
    0x67dafa54u, 0x95b17957u, 0xcba24573u, 0x39c9c670u, 0x2a993584u, 0xd8f2b687u, 0x0c38d26cu,
    0xfe53516fu, 0xed03a29bu, 0x1f682198u, 0x5125dad3u, 0xa34e59d0u, 0xb01eaa24u, 0x42752927u,
    0x96bf4dccu, 0x64d4cecfu, 0x77843d3bu, 0x85efbe38u, 0xdbfc821cu, 0x2997011fu, 0x3ac7f2ebu,
    0xc8ac71e8u, 0x1c661503u, 0xee0d9600u, 0xfd5d65f4u, 0x0f36e6f7u, 0x61c69362u, 0x93ad1061u,
    0x80fde395u, 0x72966096u, 0xa65c047du, 0x5437877eu, 0x4767748au, 0xb50cf789u, 0xeb1fcbadu,
    0x197448aeu, 0x0a24bb5au, 0xf84f3859u, 0x2c855cb2u, 0xdeeedfb1u, 0xcdbe2c45u, 0x3fd5af46u,
    0x7198540du, 0x83f3d70eu, 0x90a324fau, 0x62c8a7f9u, 0xb602c312u, 0x44694011u, 0x5739b3e5u,
    0xa55230e6u, 0xfb410cc2u, 0x092a8fc1u, 0x1a7a7c35u, 0xe811ff36u, 0x3cdb9bddu, 0xceb018deu,
    0xdde0eb2au, 0x2f8b6829u, 0x82f63b78u, 0x709db87bu, 0x63cd4b8fu, 0x91a6c88cu, 0x456cac67u,
    0xb7072f64u, 0xa457dc90u, 0x563c5f93u, 0x082f63b7u, 0xfa44e0b4u, 0xe9141340u, 0x1b7f9043u,
    0xcfb5f4a8u, 0x3dde77abu, 0x2e8e845fu, 0xdce5075cu, 0x92a8fc17u, 0x60c37f14u, 0x73938ce0u,
    0x81f80fe3u, 0x55326b08u, 0xa759e80bu, 0xb4091bffu, 0x466298fcu, 0x1871a4d8u, 0xea1a27dbu,
    0xf94ad42fu, 0x0b21572cu, 0xdfeb33c7u, 0x2d80b0c4u, 0x3ed04330u, 0xccbbc033u, 0xa24bb5a6u,
    0x502036a5u, 0x4370c551u, 0xb11b4652u, 0x65d122b9u, 0x97baa1bau, 0x84ea524eu, 0x7681d14du,
    0x2892ed69u, 0xdaf96e6au, 0xc9a99d9eu, 0x3bc21e9du, 0xef087a76u, 0x1d63f975u, 0x0e330a81u,
    0xfc588982u, 0xb21572c9u, 0x407ef1cau, 0x532e023eu, 0xa145813du, 0x758fe5d6u, 0x87e466d5u,
    0x94b49521u, 0x66df1622u, 0x38cc2a06u, 0xcaa7a905u, 0xd9f75af1u, 0x2b9cd9f2u, 0xff56bd19u,
    0x0d3d3e1au, 0x1e6dcdeeu, 0xec064eedu, 0xc38d26c4u, 0x31e6a5c7u, 0x22b65633u, 0xd0ddd530u,
    0x0417b1dbu, 0xf67c32d8u, 0xe52cc12cu, 0x1747422fu, 0x49547e0bu, 0xbb3ffd08u, 0xa86f0efcu,
    0x5a048dffu, 0x8ecee914u, 0x7ca56a17u, 0x6ff599e3u, 0x9d9e1ae0u, 0xd3d3e1abu, 0x21b862a8u,
    0x32e8915cu, 0xc083125fu, 0x144976b4u, 0xe622f5b7u, 0xf5720643u, 0x07198540u, 0x590ab964u,
    0xab613a67u, 0xb831c993u, 0x4a5a4a90u, 0x9e902e7bu, 0x6cfbad78u, 0x7fab5e8cu, 0x8dc0dd8fu,
    0xe330a81au, 0x115b2b19u, 0x020bd8edu, 0xf0605beeu, 0x24aa3f05u, 0xd6c1bc06u, 0xc5914ff2u,
    0x37faccf1u, 0x69e9f0d5u, 0x9b8273d6u, 0x88d28022u, 0x7ab90321u, 0xae7367cau, 0x5c18e4c9u,
    0x4f48173du, 0xbd23943eu, 0xf36e6f75u, 0x0105ec76u, 0x12551f82u, 0xe03e9c81u, 0x34f4f86au,
    0xc69f7b69u, 0xd5cf889du, 0x27a40b9eu, 0x79b737bau, 0x8bdcb4b9u, 0x988c474du, 0x6ae7c44eu,
    0xbe2da0a5u, 0x4c4623a6u, 0x5f16d052u, 0xad7d5351u,
};

uint32_t ss_crc32c(uint32_t crc, const void *data, size_t len)
{
    const unsigned char *p = data;
    crc = ~crc;
    for (size_t i = 0; i < len; i++)
        crc = crc32c_table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
    return ~crc;
}

/* ---- the parser's state ------------------------------------------------------ */

void ss_proxy_init(ss_proxy_parser *p)
{
    p->have = 0;
    p->total = 0;
    p->state = ST_START;
    p->why = "";
}

const char *ss_proxy_error(const ss_proxy_parser *p)
{
    return p->why != NULL ? p->why : "";
}

static int refuse(ss_proxy_parser *p, const char *why)
{
    p->state = ST_BAD;
    p->why = why;
    return SS_EPROTO;
}

static void clear_header(ss_proxy_header *out)
{
    memset(out, 0, sizeof *out);
}

/* ---- v1: the text line --------------------------------------------------------- */

/* The next token of a v1 line: from *at up to the next space or `end`. It
 * must be 1..max-1 bytes; a separator, when `last` is false, must be exactly
 * one space followed by more. Copies it NUL-terminated into tok. */
static bool v1_token(const unsigned char **at, const unsigned char *end, bool last, char *tok,
                     size_t max)
{
    const unsigned char *s = *at;
    const unsigned char *e = s;
    while (e < end && *e != ' ')
        e++;
    size_t n = (size_t)(e - s);
    if (n == 0 || n >= max)
        return false;
    if (last ? e != end : (e == end || e + 1 == end))
        return false;
    memcpy(tok, s, n);
    tok[n] = '\0';
    *at = last ? e : e + 1;
    return true;
}

/* Decimal 0..65535: digits only, no sign, no leading zero but "0" itself. */
static bool v1_port(const char *s, uint16_t *out)
{
    size_t n = strlen(s);
    if (n == 0 || n > 5 || (n > 1 && s[0] == '0'))
        return false;
    unsigned long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (unsigned long)(s[i] - '0');
    }
    if (v > 65535)
        return false;
    *out = (uint16_t)v;
    return true;
}

static bool v1_address(int family, const char *text, const char *port, ss_addr *out)
{
    uint16_t pnum;
    if (!v1_port(port, &pnum))
        return false;
    memset(out, 0, sizeof *out);
    out->kind = SS_ADDR_TCP;
    if (family == AF_INET) {
        if (inet_pton(AF_INET, text, &out->u.in.sin_addr) != 1)
            return false;
        out->u.in.sin_family = AF_INET;
        out->u.in.sin_port = htons(pnum);
        out->len = sizeof out->u.in;
    } else {
        if (inet_pton(AF_INET6, text, &out->u.in6.sin6_addr) != 1)
            return false;
        out->u.in6.sin6_family = AF_INET6;
        out->u.in6.sin6_port = htons(pnum);
        out->len = sizeof out->u.in6;
    }
    return true;
}

/* The complete line buf[0..have), ending in LF. */
static int v1_finish(ss_proxy_parser *p, ss_proxy_header *out)
{
    const unsigned char *line = p->buf;
    size_t n = p->have;
    if (n < sizeof v1_sig + 2 || line[n - 2] != '\r')
        return refuse(p, "v1: the line does not end in CRLF");
    const unsigned char *at = line + sizeof v1_sig;
    const unsigned char *end = line + n - 2; /* the CR */
    clear_header(out);
    out->version = 1;
    out->length = n;

    size_t rest = (size_t)(end - at);
    if (rest >= 7 && memcmp(at, "UNKNOWN", 7) == 0 && (rest == 7 || at[7] == ' ')) {
        /* the sender knows no address (or not one it can say): whatever
         * follows up to the CRLF is to be ignored, as the spec says */
        out->local = true;
        return SS_PROXY_DONE;
    }
    int family;
    if (rest >= 5 && memcmp(at, "TCP4 ", 5) == 0)
        family = AF_INET;
    else if (rest >= 5 && memcmp(at, "TCP6 ", 5) == 0)
        family = AF_INET6;
    else
        return refuse(p, "v1: protocol is not TCP4, TCP6 or UNKNOWN");
    at += 5;
    /* printable ASCII only: a NUL inside a field would end it early for
     * inet_pton and let trailing garbage through */
    for (const unsigned char *c = at; c < end; c++)
        if (*c < 0x20 || *c > 0x7e)
            return refuse(p, "v1: a control byte in the line");
    char src[INET6_ADDRSTRLEN], dst[INET6_ADDRSTRLEN], sport[8], dport[8];
    if (!v1_token(&at, end, false, src, sizeof src) ||
        !v1_token(&at, end, false, dst, sizeof dst) ||
        !v1_token(&at, end, false, sport, sizeof sport) ||
        !v1_token(&at, end, true, dport, sizeof dport))
        return refuse(p, "v1: not four fields separated by single spaces");
    if (!v1_address(family, src, sport, &out->source))
        return refuse(p, family == AF_INET ? "v1: bad TCP4 source address or port"
                                           : "v1: bad TCP6 source address or port");
    if (!v1_address(family, dst, dport, &out->destination))
        return refuse(p, family == AF_INET ? "v1: bad TCP4 destination address or port"
                                           : "v1: bad TCP6 destination address or port");
    return SS_PROXY_DONE;
}

/* One more byte of a v1 line: 1 when it was the LF, 0 to go on, or
 * SS_EPROTO. */
static int v1_byte(ss_proxy_parser *p, unsigned char c)
{
    size_t at = p->have;
    if (at < sizeof v1_sig && c != (unsigned char)v1_sig[at])
        return refuse(p, "not a PROXY protocol header");
    if (at > 0 && p->buf[at - 1] == '\r' && c != '\n')
        return refuse(p, "v1: CR not followed by LF");
    p->buf[p->have++] = c;
    if (c == '\n')
        return 1;
    if (p->have >= SS_PROXY_V1_MAX)
        return refuse(p, "v1: no CRLF within 107 bytes");
    return 0;
}

/* ---- v2: the binary block ------------------------------------------------------- */

/* Bytes of the address block for a v2 family byte (high nibble), or -1. */
static int v2_address_len(unsigned family)
{
    switch (family) {
    case 0x0: return 0;   /* AF_UNSPEC */
    case 0x1: return 12;  /* AF_INET: 4 + 4 + 2 + 2 */
    case 0x2: return 36;  /* AF_INET6: 16 + 16 + 2 + 2 */
    case 0x3: return 216; /* AF_UNIX: 108 + 108 */
    default: return -1;
    }
}

/* The fixed 16 bytes are in: everything they say is checked here, before
 * a byte of the rest is taken. */
static int v2_check_fixed(ss_proxy_parser *p)
{
    unsigned ver_cmd = p->buf[12], fam = p->buf[13];
    size_t len = (size_t)p->buf[14] << 8 | p->buf[15];
    if (ver_cmd >> 4 != 2)
        return refuse(p, "v2: version is not 2");
    if ((ver_cmd & 0xf) != V2_CMD_LOCAL && (ver_cmd & 0xf) != V2_CMD_PROXY)
        return refuse(p, "v2: command is neither LOCAL nor PROXY");
    /* the spec lists the valid bytes and says to reject every other */
    switch (fam) {
    case 0x00:
    case 0x11:
    case 0x12:
    case 0x21:
    case 0x22:
    case 0x31:
    case 0x32: break;
    default: return refuse(p, "v2: unknown address family or transport");
    }
    if (len > SS_PROXY_V2_MAX_LEN)
        return refuse(p, "v2: longer than SS_PROXY_V2_MAX_LEN");
    if (len < (size_t)v2_address_len(fam >> 4))
        return refuse(p, "v2: too short for its address family");
    p->total = V2_FIXED + len;
    return 0;
}

static uint16_t be16(const unsigned char *b)
{
    return (uint16_t)(b[0] << 8 | b[1]);
}

/* A v2 unix address: 108 bytes, NUL-padded. A first NUL with more after
 * it is an abstract name (up to its last non-NUL byte); all NUL is the
 * unnamed address. */
static void v2_unix(const unsigned char *b, ss_addr_kind kind, ss_addr *out)
{
    enum { PATH = 108 };
    memset(out, 0, sizeof *out);
    out->kind = kind;
    out->u.un.sun_family = AF_UNIX;
    size_t n = PATH;
    while (n > 0 && b[n - 1] == 0)
        n--;
    if (n > sizeof out->u.un.sun_path)
        n = sizeof out->u.un.sun_path;
    if (n == 0) {
        out->len = sizeof(sa_family_t);
        return;
    }
    memcpy(out->u.un.sun_path, b, n);
    out->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
}

static void v2_addresses(const ss_proxy_parser *p, ss_proxy_header *out)
{
    unsigned fam = p->buf[13];
    const unsigned char *a = p->buf + V2_FIXED;
    bool dgram = (fam & 0xf) == 0x2;
    ss_addr *src = &out->source, *dst = &out->destination;
    switch (fam >> 4) {
    case 0x1:
        src->kind = dst->kind = dgram ? SS_ADDR_UDP : SS_ADDR_TCP;
        src->u.in.sin_family = dst->u.in.sin_family = AF_INET;
        memcpy(&src->u.in.sin_addr, a, 4);
        memcpy(&dst->u.in.sin_addr, a + 4, 4);
        src->u.in.sin_port = htons(be16(a + 8));
        dst->u.in.sin_port = htons(be16(a + 10));
        src->len = dst->len = sizeof src->u.in;
        break;
    case 0x2:
        src->kind = dst->kind = dgram ? SS_ADDR_UDP : SS_ADDR_TCP;
        src->u.in6.sin6_family = dst->u.in6.sin6_family = AF_INET6;
        memcpy(&src->u.in6.sin6_addr, a, 16);
        memcpy(&dst->u.in6.sin6_addr, a + 16, 16);
        src->u.in6.sin6_port = htons(be16(a + 32));
        dst->u.in6.sin6_port = htons(be16(a + 34));
        src->len = dst->len = sizeof src->u.in6;
        break;
    case 0x3:
        v2_unix(a, dgram ? SS_ADDR_UNIXGRAM : SS_ADDR_UNIX, src);
        v2_unix(a + 108, dgram ? SS_ADDR_UNIXGRAM : SS_ADDR_UNIX, dst);
        break;
    }
}

/* The complete header buf[0..total): walk the TLVs, check the CRC, read
 * the addresses. */
static int v2_finish(ss_proxy_parser *p, ss_proxy_header *out)
{
    const unsigned char *b = p->buf;
    size_t total = p->total;
    unsigned cmd = b[12] & 0xf, fam = b[13];
    size_t at = V2_FIXED + (size_t)v2_address_len(fam >> 4); /* <= total: checked */
    size_t crc_at = 0;
    while (at < total) {
        if (total - at < 3)
            return refuse(p, "v2: a TLV cut short by the header's end");
        size_t vlen = be16(b + at + 1);
        if (vlen > total - at - 3)
            return refuse(p, "v2: a TLV longer than the header");
        if (b[at] == PP2_TYPE_CRC32C) {
            if (vlen != 4)
                return refuse(p, "v2: a CRC32C TLV whose length is not 4");
            if (crc_at != 0)
                return refuse(p, "v2: two CRC32C TLVs");
            crc_at = at + 3;
        }
        at += 3 + vlen; /* every other TLV is skipped */
    }
    if (crc_at != 0) {
        /* over the whole header, with the checksum's own 4 bytes as zeros */
        static const unsigned char zeros[4];
        uint32_t crc = ss_crc32c(0, b, crc_at);
        crc = ss_crc32c(crc, zeros, 4);
        crc = ss_crc32c(crc, b + crc_at + 4, total - crc_at - 4);
        uint32_t sent = (uint32_t)b[crc_at] << 24 | (uint32_t)b[crc_at + 1] << 16 |
                        (uint32_t)b[crc_at + 2] << 8 | b[crc_at + 3];
        if (crc != sent)
            return refuse(p, "v2: CRC32C does not match");
    }
    clear_header(out);
    out->version = 2;
    out->length = total;
    out->crc32c = crc_at != 0;
    /* LOCAL: the proxy speaks for itself (health checks), and the spec says
     * to ignore any address; AF_UNSPEC carries none */
    out->local = cmd == V2_CMD_LOCAL || fam >> 4 == 0x0;
    if (!out->local)
        v2_addresses(p, out);
    return SS_PROXY_DONE;
}

/* ---- feeding ----------------------------------------------------------------------- */

static int finish(ss_proxy_parser *p, ss_proxy_header *out)
{
    ss_proxy_header scratch;
    if (out == NULL)
        out = &scratch;
    int rc = p->state == ST_V1 ? v1_finish(p, out) : v2_finish(p, out);
    if (rc == SS_PROXY_DONE)
        p->state = ST_DONE;
    return rc;
}

int ss_proxy_feed(ss_proxy_parser *p, const void *data, size_t len, size_t *used,
                  ss_proxy_header *out)
{
    const unsigned char *d = data;
    size_t i = 0;
    int rc = SS_PROXY_MORE;
    if (p->state == ST_BAD) {
        rc = SS_EPROTO;
        goto out;
    }
    if (p->state == ST_DONE) {
        /* the buffer still holds the header: say it again */
        p->state = p->buf[0] == 'P' ? ST_V1 : ST_V2;
        rc = finish(p, out);
        goto out;
    }
    while (i < len) {
        if (p->state == ST_START)
            p->state = d[i] == (unsigned char)v1_sig[0] ? ST_V1 : ST_V2;
        if (p->state == ST_V1) {
            rc = v1_byte(p, d[i++]);
            if (rc < 0)
                goto out;
            if (rc == 1) {
                rc = finish(p, out);
                goto out;
            }
            continue;
        }
        if (p->have < V2_FIXED) {
            unsigned char c = d[i++];
            if (p->have < sizeof v2_sig && c != v2_sig[p->have]) {
                rc = refuse(p, "not a PROXY protocol header");
                goto out;
            }
            p->buf[p->have++] = c;
            if (p->have == V2_FIXED && (rc = v2_check_fixed(p)) < 0)
                goto out;
        } else {
            size_t take = p->total - p->have;
            if (take > len - i)
                take = len - i;
            memcpy(p->buf + p->have, d + i, take);
            p->have += take;
            i += take;
        }
        if (p->have >= V2_FIXED && p->have == p->total) {
            rc = finish(p, out);
            goto out;
        }
    }
    rc = SS_PROXY_MORE;
out:
    if (used != NULL)
        *used = i;
    return rc;
}

int ss_proxy_parse(const void *buf, size_t len, ss_proxy_header *out, const char **why)
{
    /* one code path for both: the parser's copy costs 2 KiB of stack */
    ss_proxy_parser p;
    ss_proxy_init(&p);
    size_t used;
    int rc = ss_proxy_feed(&p, buf, len, &used, out);
    if (why != NULL)
        *why = ss_proxy_error(&p);
    return rc;
}
