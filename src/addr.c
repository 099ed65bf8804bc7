/* SPDX-License-Identifier: MIT */
/*
 * addr.c — the one address syntax: parse, format and resolve.
 *
 *   tcp://HOST:PORT  udp://HOST:PORT  HOST:PORT  :PORT   (HOST: a.b.c.d, [v6%scope], name)
 *   unix:/path  unix:@abstract  unixgram:...  seqpacket:...
 *
 * (systemd:, systemd:NAME and fd:N name inherited sockets, not addresses:
 * inherited.c reads them, and only for servers.)
 *
 * Parsing is strict on purpose: an address typed on a command line or in a
 * config file should either mean exactly one thing or fail with a message
 * that says which part is wrong. Syntax is checked completely before any
 * name lookup, so a typo in the port never costs a DNS round trip.
 */
#include "internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* Longest host name DNS allows (RFC 1035, without the trailing dot). */
#define HOST_MAX 253
/* Longest unix path / abstract name we accept: sun_path keeps room for the
 * NUL (path) or the leading NUL byte (abstract). */
#define UNIX_NAME_MAX (sizeof(((struct sockaddr_un *)0)->sun_path) - 1)
/* How much of the input an error message quotes. */
#define QUOTE_MAX 200

static const struct {
    const char *name;
    ss_addr_kind kind;
} schemes[] = {
    {"tcp", SS_ADDR_TCP},
    {"udp", SS_ADDR_UDP},
    {"unix", SS_ADDR_UNIX},
    {"unixgram", SS_ADDR_UNIXGRAM},
    {"seqpacket", SS_ADDR_SEQPACKET},
};

static bool is_unix_kind(ss_addr_kind kind)
{
    return kind == SS_ADDR_UNIX || kind == SS_ADDR_UNIXGRAM || kind == SS_ADDR_SEQPACKET;
}

static bool is_inet_kind(ss_addr_kind kind)
{
    return kind == SS_ADDR_TCP || kind == SS_ADDR_UDP;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}
static bool is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
static bool is_control(unsigned char c)
{
    return c < 0x20 || c == 0x7f;
}

/*
 * SS_EBADADDR with "bad address 'TEXT': REASON". The quote is bounded and
 * control characters are replaced so the message stays one readable line
 * whatever the caller passed in.
 */
static int bad_v(ss_error *err, const char *text, const char *fmt, va_list ap)
{
    if (err == NULL)
        return SS_EBADADDR;
    char quote[QUOTE_MAX + 4];
    size_t n = 0;
    for (; text[n] != '\0' && n < QUOTE_MAX; n++)
        quote[n] = is_control((unsigned char)text[n]) ? '?' : text[n];
    quote[n] = '\0';
    if (text[n] != '\0')
        memcpy(quote + n, "...", 4);
    char reason[256];
    vsnprintf(reason, sizeof reason, fmt, ap);
    for (char *r = reason; *r != '\0'; r++) /* reasons quote parts of the input too */
        if (is_control((unsigned char)*r))
            *r = '?';
    return ss__fail(err, SS_EBADADDR, "bad address '%s': %s", quote, reason);
}

static int bad(ss_error *err, const char *text, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int bad(ss_error *err, const char *text, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = bad_v(err, text, fmt, ap);
    va_end(ap);
    return rc;
}

int ss__bad_addr(ss_error *err, const char *text, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = bad_v(err, text, fmt, ap);
    va_end(ap);
    return rc;
}

/* ---- unix ---------------------------------------------------------------- */

static int parse_unix(ss_addr *out, ss_addr_kind kind, const char *text, const char *rest,
                      ss_error *err)
{
    bool abstract = rest[0] == '@';
    const char *name = abstract ? rest + 1 : rest;
    size_t n = strlen(name);

    if (n == 0)
        return abstract ? bad(err, text, "empty abstract unix name")
                        : bad(err, text, "empty unix path");
    if (n > UNIX_NAME_MAX)
        return bad(err, text, "%s longer than %zu bytes",
                   abstract ? "abstract unix name" : "unix path", (size_t)UNIX_NAME_MAX);
    for (size_t i = 0; i < n; i++)
        if (is_control((unsigned char)name[i]))
            return bad(err, text, "control character in unix %s",
                       abstract ? "abstract name" : "path");

    out->kind = kind;
    out->u.un.sun_family = AF_UNIX;
    if (abstract) {
        /* Abstract names are length-sensitive: the name is exactly the bytes
         * after the leading NUL up to `len`, so no padding may follow. */
        out->u.un.sun_path[0] = '\0';
        memcpy(out->u.un.sun_path + 1, name, n);
        out->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n);
    } else {
        /* Counting the NUL matches what the kernel reports from getsockname. */
        memcpy(out->u.un.sun_path, name, n + 1);
        out->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
    }
    return 1;
}

