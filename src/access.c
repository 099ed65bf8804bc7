/* SPDX-License-Identifier: MIT */
/*
 * access.c — access rules: `allow CIDR` / `deny CIDR`, checked at accept.
 *
 * Every rule is parsed once, into a family tag and a masked 128-bit value
 * with its mask, so a check is a linear scan of a few integer compares and
 * never touches text. A rule set is immutable once a server has it, so
 * ss_access_allows needs no lock and may run on any thread at once.
 *
 * IPv4-mapped IPv6 (::ffff:a.b.c.d) is IPv4 here, on both sides: a mapped
 * client is matched as its IPv4 address, and an IPv6 rule that lies inside
 * ::ffff:0:0/96 is stored as the IPv4 rule it means (::ffff:10.0.0.0/104 is
 * 10.0.0.0/8). So whether the server listens dual-stack or on an IPv4
 * socket never changes a decision, and "deny ::/0" (no IPv6) does not lock
 * IPv4 clients out.
 */
#include "internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The most of a rules file we read: rule files are short, and a bound keeps
 * /dev/zero or a wrong path from costing unbounded memory. */
#define FILE_MAX (1024 * 1024)
/* How much of the input an error message quotes. */
#define QUOTE_MAX 200

enum { FAM_V4 = 4, FAM_V6 = 6 };

/* An address as the rules see it: IPv4 in the low 32 bits of `lo`. */
typedef struct ip {
    int fam; /* FAM_V4, FAM_V6 */
    uint64_t hi, lo;
} ip;

typedef struct rule {
    ip net; /* already masked */
    uint64_t mask_hi, mask_lo;
    bool allow;
} rule;

struct ss_access {
    rule *rules;
    size_t n, cap;
    size_t n_allow; /* allow rules: with any, a client must match one */
};

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

static bool is_control(unsigned char c)
{
    return c < 0x20 || c == 0x7f;
}

/* `n` bytes of `text` (NUL-terminated or not) as a bounded, one-line quote:
 * control characters become '?' and a long input ends in "...". */
static void quote(char *out, const char *text, size_t n)
{
    size_t i = 0;
    for (; i < n && i < QUOTE_MAX; i++)
        out[i] = is_control((unsigned char)text[i]) ? '?' : text[i];
    if (i < n)
        memcpy(out + i, "...", 4);
    else
        out[i] = '\0';
}

static uint64_t load_be64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

/* A 16-byte IPv6 address as an ip: mapped IPv4 becomes IPv4. */
static ip ip_of_v6(const unsigned char b[16])
{
    ip r;
    r.hi = load_be64(b);
    r.lo = load_be64(b + 8);
    if (r.hi == 0 && r.lo >> 32 == 0xffff) {
        r.fam = FAM_V4;
        r.lo &= 0xffffffffu;
    } else {
        r.fam = FAM_V6;
    }
    return r;
}

/* The peer's IP, false for a peer without one (unix, unknown family). */
static bool ip_of_addr(const ss_addr *a, ip *out)
{
    if (a == NULL)
        return false;
    switch (a->u.sa.sa_family) {
    case AF_INET:
        out->fam = FAM_V4;
        out->hi = 0;
        out->lo = ntohl(a->u.in.sin_addr.s_addr);
        return true;
    case AF_INET6: *out = ip_of_v6(a->u.in6.sin6_addr.s6_addr); return true;
    default: return false;
    }
}

/* The top `bits` (0..64) of a 64-bit word set. */
static uint64_t top_bits(int bits)
{
    return bits <= 0 ? 0 : bits >= 64 ? UINT64_MAX : UINT64_MAX << (64 - bits);
}

static void set_prefix(rule *r, int fam, int plen)
{
    if (fam == FAM_V4) {
        r->mask_hi = 0;
        r->mask_lo = top_bits(plen) >> 32;
    } else {
        r->mask_hi = top_bits(plen);
        r->mask_lo = top_bits(plen - 64);
    }
    r->net.hi &= r->mask_hi;
    r->net.lo &= r->mask_lo;
}

