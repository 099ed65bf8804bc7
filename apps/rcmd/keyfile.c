/* SPDX-License-Identifier: MIT */
/* keyfile.c — load and create rcmd key files (docs/rcmd-protocol.md §2.1). */
#include "rcmd/keyfile.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int fail(ss_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(ss_error *err, int code, const char *fmt, ...)
{
    if (err != NULL) {
        va_list ap;
        va_start(ap, fmt);
        err->code = code;
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

void rcmd_key_wipe(rcmd_key *k)
{
    OPENSSL_cleanse(k, sizeof *k);
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static void to_hex(const unsigned char *b, size_t n, char *out)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[b[i] >> 4];
        out[2 * i + 1] = hex[b[i] & 15];
    }
    out[2 * n] = '\0';
}

void rcmd_key_default_identity(const unsigned char *key, size_t len, char *out)
{
    static const char label[] = "sockserve-rcmd-identity";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1 ||
        EVP_DigestUpdate(ctx, label, sizeof label - 1) != 1 ||
        EVP_DigestUpdate(ctx, key, len) != 1 || EVP_DigestFinal_ex(ctx, md, &mdlen) != 1)
        memset(md, 0, sizeof md); /* only on allocation failure; still defined */
    EVP_MD_CTX_free(ctx);
    memcpy(out, "rcmd-", 5);
    to_hex(md, 8, out + 5);
}

/* One "name value" line; value has no surrounding blanks. */
static int parse_line(rcmd_key *k, const char *line, size_t n, const char *name, int lineno,
                      bool *have_key, bool *have_id, ss_error *err)
{
    while (n > 0 && (line[n - 1] == ' ' || line[n - 1] == '\t' || line[n - 1] == '\r'))
        n--;
    while (n > 0 && (*line == ' ' || *line == '\t')) {
        line++;
        n--;
    }
    if (n == 0 || line[0] == '#')
        return 0;
    const char *sp = memchr(line, ' ', n);
    if (sp == NULL)
        return fail(err, SS_EUSAGE,
                    "key file '%s' line %d: expected 'key HEX' or "
                    "'identity NAME'",
                    name, lineno);
    size_t fl = (size_t)(sp - line);
    const char *v = sp + 1;
    size_t vl = n - fl - 1;
    while (vl > 0 && *v == ' ') {
        v++;
        vl--;
    }
    if (fl == 3 && memcmp(line, "key", 3) == 0) {
        if (*have_key)
            return fail(err, SS_EUSAGE, "key file '%s' line %d: second 'key'", name, lineno);
        if (vl % 2 != 0 || vl < 2 * RCMD_KEY_MIN || vl > 2 * RCMD_KEY_MAX)
            return fail(err, SS_EUSAGE,
                        "key file '%s' line %d: the key must be %d to %d "
                        "hex digits",
                        name, lineno, 2 * RCMD_KEY_MIN, 2 * RCMD_KEY_MAX);
        for (size_t i = 0; i < vl; i += 2) {
            int hi = hexval((unsigned char)v[i]), lo = hexval((unsigned char)v[i + 1]);
            if (hi < 0 || lo < 0)
                return fail(err, SS_EUSAGE, "key file '%s' line %d: the key is not hex", name,
                            lineno);
            k->key[i / 2] = (unsigned char)(hi << 4 | lo);
        }
        k->key_len = vl / 2;
        *have_key = true;
        return 0;
    }
    if (fl == 8 && memcmp(line, "identity", 8) == 0) {
        if (*have_id)
            return fail(err, SS_EUSAGE, "key file '%s' line %d: second 'identity'", name, lineno);
        if (vl == 0 || vl > RCMD_IDENTITY_MAX)
            return fail(err, SS_EUSAGE,
                        "key file '%s' line %d: the identity must be 1 to "
                        "%d characters",
                        name, lineno, RCMD_IDENTITY_MAX);
        for (size_t i = 0; i < vl; i++)
            if ((unsigned char)v[i] <= 0x20 || (unsigned char)v[i] >= 0x7f)
                return fail(err, SS_EUSAGE,
                            "key file '%s' line %d: the identity must be "
                            "printable ASCII without spaces",
                            name, lineno);
        memcpy(k->identity, v, vl);
        k->identity[vl] = '\0';
        *have_id = true;
        return 0;
    }
    return fail(err, SS_EUSAGE, "key file '%s' line %d: unknown field '%.*s'", name, lineno,
                (int)(fl > 32 ? 32 : fl), line);
}

int rcmd_key_parse(rcmd_key *k, const char *text, size_t len, const char *name, ss_error *err)
{
    memset(k, 0, sizeof *k);
    bool have_key = false, have_id = false;
    int lineno = 0;
    const char *p = text, *end = text + len;
    if (memchr(text, '\0', len) != NULL) {
        rcmd_key_wipe(k);
        return fail(err, SS_EUSAGE, "key file '%s' is not text", name);
    }
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        lineno++;
        int rc = parse_line(k, p, n, name, lineno, &have_key, &have_id, err);
        if (rc < 0) {
            rcmd_key_wipe(k);
            return rc;
        }
        p += n + (nl ? 1 : 0);
    }
    if (!have_key) {
        rcmd_key_wipe(k);
        return fail(err, SS_EUSAGE, "key file '%s' has no 'key' line", name);
    }
    if (!have_id)
        rcmd_key_default_identity(k->key, k->key_len, k->identity);
    return 0;
}