/* ---- inet ---------------------------------------------------------------- */

/* Decimal 0..65535: digits only, no sign, no spaces, nothing after. */
static int parse_port(const char *text, const char *p, int *port, ss_error *err)
{
    if (*p == '\0')
        return bad(err, text, "missing port");
    long value = 0;
    for (const char *q = p; *q != '\0'; q++) {
        if (!is_digit(*q))
            return bad(err, text, "port '%s' is not a decimal number 0..65535", p);
        if (value <= 65535)
            value = value * 10 + (*q - '0');
    }
    if (value > 65535)
        return bad(err, text, "port must be 0..65535");
    *port = (int)value;
    return 0;
}

static void set_in4(ss_addr *out, ss_addr_kind kind, const struct in_addr *ip, int port)
{
    out->kind = kind;
    out->len = sizeof(struct sockaddr_in);
    out->u.in.sin_family = AF_INET;
    out->u.in.sin_addr = *ip;
    out->u.in.sin_port = htons((uint16_t)port);
}

static void set_in6(ss_addr *out, ss_addr_kind kind, const struct in6_addr *ip, uint32_t scope,
                    int port)
{
    out->kind = kind;
    out->len = sizeof(struct sockaddr_in6);
    out->u.in6.sin6_family = AF_INET6;
    out->u.in6.sin6_addr = *ip;
    out->u.in6.sin6_scope_id = scope;
    out->u.in6.sin6_port = htons((uint16_t)port);
}

/* Can this machine make IPv6 sockets at all? Asked each time (no global
 * state); only ":PORT" with SS_ADDR_PASSIVE needs it. */
static bool have_ipv6(void)
{
    int fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    close(fd);
    return true;
}

/* "[v6]" or "[v6%scope]": the scope is an interface name or index. */
static int parse_v6(ss_addr *out, ss_addr_kind kind, const char *text, const char *host,
                    size_t hostlen, int port, ss_error *err)
{
    char buf[INET6_ADDRSTRLEN + IF_NAMESIZE + 2];
    if (hostlen == 0)
        return bad(err, text, "empty IPv6 host '[]'");
    if (hostlen >= sizeof buf)
        return bad(err, text, "bad IPv6 address");
    memcpy(buf, host, hostlen);
    buf[hostlen] = '\0';

    uint32_t scope = 0;
    char *pct = strchr(buf, '%');
    if (pct != NULL) {
        *pct++ = '\0';
        if (*pct == '\0')
            return bad(err, text, "empty IPv6 scope after '%%'");
        if (is_digit(*pct)) {
            unsigned long v = 0;
            for (const char *q = pct; *q != '\0'; q++) {
                if (!is_digit(*q) || v > UINT32_MAX / 10)
                    return bad(err, text, "bad IPv6 scope '%s'", pct);
                v = v * 10 + (unsigned long)(*q - '0');
            }
            if (v > UINT32_MAX)
                return bad(err, text, "bad IPv6 scope '%s'", pct);
            scope = (uint32_t)v;
        } else {
            scope = if_nametoindex(pct);
            if (scope == 0)
                return bad(err, text, "unknown interface '%s' in IPv6 scope", pct);
        }
    }
    struct in6_addr ip;
    if (inet_pton(AF_INET6, buf, &ip) != 1)
        return bad(err, text, "bad IPv6 address '%s'", buf);
    set_in6(out, kind, &ip, scope, port);
    return 1;
}

static bool same_addr(const ss_addr *a, const ss_addr *b)
{
    return a->kind == b->kind && a->len == b->len && memcmp(&a->u, &b->u, a->len) == 0;
}

