/* SPDX-License-Identifier: MIT */
/*
 * tls_material.h — what a TLS context is built from, held in memory: the
 * PEM bytes of its certificate/key pairs and CA file, read once (bounded),
 * turned into OpenSSL objects, and published through a shared mapping to
 * the processes forked before a reload (tls.c).
 */
#ifndef SS_TLS_MATERIAL_H
#define SS_TLS_MATERIAL_H

#include "sockserve.h"

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TLS_MAX_CERTS 16                  /* certificate/key pairs of a context */
#define TLS_FILE_MAX (256 * 1024)         /* a PEM file larger is refused */
#define TLS_SHARED_BYTES (1024 * 1024)    /* what a reload can publish at most */

typedef struct tls_pem {
    unsigned char *bytes;
    size_t len; /* 0: no such file */
} tls_pem;

typedef struct tls_material {
    size_t ncerts;
    tls_pem cert[TLS_MAX_CERTS], key[TLS_MAX_CERTS];
    tls_pem ca;
} tls_material;

/* The names the bytes came from, for error messages. */
typedef struct tls_names {
    size_t ncerts;
    char *cert[TLS_MAX_CERTS], *key[TLS_MAX_CERTS];
    char *ca; /* NULL: none */
} tls_names;

/* Read every file named in `n` (each at most TLS_FILE_MAX). On failure
 * err->msg names the file ("cannot read certificate 'x.pem': No such file
 * or directory") and `m` holds nothing. */
int tls_material_read(tls_material *m, const tls_names *n, ss_error *err);
/* Wipe (the keys) and free; `m` is left empty. */
void tls_material_free(tls_material *m);

/* One certificate chain and its key, checked to belong together. */
typedef struct tls_pair {
    X509 *cert;
    STACK_OF(X509) *chain; /* the intermediates after it (may be empty) */
    EVP_PKEY *key;
} tls_pair;

int tls_pair_load(tls_pair *p, const tls_pem *cert, const tls_pem *key, const char *cert_name,
                  const char *key_name, ss_error *err);
void tls_pair_free(tls_pair *p);

/* Trust the CA certificates (and CRLs) of `ca` on `x`; a server also sends
 * their names in its certificate request. */
int tls_ca_load(SSL_CTX *x, const tls_pem *ca, const char *name, bool server, ss_error *err);

/*
 * The shared area: a MAP_SHARED anonymous mapping made before any fork, in
 * which the process that reloads puts the bytes it loaded, under a seqlock
 * (odd while it writes). Its sequence is the reload generation.
 */
typedef struct tls_shared tls_shared;

int tls_shared_new(tls_shared **out, ss_error *err);
/* writer: the process that publishes (it wipes the bytes); a reader only
 * unmaps. */
void tls_shared_free(tls_shared *s, bool writer);
/* In a forked process: read only from here on. One writer (the process
 * that made it), so a worker's bug can never publish material to the
 * others or tear what they read. */
void tls_shared_make_readonly(tls_shared *s);
/* The generation now (0: nothing published since the context was made). */
uint64_t tls_shared_generation(const tls_shared *s);
/* Publish `m` (one writer at a time: the caller serialises). *gen is the
 * new generation. SS_ETLS when it does not fit in TLS_SHARED_BYTES. */
int tls_shared_publish(tls_shared *s, const tls_material *m, uint64_t *gen, ss_error *err);
/* Copy out what is published: 0 (and *gen), -EAGAIN when a writer was in
 * the middle (try again later), -ENOMEM. */
int tls_shared_fetch(const tls_shared *s, tls_material *m, uint64_t *gen);

/* The first queued OpenSSL error as text (the queue is cleared: the first
 * is the cause). For tls.c and tls_material.c. */
const char *ss__tls_reason(char *buf, size_t len);

#endif