/*
 * Parse `text` (ADDRESS or ADDRESS/LEN) into `r`; on failure return
 * SS_EUSAGE with "PREFIX: bad CIDR 'TEXT': why" (PREFIX is "FILE:LINE"
 * from a file, empty otherwise).
 */
static int parse_cidr(const char *text, rule *r, ss_error *err, const char *where)
{
    char q[QUOTE_MAX + 4];
    const char *why;
    char whybuf[64];
    const char *slash = strchr(text, '/');
    size_t alen = slash != NULL ? (size_t)(slash - text) : strlen(text);
    char abuf[INET6_ADDRSTRLEN];
    unsigned char bytes[16];
    int fam, plen, max;

    if (text[0] == '\0') {
        why = "empty";
        goto bad;
    }
    if (alen == 0) {
        why = "missing address before '/'";
        goto bad;
    }
    /* inet_pton is strict enough: a.b.c.d only (no "127.1", no leading
     * zeros, no spaces); IPv6 without brackets or a scope */
    if (alen >= sizeof abuf) {
        why = "not an IPv4 or IPv6 address";
        goto bad;
    }
    memcpy(abuf, text, alen);
    abuf[alen] = '\0';
    if (inet_pton(AF_INET, abuf, bytes) == 1) {
        fam = FAM_V4;
        max = 32;
        r->net.fam = FAM_V4;
        r->net.hi = 0;
        r->net.lo = (uint64_t)bytes[0] << 24 | (uint64_t)bytes[1] << 16 | (uint64_t)bytes[2] << 8 |
                    bytes[3];
    } else if (inet_pton(AF_INET6, abuf, bytes) == 1) {
        fam = FAM_V6;
        max = 128;
        r->net.fam = FAM_V6;
        r->net.hi = load_be64(bytes);
        r->net.lo = load_be64(bytes + 8);
    } else {
        why = "not an IPv4 or IPv6 address";
        goto bad;
    }

    plen = max;
    if (slash != NULL) {
        const char *p = slash + 1;
        if (*p == '\0') {
            why = "missing prefix length after '/'";
            goto bad;
        }
        long v = 0;
        for (; *p != '\0'; p++) {
            if (!is_digit(*p)) {
                why = "prefix length is not a decimal number";
                goto bad;
            }
            if (v <= 1000) /* saturate: anything past 128 is wrong anyway */
                v = v * 10 + (*p - '0');
        }
        if (v > max) {
            snprintf(whybuf, sizeof whybuf, "prefix length must be 0..%d for IPv%d", max,
                     fam == FAM_V4 ? 4 : 6);
            why = whybuf;
            goto bad;
        }
        plen = (int)v;
    }

    /* An IPv6 rule inside ::ffff:0:0/96 is the IPv4 rule it spells. */
    if (fam == FAM_V6 && plen >= 96 && r->net.hi == 0 && r->net.lo >> 32 == 0xffff) {
        fam = FAM_V4;
        plen -= 96;
        r->net.fam = FAM_V4;
        r->net.lo &= 0xffffffffu;
    }
    set_prefix(r, fam, plen);
    return 0;

bad:
    quote(q, text, strlen(text));
    return ss__fail(err, SS_EUSAGE, "%s%sbad CIDR '%s': %s", where, *where ? ": " : "", q, why);
}

static bool rule_matches(const rule *r, const ip *p)
{
    return r->net.fam == p->fam && (p->hi & r->mask_hi) == r->net.hi &&
           (p->lo & r->mask_lo) == r->net.lo;
}