/* Look a name up; store up to `max` distinct results. */
static int resolve_name(ss_addr *out, size_t max, ss_addr_kind kind, const char *text,
                        const char *host, int port, int flags, ss_error *err)
{
    struct addrinfo hints = {0};
    struct addrinfo *res = NULL;

    if (flags & SS_ADDR_NUMERIC)
        return bad(err, text, "'%s' is a host name, but only numeric addresses are allowed", host);

    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = ss_addr_socktype(kind);
    int rc = getaddrinfo(host, NULL, &hints, &res);
    if (rc != 0) {
        if (rc == EAI_MEMORY)
            return ss__fail(err, -ENOMEM, "cannot resolve '%s': %s", host, gai_strerror(rc));
        if (rc == EAI_SYSTEM && errno != 0) {
            int code = -errno;
            return ss__fail(err, code, "cannot resolve '%s': %s", host, ss_strerror(code));
        }
        return ss__fail(err, SS_ENORESOLVE, "cannot resolve '%s': %s", host, gai_strerror(rc));
    }

    size_t count = 0;
    for (struct addrinfo *ai = res; ai != NULL && count < max; ai = ai->ai_next) {
        ss_addr a;
        memset(&a, 0, sizeof a);
        if (ai->ai_family == AF_INET && ai->ai_addrlen >= sizeof(struct sockaddr_in)) {
            const struct sockaddr_in *sin = (const struct sockaddr_in *)ai->ai_addr;
            set_in4(&a, kind, &sin->sin_addr, port);
        } else if (ai->ai_family == AF_INET6 && ai->ai_addrlen >= sizeof(struct sockaddr_in6)) {
            const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ai->ai_addr;
            set_in6(&a, kind, &sin6->sin6_addr, sin6->sin6_scope_id, port);
        } else {
            continue;
        }
        bool seen = false;
        for (size_t i = 0; i < count && !seen; i++)
            seen = same_addr(&out[i], &a);
        if (!seen)
            out[count++] = a;
    }
    freeaddrinfo(res);
    if (count == 0)
        return ss__fail(err, SS_ENORESOLVE, "cannot resolve '%s': no IPv4 or IPv6 address", host);
    return (int)count;
}

/* A name we are willing to hand to the resolver: letters, digits, '-', '_'
 * and '.'; anything else is a typo, not a host. */
static bool plausible_name(const char *host)
{
    for (const char *p = host; *p != '\0'; p++)
        if (!is_alpha(*p) && !is_digit(*p) && *p != '-' && *p != '.' && *p != '_')
            return false;
    return true;
}

/* Only digits and dots: meant as IPv4, so never a name to look up. */
static bool looks_like_ipv4(const char *host)
{
    for (const char *p = host; *p != '\0'; p++)
        if (!is_digit(*p) && *p != '.')
            return false;
    return true;
}

/*
 * Does getaddrinfo take this as a number? It accepts inet_aton's legacy
 * forms ("127.1", "0x7f.1", "017.0.0.1") that inet_pton refuses and that
 * mean something surprising; we refuse them rather than guess.
 */
static bool legacy_numeric(const char *host)
{
    struct addrinfo hints = {0};
    struct addrinfo *res = NULL;
    hints.ai_flags = AI_NUMERICHOST;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host, NULL, &hints, &res) != 0)
        return false;
    freeaddrinfo(res);
    return true;
}

