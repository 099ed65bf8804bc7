/* SPDX-License-Identifier: MIT */
/*
 * tls_material.c — the files of a TLS context, in memory (see the header).
 *
 * Why bytes and not OpenSSL's *_file loaders: a prefork worker must serve
 * what its parent last loaded *successfully*. If workers re-read the files
 * themselves, one that served nothing between a good reload and a later bad
 * file reads the bad file and keeps its start-up certificate. So the parent
 * reads each file once, builds from the bytes, and on success publishes
 * those same bytes; workers build from them and never open the files (which
 * also need not stay readable by --user).
 *
 * The shared area is written by one process at a time (the one that
 * reloads, under its context's lock) and read by any: a seqlock. A reader
 * that races a writer sees an odd or changed sequence and tries again at
 * its next connection; it never waits for the writer.
 */
#include "tls_material.h"
#include "internal.h"

#include <openssl/err.h>
#include <openssl/pem.h>

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

const char *ss__tls_reason(char *buf, size_t len)
{
    unsigned long e = ERR_get_error();
    while (ERR_get_error() != 0)
        ; /* keep the first: it is the cause */
    const char *r = e != 0 ? ERR_reason_error_string(e) : NULL;
    snprintf(buf, len, "%s", r != NULL ? r : "unknown TLS error");
    return buf;
}

/* ---- reading the files ---------------------------------------------------- */

static int read_file(tls_pem *out, const char *what, const char *path, ss_error *err)
{
    out->bytes = NULL;
    out->len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return ss__fail(err, SS_ETLS, "cannot read %s '%s': %s", what, path, strerror(errno));
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st) < 0)
        rc = ss__fail(err, SS_ETLS, "cannot read %s '%s': %s", what, path, strerror(errno));
    else if (!S_ISREG(st.st_mode) || st.st_size > TLS_FILE_MAX)
        rc = ss__fail(err, SS_ETLS, "%s '%s' is not a regular file of at most %d KiB", what, path,
                      TLS_FILE_MAX / 1024);
    /* One byte more than the limit: a file that grew since fstat is caught. */
    unsigned char *buf = rc == 0 ? malloc(TLS_FILE_MAX + 1) : NULL;
    if (rc == 0 && buf == NULL)
        rc = ss__fail(err, -ENOMEM, "out of memory");
    size_t got = 0;
    while (rc == 0 && got <= TLS_FILE_MAX) {
        ssize_t n = read(fd, buf + got, TLS_FILE_MAX + 1 - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            rc = ss__fail(err, SS_ETLS, "cannot read %s '%s': %s", what, path, strerror(errno));
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    if (rc == 0 && got > TLS_FILE_MAX)
        rc = ss__fail(err, SS_ETLS, "%s '%s' is larger than %d KiB", what, path,
                      TLS_FILE_MAX / 1024);
    if (rc < 0) {
        if (buf != NULL)
            OPENSSL_cleanse(buf, got);
        free(buf);
        return rc;
    }
    out->bytes = buf;
    out->len = got;
    return 0;
}

static void pem_free(tls_pem *p)
{
    if (p->bytes != NULL)
        OPENSSL_cleanse(p->bytes, p->len);
    free(p->bytes);
    p->bytes = NULL;
    p->len = 0;
}

int tls_material_read(tls_material *m, const tls_names *n, ss_error *err)
{
    memset(m, 0, sizeof *m);
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n->ncerts; i++) {
        m->ncerts = i + 1;
        rc = read_file(&m->cert[i], "certificate", n->cert[i], err);
        if (rc == 0)
            rc = read_file(&m->key[i], "private key", n->key[i], err);
    }
    if (rc == 0 && n->ca != NULL)
        rc = read_file(&m->ca, "CA file", n->ca, err);
    if (rc < 0)
        tls_material_free(m);
    return rc;
}

void tls_material_free(tls_material *m)
{
    for (size_t i = 0; i < m->ncerts; i++) {
        pem_free(&m->cert[i]);
        pem_free(&m->key[i]);
    }
    pem_free(&m->ca);
    m->ncerts = 0;
}

/* ---- turning bytes into OpenSSL objects ----------------------------------- */

static BIO *pem_bio(const tls_pem *p)
{
    return BIO_new_mem_buf(p->bytes != NULL ? p->bytes : (const unsigned char *)"",
                           (int)p->len);
}