/* Room for `more` rules beyond a->n. */
static int reserve(ss_access *a, size_t more)
{
    if (a->cap - a->n >= more)
        return 0;
    if (more > SIZE_MAX / sizeof(rule) - a->n)
        return -ENOMEM;
    size_t want = a->n + more;
    size_t cap = a->cap < 8 ? 8 : a->cap;
    while (cap < want)
        cap = cap > SIZE_MAX / sizeof(rule) / 2 ? want : cap * 2;
    rule *r = realloc(a->rules, cap * sizeof *r);
    if (r == NULL)
        return -ENOMEM;
    a->rules = r;
    a->cap = cap;
    return 0;
}

static int add_rule(ss_access *a, const rule *r)
{
    int rc = reserve(a, 1);
    if (rc != 0)
        return rc;
    a->rules[a->n++] = *r;
    if (r->allow)
        a->n_allow++;
    return 0;
}

int ss_access_new(ss_access **out)
{
    *out = calloc(1, sizeof **out);
    return *out == NULL ? -ENOMEM : 0;
}

void ss_access_free(ss_access *a)
{
    if (a == NULL)
        return;
    free(a->rules);
    free(a);
}

int ss_access_add(ss_access *a, bool allow, const char *cidr, ss_error *err)
{
    if (a == NULL || cidr == NULL)
        return ss__fail(err, SS_EUSAGE, "ss_access_add: no rule set or no CIDR");
    rule r;
    int rc = parse_cidr(cidr, &r, err, "");
    if (rc != 0)
        return rc;
    r.allow = allow;
    rc = add_rule(a, &r);
    if (rc != 0)
        return ss__fail(err, rc, "cannot add rule '%s': %s", allow ? "allow" : "deny",
                        ss_strerror(rc));
    return 0;
}

/* Read all of `fd` into a fresh buffer, NUL-terminated (buf[len] is
 * there to write), failing past FILE_MAX bytes. It grows as it reads, so a
 * short file costs a short buffer, and /dev/zero or a pipe, which report no
 * size, still stop at the cap. */
static int read_all(int fd, char **out, size_t *len)
{
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    if (buf == NULL)
        return -ENOMEM;
    for (;;) {
        if (n == cap - 1) {
            if (n > FILE_MAX) {
                free(buf);
                return -EFBIG;
            }
            /* room for one byte past the cap (to tell "exactly 1 MiB" from
             * "more") and the NUL */
            size_t ncap = cap * 2 > FILE_MAX + 2 ? FILE_MAX + 2 : cap * 2;
            char *b = realloc(buf, ncap);
            if (b == NULL) {
                free(buf);
                return -ENOMEM;
            }
            buf = b;
            cap = ncap;
        }
        ssize_t got = read(fd, buf + n, cap - 1 - n);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            int rc = -errno;
            free(buf);
            return rc;
        }
        if (got == 0)
            break;
        n += (size_t)got;
    }
    if (n > FILE_MAX) {
        free(buf);
        return -EFBIG;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return 0;
}

/* One line of `len` bytes into `set`; line[len] (its newline, or the
 * buffer's NUL) may be overwritten. `where` is "FILE:LINE". */