static int parse_inet(ss_addr *out, size_t max, ss_addr_kind kind, const char *text,
                      const char *rest, int flags, ss_error *err)
{
    const char *host;
    size_t hostlen;
    const char *portstr;
    bool bracketed = rest[0] == '[';

    if (bracketed) {
        const char *close = strchr(rest, ']');
        if (close == NULL)
            return bad(err, text, "missing ']' after IPv6 host");
        host = rest + 1;
        hostlen = (size_t)(close - host);
        if (close[1] == '\0')
            return bad(err, text, "missing port");
        if (close[1] != ':')
            return bad(err, text, "expected ':PORT' after ']'");
        portstr = close + 2;
    } else {
        const char *colon = strrchr(rest, ':');
        if (colon == NULL) {
            if (rest[0] == '/' || rest[0] == '@')
                return bad(err, text, "missing scheme (a unix socket is written unix:%s)", rest);
            return bad(err, text, "missing port");
        }
        host = rest;
        hostlen = (size_t)(colon - rest);
        if (memchr(host, ':', hostlen) != NULL)
            return bad(err, text, "IPv6 host must be in brackets, e.g. [::1]:PORT");
        portstr = colon + 1;
    }

    int port = 0;
    int rc = parse_port(text, portstr, &port, err);
    if (rc < 0)
        return rc;

    if (bracketed)
        return parse_v6(out, kind, text, host, hostlen, port, err);

    if (hostlen == 0) {
        /* ":PORT": a server means every interface, a client means this host. */
        if (flags & SS_ADDR_PASSIVE) {
            if (have_ipv6()) {
                set_in6(out, kind, &in6addr_any, 0, port);
            } else {
                struct in_addr any = {htonl(INADDR_ANY)};
                set_in4(out, kind, &any, port);
            }
        } else {
            struct in_addr lo = {htonl(INADDR_LOOPBACK)};
            set_in4(out, kind, &lo, port);
        }
        return 1;
    }

    if (hostlen > HOST_MAX)
        return bad(err, text, "host name longer than %d bytes", HOST_MAX);
    char name[HOST_MAX + 1];
    memcpy(name, host, hostlen);
    name[hostlen] = '\0';

    struct in_addr ip4;
    if (inet_pton(AF_INET, name, &ip4) == 1) {
        set_in4(out, kind, &ip4, port);
        return 1;
    }
    if (!plausible_name(name))
        return bad(err, text, "bad host name '%s'", name);
    if (looks_like_ipv4(name) || legacy_numeric(name))
        return bad(err, text, "bad IPv4 address '%s' (want four decimal parts a.b.c.d)", name);
    return resolve_name(out, max, kind, text, name, port, flags, err);
}

/* ---- inherited sockets: recognised here, read by inherited.c ------------- */

static bool has_scheme(const char *text, const char *scheme)
{
    size_t n = strlen(scheme);
    return strncasecmp(text, scheme, n) == 0 && text[n] == ':';
}

bool ss_addr_is_inherited(const char *text)
{
    return text != NULL && (has_scheme(text, "systemd") || has_scheme(text, "fd"));
}

/* ---- the front door ------------------------------------------------------ */

/*
 * Splits off the scheme and dispatches. Returns how many addresses it
 * stored in out[0..max) (>= 1) or a negative code.
 */
static int parse_any(ss_addr *out, size_t max, const char *text, int flags, ss_error *err)
{
    memset(out, 0, sizeof *out);
    if (text == NULL)
        return ss__fail(err, SS_EBADADDR, "bad address: none given");
    if (text[0] == '\0')
        return bad(err, text, "empty address");

    if (ss_addr_is_inherited(text))
        return bad(err, text, "an inherited socket (systemd:, systemd:NAME, fd:N) is not an "
                              "address: only a server can take it");

    /* A scheme is letters (then letters/digits/+-.) before the first ':'. */
    size_t n = 0;
    if (is_alpha(text[0]))
        while (is_alpha(text[n]) || is_digit(text[n]) || text[n] == '+' || text[n] == '-' ||
               text[n] == '.')
            n++;
    if (n > 0 && text[n] == ':') {
        const char *after = text + n + 1;
        for (size_t i = 0; i < SS__ARRAY_LEN(schemes); i++) {
            if (strlen(schemes[i].name) != n || strncasecmp(text, schemes[i].name, n) != 0)
                continue;
            ss_addr_kind kind = schemes[i].kind;
            if (is_unix_kind(kind))
                return parse_unix(out, kind, text, after, err);
            if (strncmp(after, "//", 2) != 0)
                return bad(err, text, "missing '//' after '%s:'", schemes[i].name);
            return parse_inet(out, max, kind, text, after + 2, flags, err);
        }
        /* "name:80" is a host and port; "foo://x", "foo:/x" and "foo:@x"
         * can only have meant a scheme we do not know. */
        if (after[0] == '/' || after[0] == '@')
            return bad(err, text, "unknown scheme '%.*s'", (int)n, text);
    }
    return parse_inet(out, max, SS_ADDR_TCP, text, text, flags, err);
}