/* An encrypted key is an error here, not a prompt on the terminal. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

void tls_pair_free(tls_pair *p)
{
    X509_free(p->cert);
    sk_X509_pop_free(p->chain, X509_free);
    EVP_PKEY_free(p->key);
    memset(p, 0, sizeof *p);
}

int tls_pair_load(tls_pair *p, const tls_pem *cert, const tls_pem *key, const char *cert_name,
                  const char *key_name, ss_error *err)
{
    char r[256];
    memset(p, 0, sizeof *p);
    ERR_clear_error();
    BIO *b = pem_bio(cert);
    if (b == NULL)
        return ss__fail(err, -ENOMEM, "out of memory");
    p->cert = PEM_read_bio_X509_AUX(b, NULL, no_passphrase, NULL);
    p->chain = sk_X509_new_null();
    int rc = 0;
    if (p->cert == NULL)
        rc = ss__fail(err, SS_ETLS, "cannot load certificate '%s': %s", cert_name,
                      ss__tls_reason(r, sizeof r));
    else if (p->chain == NULL)
        rc = ss__fail(err, -ENOMEM, "out of memory");
    for (size_t i = 0; rc == 0 && i < 64; i++) { /* a chain longer than 64 is not one */
        X509 *ca = PEM_read_bio_X509(b, NULL, no_passphrase, NULL);
        if (ca == NULL)
            break;
        if (!sk_X509_push(p->chain, ca)) {
            X509_free(ca);
            rc = ss__fail(err, -ENOMEM, "out of memory");
        }
    }
    ERR_clear_error(); /* the end of the file reads as "no start line" */
    BIO_free(b);
    if (rc == 0) {
        b = pem_bio(key);
        p->key = b != NULL ? PEM_read_bio_PrivateKey(b, NULL, no_passphrase, NULL) : NULL;
        BIO_free(b);
        if (p->key == NULL)
            rc = ss__fail(err, SS_ETLS, "cannot load private key '%s': %s", key_name,
                          ss__tls_reason(r, sizeof r));
        else if (X509_check_private_key(p->cert, p->key) != 1)
            rc = ss__fail(err, SS_ETLS, "private key '%s' does not match certificate '%s'",
                          key_name, cert_name);
        ERR_clear_error();
    }
    if (rc < 0)
        tls_pair_free(p);
    return rc;
}

int tls_ca_load(SSL_CTX *x, const tls_pem *ca, const char *name, bool server, ss_error *err)
{
    char r[256];
    ERR_clear_error();
    BIO *b = pem_bio(ca);
    STACK_OF(X509_INFO) *infos = b != NULL ? PEM_X509_INFO_read_bio(b, NULL, no_passphrase, NULL)
                                           : NULL;
    BIO_free(b);
    if (infos == NULL)
        return ss__fail(err, SS_ETLS, "cannot load CA file '%s': %s", name,
                        ss__tls_reason(r, sizeof r));
    X509_STORE *store = SSL_CTX_get_cert_store(x);
    STACK_OF(X509_NAME) *names = server ? sk_X509_NAME_new_null() : NULL;
    int count = 0, rc = 0;
    for (int i = 0; rc == 0 && i < sk_X509_INFO_num(infos); i++) {
        X509_INFO *in = sk_X509_INFO_value(infos, i);
        if (in->x509 != NULL) {
            if (X509_STORE_add_cert(store, in->x509) != 1)
                rc = ss__fail(err, SS_ETLS, "cannot load CA file '%s': %s", name,
                              ss__tls_reason(r, sizeof r));
            X509_NAME *nm = names != NULL ? X509_NAME_dup(X509_get_subject_name(in->x509)) : NULL;
            if (nm != NULL && !sk_X509_NAME_push(names, nm))
                X509_NAME_free(nm);
            count++;
        }
        if (rc == 0 && in->crl != NULL) {
            if (X509_STORE_add_crl(store, in->crl) != 1)
                rc = ss__fail(err, SS_ETLS, "cannot load CA file '%s': %s", name,
                              ss__tls_reason(r, sizeof r));
            count++;
        }
    }
    sk_X509_INFO_pop_free(infos, X509_INFO_free);
    if (rc == 0 && count == 0)
        rc = ss__fail(err, SS_ETLS, "cannot load CA file '%s': no certificate or crl found", name);
    if (rc == 0 && names != NULL) {
        SSL_CTX_set_client_CA_list(x, names); /* takes the stack */
        names = NULL;
    }
    sk_X509_NAME_pop_free(names, X509_NAME_free);
    ERR_clear_error();
    return rc;
}

/* ---- the shared area ----------------------------------------------------------- */

struct tls_shared {
    _Atomic uint64_t seq; /* odd while a writer is in the middle */
    _Atomic uint32_t len; /* bytes used in data */
    unsigned char data[];
};

#define SHARED_MAP_SIZE (sizeof(struct tls_shared) + TLS_SHARED_BYTES)

int tls_shared_new(tls_shared **out, ss_error *err)
{
    /* Pages are only touched when a reload writes: the mapping costs no
     * memory for a server that never reloads. */
    void *p = mmap(NULL, SHARED_MAP_SIZE, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) {
        int e = errno;
        return ss__fail(err, -e, "cannot map the TLS reload area: %s", strerror(e));
    }
    tls_shared *s = p;
    atomic_init(&s->seq, 0);
    atomic_init(&s->len, 0);
    *out = s;
    return 0;
}

void tls_shared_free(tls_shared *s, bool writer)
{
    if (s == NULL)
        return;
    /* only the writer wipes: a forked reader's wipe would erase what every
     * other process of the server still has to read */
    if (writer) {
        uint32_t len = atomic_load(&s->len);
        OPENSSL_cleanse(s->data, len <= TLS_SHARED_BYTES ? len : TLS_SHARED_BYTES);
    }
    munmap(s, SHARED_MAP_SIZE);
}