static int parse_line(ss_access *set, char *line, size_t len, const char *where, ss_error *err)
{
    if (memchr(line, '\0', len) != NULL)
        return ss__fail(err, SS_EUSAGE, "%s: NUL byte in the line", where);
    char *hash = memchr(line, '#', len);
    if (hash != NULL)
        len = (size_t)(hash - line);
    char *p = line, *end = line + len;
    while (p < end && is_space(*p))
        p++;
    while (end > p && is_space(end[-1]))
        end--;
    if (p == end)
        return 0;

    const char *word = p;
    while (p < end && !is_space(*p))
        p++;
    size_t wlen = (size_t)(p - word);
    bool allow;
    if (wlen == 5 && memcmp(word, "allow", 5) == 0) {
        allow = true;
    } else if (wlen == 4 && memcmp(word, "deny", 4) == 0) {
        allow = false;
    } else {
        char q[QUOTE_MAX + 4];
        quote(q, word, wlen);
        return ss__fail(err, SS_EUSAGE, "%s: expected 'allow CIDR' or 'deny CIDR', not '%s'", where,
                        q);
    }
    while (p < end && is_space(*p))
        p++;
    if (p == end)
        return ss__fail(err, SS_EUSAGE, "%s: missing CIDR after '%s'", where,
                        allow ? "allow" : "deny");
    char *cidr = p;
    while (p < end && !is_space(*p))
        p++;
    char *cidr_end = p;
    while (p < end && is_space(*p))
        p++;
    if (p != end) {
        char q[QUOTE_MAX + 4];
        quote(q, p, (size_t)(end - p));
        return ss__fail(err, SS_EUSAGE, "%s: unexpected '%s' after the CIDR", where, q);
    }
    *cidr_end = '\0'; /* a space, the newline or the buffer's NUL */

    rule r;
    int rc = parse_cidr(cidr, &r, err, where);
    if (rc != 0)
        return rc;
    r.allow = allow;
    rc = add_rule(set, &r);
    return rc == 0 ? 0 : ss__fail(err, rc, "%s: %s", where, ss_strerror(rc));
}

int ss_access_load(ss_access *a, const char *path, ss_error *err)
{
    if (a == NULL || path == NULL)
        return ss__fail(err, SS_EUSAGE, "ss_access_load: no rule set or no path");
    char qpath[QUOTE_MAX + 4];
    quote(qpath, path, strlen(path));

    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int rc = -errno;
        return ss__fail(err, rc, "cannot read %s: %s", qpath, ss_strerror(rc));
    }
    char *buf = NULL;
    size_t len = 0;
    int rc = read_all(fd, &buf, &len);
    close(fd);
    if (rc == -EFBIG)
        return ss__fail(err, rc, "cannot read %s: more than 1 MiB", qpath);
    if (rc != 0)
        return ss__fail(err, rc, "cannot read %s: %s", qpath, ss_strerror(rc));

    /* Parse into a set of its own: `a` changes only once all of it parsed. */
    ss_access tmp = {0};
    size_t lineno = 0;
    for (size_t off = 0; off < len && rc == 0;) {
        const char *nl = memchr(buf + off, '\n', len - off);
        size_t n = nl != NULL ? (size_t)(nl - (buf + off)) : len - off;
        char where[QUOTE_MAX + 32];
        snprintf(where, sizeof where, "%s:%zu", qpath, ++lineno);
        rc = parse_line(&tmp, buf + off, n, where, err);
        off += n + 1;
    }
    free(buf);
    if (rc == 0 && tmp.n > 0) {
        rc = reserve(a, tmp.n);
        if (rc == 0) {
            memcpy(a->rules + a->n, tmp.rules, tmp.n * sizeof *tmp.rules);
            a->n += tmp.n;
            a->n_allow += tmp.n_allow;
        } else {
            ss__fail(err, rc, "cannot load %s: %s", qpath, ss_strerror(rc));
        }
    }
    free(tmp.rules);
    return rc;
}

bool ss_access_allows(const ss_access *a, const ss_addr *peer)
{
    ip p;
    /* no rules, or no IP to judge (unix peers): rules are about addresses */
    if (a == NULL || a->n == 0 || !ip_of_addr(peer, &p))
        return true;
    bool allowed = false;
    for (size_t i = 0; i < a->n; i++) {
        const rule *r = &a->rules[i];
        if (!rule_matches(r, &p))
            continue;
        if (!r->allow)
            return false; /* a deny wins wherever it is */
        allowed = true;
    }
    return allowed || a->n_allow == 0;
}

bool ss_addr_in_cidr(const ss_addr *peer, const char *cidr)
{
    ip p;
    rule r;
    if (cidr == NULL || !ip_of_addr(peer, &p) || parse_cidr(cidr, &r, NULL, "") != 0)
        return false;
    return rule_matches(&r, &p);
}