int ss_addr_parse(ss_addr *out, const char *text, int flags, ss_error *err)
{
    if (out == NULL)
        return ss__fail(err, SS_EUSAGE, "ss_addr_parse: no output address");
    int rc = parse_any(out, 1, text, flags, err);
    if (rc < 0) {
        memset(out, 0, sizeof *out);
        return rc;
    }
    return 0;
}

int ss_addr_resolve(const char *text, int flags, ss_addr *out, size_t max, ss_error *err)
{
    if (out == NULL || max == 0)
        return ss__fail(err, SS_EUSAGE, "ss_addr_resolve: no room for results");
    int rc = parse_any(out, max, text, flags, err);
    if (rc < 0)
        memset(out, 0, sizeof *out);
    return rc;
}

/* ---- formatting ---------------------------------------------------------- */

/*
 * Unix names from the kernel may hold any byte. Like /proc/net/unix and
 * ss(8), show a NUL inside an abstract name as '@' and other control bytes as
 * '?': the text stays one line and bounded (SS_ADDR_STRLEN), and every name
 * ss_addr_parse accepts (no control bytes) still formats back to itself.
 */
static size_t put_unix_name(char *dst, const char *src, size_t n, bool abstract)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)src[i];
        if (c == '\0')
            dst[i] = abstract ? '@' : '?';
        else
            dst[i] = is_control(c) ? '?' : (char)c;
    }
    return n;
}

static int format_unix(const ss_addr *a, const char *scheme, char *tmp)
{
    size_t off = offsetof(struct sockaddr_un, sun_path);
    int n = snprintf(tmp, SS_ADDR_STRLEN, "%s:", scheme);
    if (a->len <= off)
        return n; /* unnamed (unbound, or a socketpair end) */
    const char *path = a->u.un.sun_path;
    size_t avail = a->len - off;
    if (avail > sizeof a->u.un.sun_path)
        avail = sizeof a->u.un.sun_path;
    if (path[0] == '\0') {
        tmp[n++] = '@';
        n += (int)put_unix_name(tmp + n, path + 1, avail - 1, true);
    } else {
        n += (int)put_unix_name(tmp + n, path, strnlen(path, avail), false);
    }
    tmp[n] = '\0';
    return n;
}

static int format_inet(const ss_addr *a, const char *scheme, char *tmp)
{
    char host[INET6_ADDRSTRLEN];
    if (a->u.sa.sa_family == AF_INET) {
        if (a->len < sizeof(struct sockaddr_in) ||
            inet_ntop(AF_INET, &a->u.in.sin_addr, host, sizeof host) == NULL)
            return SS_EBADADDR;
        return snprintf(tmp, SS_ADDR_STRLEN, "%s://%s:%u", scheme, host,
                        (unsigned)ntohs(a->u.in.sin_port));
    }
    if (a->len < sizeof(struct sockaddr_in6) ||
        inet_ntop(AF_INET6, &a->u.in6.sin6_addr, host, sizeof host) == NULL)
        return SS_EBADADDR;
    char scope[IF_NAMESIZE + 2] = "";
    uint32_t id = a->u.in6.sin6_scope_id;
    if (id != 0) {
        char ifname[IF_NAMESIZE];
        if (if_indextoname(id, ifname) != NULL)
            snprintf(scope, sizeof scope, "%%%s", ifname);
        else
            snprintf(scope, sizeof scope, "%%%u", (unsigned)id);
    }
    return snprintf(tmp, SS_ADDR_STRLEN, "%s://[%s%s]:%u", scheme, host, scope,
                    (unsigned)ntohs(a->u.in6.sin6_port));
}