/* The one permission rule for every secret file: a regular file owned by us
 * (or root), with no group or other bits. Someone else's file is refused even
 * at mode 0600, as OpenSSH refuses it: its owner can replace the key. */
static int check_private_stat(const struct stat *st, const char *path, const char *what,
                              ss_error *err)
{
    if (!S_ISREG(st->st_mode))
        return fail(err, -EINVAL, "%s '%s' is not a regular file", what, path);
    if (st->st_uid != geteuid() && st->st_uid != 0)
        return fail(err, -EPERM, "%s '%s' is owned by uid %u, not by us (uid %u) or root",
                    what, path, (unsigned)st->st_uid, (unsigned)geteuid());
    if ((st->st_mode & 077) != 0)
        return fail(err, -EACCES, "%s '%s' is accessible by others (mode %04o); chmod 600 it",
                    what, path, (unsigned)(st->st_mode & 07777));
    return 0;
}

int rcmd_check_private_file(const char *path, const char *what, ss_error *err)
{
    struct stat st;
    if (stat(path, &st) < 0) {
        int e = errno;
        return fail(err, -e, "cannot open %s '%s': %s", what, path, strerror(e));
    }
    return check_private_stat(&st, path, what, err);
}

int rcmd_key_load(rcmd_key *k, const char *path, ss_error *err)
{
    memset(k, 0, sizeof *k);
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        int e = errno;
        return fail(err, -e, "cannot open key file '%s': %s", path, strerror(e));
    }
    /* fstat on the opened file: what we check is what we read */
    struct stat st;
    if (fstat(fd, &st) < 0) {
        int e = errno;
        close(fd);
        return fail(err, -e, "cannot stat key file '%s': %s", path, strerror(e));
    }
    int rc = check_private_stat(&st, path, "key file", err);
    if (rc < 0) {
        close(fd);
        return rc;
    }
    if (st.st_size > RCMD_KEYFILE_MAX) {
        close(fd);
        return fail(err, SS_EUSAGE, "key file '%s' is too large (over %d bytes)", path,
                    RCMD_KEYFILE_MAX);
    }
    char text[RCMD_KEYFILE_MAX + 1];
    size_t got = 0;
    for (;;) {
        ssize_t n = read(fd, text + got, sizeof text - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;
            close(fd);
            OPENSSL_cleanse(text, sizeof text);
            return fail(err, -e, "cannot read key file '%s': %s", path, strerror(e));
        }
        if (n == 0)
            break;
        got += (size_t)n;
        if (got > RCMD_KEYFILE_MAX) {
            close(fd);
            OPENSSL_cleanse(text, sizeof text);
            return fail(err, SS_EUSAGE, "key file '%s' is too large (over %d bytes)", path,
                        RCMD_KEYFILE_MAX);
        }
    }
    close(fd);
    rc = rcmd_key_parse(k, text, got, path, err);
    OPENSSL_cleanse(text, sizeof text);
    return rc;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -errno;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int rcmd_key_generate(const char *path, ss_error *err)
{
    unsigned char key[RCMD_KEY_GEN];
    if (RAND_bytes(key, sizeof key) != 1)
        return fail(err, SS_ETLS, "cannot make a key: the random generator failed");
    char id[32], hex[2 * RCMD_KEY_GEN + 1], text[256];
    rcmd_key_default_identity(key, sizeof key, id);
    to_hex(key, sizeof key, hex);
    int len = snprintf(text, sizeof text,
                       "# sockserve rcmd key: keep it secret (mode 0600)\n"
                       "identity %s\nkey %s\n",
                       id, hex);
    OPENSSL_cleanse(key, sizeof key);
    OPENSSL_cleanse(hex, sizeof hex);

    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0600);
    if (fd < 0) {
        int e = errno;
        OPENSSL_cleanse(text, sizeof text);
        if (e == EEXIST)
            return fail(err, -EEXIST, "key file '%s' exists; not overwriting it", path);
        return fail(err, -e, "cannot create key file '%s': %s", path, strerror(e));
    }
    /* the umask may have taken bits away, never added any; make sure anyway */
    int rc = fchmod(fd, 0600) < 0 ? -errno : 0;
    if (rc == 0)
        rc = write_all(fd, text, (size_t)len);
    if (rc == 0 && fsync(fd) < 0)
        rc = -errno;
    OPENSSL_cleanse(text, sizeof text);
    if (close(fd) < 0 && rc == 0)
        rc = -errno;
    if (rc < 0) {
        unlink(path);
        return fail(err, rc, "cannot write key file '%s': %s", path, strerror(-rc));
    }
    return 0;
}