void tls_shared_make_readonly(tls_shared *s)
{
    if (s != NULL)
        (void)mprotect(s, SHARED_MAP_SIZE, PROT_READ);
}

uint64_t tls_shared_generation(const tls_shared *s)
{
    return atomic_load_explicit(&((tls_shared *)s)->seq, memory_order_acquire);
}

/* The layout: u32 ncerts, then for the CA and each cert, key: u32 length
 * and the bytes (native byte order: the same machine reads it). */
static size_t put(unsigned char *dst, size_t at, const void *src, size_t len)
{
    if (len > 0 && at + len <= TLS_SHARED_BYTES) /* no CA file: NULL, 0 */
        memcpy(dst + at, src, len);
    return at + len;
}

static size_t put_pem(unsigned char *dst, size_t at, const tls_pem *p)
{
    uint32_t len = (uint32_t)p->len;
    at = put(dst, at, &len, sizeof len);
    return put(dst, at, p->bytes, p->len);
}

static size_t material_size(const tls_material *m)
{
    size_t n = 4 + 4 + m->ca.len;
    for (size_t i = 0; i < m->ncerts; i++)
        n += 8 + m->cert[i].len + m->key[i].len;
    return n;
}

int tls_shared_publish(tls_shared *s, const tls_material *m, uint64_t *gen, ss_error *err)
{
    if (material_size(m) > TLS_SHARED_BYTES)
        return ss__fail(err, SS_ETLS, "the TLS files come to more than %d KiB",
                        TLS_SHARED_BYTES / 1024);
    uint64_t seq = atomic_load_explicit(&s->seq, memory_order_relaxed);
    atomic_store_explicit(&s->seq, seq + 1, memory_order_relaxed);
    atomic_thread_fence(memory_order_release); /* odd before any byte changes */
    uint32_t ncerts = (uint32_t)m->ncerts;
    size_t at = put(s->data, 0, &ncerts, sizeof ncerts);
    at = put_pem(s->data, at, &m->ca);
    for (size_t i = 0; i < m->ncerts; i++) {
        at = put_pem(s->data, at, &m->cert[i]);
        at = put_pem(s->data, at, &m->key[i]);
    }
    atomic_store_explicit(&s->len, (uint32_t)at, memory_order_relaxed);
    atomic_store_explicit(&s->seq, seq + 2, memory_order_release);
    *gen = seq + 2;
    return 0;
}

/* Read one PEM out of the copy `buf` (of `len` bytes) at *at. */
static int take_pem(tls_pem *p, const unsigned char *buf, size_t len, size_t *at)
{
    uint32_t n;
    if (len - *at < sizeof n)
        return -EAGAIN;
    memcpy(&n, buf + *at, sizeof n);
    *at += sizeof n;
    if (n > len - *at || n > TLS_FILE_MAX)
        return -EAGAIN;
    p->len = n;
    p->bytes = NULL;
    if (n > 0) {
        p->bytes = malloc(n);
        if (p->bytes == NULL)
            return -ENOMEM;
        memcpy(p->bytes, buf + *at, n);
    }
    *at += n;
    return 0;
}

int tls_shared_fetch(const tls_shared *s, tls_material *m, uint64_t *gen)
{
    tls_shared *w = (tls_shared *)s;
    memset(m, 0, sizeof *m);
    uint64_t before = atomic_load_explicit(&w->seq, memory_order_acquire);
    if (before & 1)
        return -EAGAIN;
    uint32_t len = atomic_load_explicit(&w->len, memory_order_relaxed);
    if (len > TLS_SHARED_BYTES)
        return -EAGAIN;
    unsigned char *copy = malloc(len > 0 ? len : 1);
    if (copy == NULL)
        return -ENOMEM;
    memcpy(copy, w->data, len);
    atomic_thread_fence(memory_order_acquire); /* the copy before the re-check */
    int rc = atomic_load_explicit(&w->seq, memory_order_relaxed) == before ? 0 : -EAGAIN;
    /* A consistent copy can still be parsed defensively: bounds on every
     * length, so a torn or lying area cannot make us read past it. */
    size_t at = 0;
    uint32_t ncerts = 0;
    if (rc == 0 && len >= sizeof ncerts) {
        memcpy(&ncerts, copy, sizeof ncerts);
        at = sizeof ncerts;
    } else if (rc == 0) {
        rc = -EAGAIN;
    }
    if (rc == 0 && (ncerts == 0 || ncerts > TLS_MAX_CERTS))
        rc = -EAGAIN;
    if (rc == 0)
        rc = take_pem(&m->ca, copy, len, &at);
    for (uint32_t i = 0; rc == 0 && i < ncerts; i++) {
        m->ncerts = i + 1;
        rc = take_pem(&m->cert[i], copy, len, &at);
        if (rc == 0)
            rc = take_pem(&m->key[i], copy, len, &at);
    }
    OPENSSL_cleanse(copy, len);
    free(copy);
    if (rc < 0) {
        tls_material_free(m);
        return rc;
    }
    *gen = before;
    return 0;
}