int ss_addr_format(const ss_addr *a, char *buf, size_t len)
{
    if (a == NULL || a->len > sizeof a->u)
        return SS_EBADADDR;
    int family = a->u.sa.sa_family;
    ss_addr_kind kind = a->kind;
    if (kind == SS_ADDR_NONE)
        kind = family == AF_UNIX ? SS_ADDR_UNIX : SS_ADDR_TCP;

    char tmp[SS_ADDR_STRLEN];
    int n;
    if (family == AF_UNIX && is_unix_kind(kind))
        n = format_unix(a, ss_addr_kind_name(kind), tmp);
    else if ((family == AF_INET || family == AF_INET6) && is_inet_kind(kind))
        n = format_inet(a, ss_addr_kind_name(kind), tmp);
    else
        return SS_EBADADDR;
    if (n < 0)
        return n;
    if (buf != NULL && len > 0) {
        size_t copy = (size_t)n < len ? (size_t)n : len - 1;
        memcpy(buf, tmp, copy);
        buf[copy] = '\0';
    }
    return n;
}

/* ---- small accessors ----------------------------------------------------- */

int ss_addr_from_sockaddr(ss_addr *out, ss_addr_kind kind, const struct sockaddr *sa, socklen_t len)
{
    if (out == NULL)
        return SS_EBADADDR;
    memset(out, 0, sizeof *out);
    /* An unnamed unix peer may come back with a length of 0 (recvfrom). */
    if (is_unix_kind(kind) && (sa == NULL || len < sizeof(sa_family_t))) {
        out->kind = kind;
        out->u.un.sun_family = AF_UNIX;
        out->len = sizeof(sa_family_t);
        return 0;
    }
    if (sa == NULL || len < sizeof(sa_family_t))
        return SS_EBADADDR;

    int family = sa->sa_family;
    if (kind == SS_ADDR_NONE)
        kind = family == AF_UNIX ? SS_ADDR_UNIX : SS_ADDR_TCP;
    if (family == AF_INET) {
        if (!is_inet_kind(kind) || len < sizeof(struct sockaddr_in))
            return SS_EBADADDR;
        len = sizeof(struct sockaddr_in);
    } else if (family == AF_INET6) {
        if (!is_inet_kind(kind) || len < sizeof(struct sockaddr_in6))
            return SS_EBADADDR;
        len = sizeof(struct sockaddr_in6);
    } else if (family == AF_UNIX) {
        if (!is_unix_kind(kind))
            return SS_EBADADDR;
        if (len > sizeof(struct sockaddr_un))
            len = sizeof(struct sockaddr_un);
    } else {
        return SS_EBADADDR;
    }
    memcpy(&out->u, sa, len);
    out->kind = kind;
    out->len = len;
    return 0;
}

int ss_addr_family(const ss_addr *a)
{
    return a == NULL ? AF_UNSPEC : a->u.sa.sa_family;
}

int ss_addr_socktype(ss_addr_kind kind)
{
    switch (kind) {
    case SS_ADDR_TCP:
    case SS_ADDR_UNIX: return SOCK_STREAM;
    case SS_ADDR_UDP:
    case SS_ADDR_UNIXGRAM: return SOCK_DGRAM;
    case SS_ADDR_SEQPACKET: return SOCK_SEQPACKET;
    default: return SS_EBADADDR;
    }
}

bool ss_addr_is_stream(ss_addr_kind kind)
{
    return kind == SS_ADDR_TCP || kind == SS_ADDR_UNIX || kind == SS_ADDR_SEQPACKET;
}

bool ss_addr_is_loopback(const ss_addr *a)
{
    if (a == NULL)
        return false;
    switch (a->u.sa.sa_family) {
    case AF_UNIX: return true;
    case AF_INET: return (ntohl(a->u.in.sin_addr.s_addr) >> 24) == 127;
    case AF_INET6: {
        const struct in6_addr *ip = &a->u.in6.sin6_addr;
        if (IN6_IS_ADDR_LOOPBACK(ip))
            return true;
        return IN6_IS_ADDR_V4MAPPED(ip) && ip->s6_addr[12] == 127;
    }
    default: return false;
    }
}

int ss_addr_port(const ss_addr *a)
{
    if (a == NULL)
        return -1;
    if (a->u.sa.sa_family == AF_INET)
        return ntohs(a->u.in.sin_port);
    if (a->u.sa.sa_family == AF_INET6)
        return ntohs(a->u.in6.sin6_port);
    return -1;
}

const char *ss_addr_kind_name(ss_addr_kind kind)
{
    for (size_t i = 0; i < SS__ARRAY_LEN(schemes); i++)
        if (schemes[i].kind == kind)
            return schemes[i].name;
    return "none";
}
