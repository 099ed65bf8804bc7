/* SPDX-License-Identifier: MIT */
/*
 * tls.h — TLS 1.3 for rcmd (docs/rcmd-protocol.md §2), as an ss_transport.
 *
 * Default: an external pre-shared key from the key file (no certificates;
 * one file authenticates both sides and keys the encryption, with an
 * ephemeral (EC)DHE exchange on top for forward secrecy). Optional:
 * certificates on both sides (mutual TLS against one CA file).
 *
 * A context is made once per process side (client or server) and may be
 * shared by every connection and thread (OpenSSL's SSL_CTX is thread-safe
 * once set up). A transport belongs to one thread at a time.
 */
#ifndef RCMD_TLS_H
#define RCMD_TLS_H

#include "rcmd/keyfile.h"
#include "sockserve.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct ssl_ctx_st SSL_CTX;
typedef struct ssl_st SSL;

/* The suites offered in PSK mode: the PSK is bound to SHA-256, so only the
 * SHA-256 suites can use it. */
#define RCMD_TLS_PSK_SUITES "TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256"

typedef struct rcmd_tls_config {
    const rcmd_key *key;       /* PSK mode (copied); NULL for certificate mode */
    const char *cert_file;     /* certificate mode: our certificate chain (PEM) */
    const char *cert_key_file; /*   its private key (PEM) */
    const char *ca_file;       /*   the CA that signed the peer's certificate */
} rcmd_tls_config;

typedef struct rcmd_tls_ctx rcmd_tls_ctx;

/*
 * A context for one side (`server` true for the server). TLS 1.3 only, no
 * session tickets, no early data. Returns 0, SS_EUSAGE (neither or both
 * modes), or SS_ETLS with err->msg naming the file or OpenSSL's reason.
 */
int rcmd_tls_ctx_new(rcmd_tls_ctx **out, bool server, const rcmd_tls_config *cfg, ss_error *err);
void rcmd_tls_ctx_free(rcmd_tls_ctx *ctx); /* NULL is fine */
/* The underlying SSL_CTX (for tests and the fuzzer). */
SSL_CTX *rcmd_tls_ctx_ssl_ctx(rcmd_tls_ctx *ctx);

/*
 * Wrap the connected socket `fd` (made non-blocking here) into `t`. On
 * success the transport owns fd: t->ops->close(t) frees the TLS state and
 * closes it. On failure fd is left open for the caller. 0 or SS_ETLS/-ENOMEM.
 */
int rcmd_tls_transport_new(ss_transport *t, rcmd_tls_ctx *ctx, int fd, ss_error *err);

/*
 * One non-blocking handshake step, for event-driven servers. Returns 0 when
 * the handshake is complete, -EAGAIN when it must wait (poll t->fd for
 * t->ops->wait_events(t, 0)), SS_EAUTH when authentication failed (wrong
 * key, unknown identity, bad certificate: err->msg has OpenSSL's reason),
 * SS_ECLOSED when the peer closed first, or another negative code.
 */
int rcmd_tls_handshake_step(ss_transport *t, ss_error *err);

/*
 * The whole handshake, blocking with poll() until `deadline_ms`
 * (CLOCK_MONOTONIC milliseconds, absolute; negative = no deadline; see
 * rcmd_now_ms). The same returns as the step form, plus SS_ETIMEOUT.
 */
int rcmd_tls_handshake(ss_transport *t, int64_t deadline_ms, ss_error *err);

/* True if `t` is a TLS transport made by rcmd_tls_transport_new. */
bool rcmd_tls_is_tls(const ss_transport *t);

/* CLOCK_MONOTONIC in milliseconds. */
int64_t rcmd_now_ms(void);

/*
 * A plain-descriptor transport (for --insecure-no-auth), the same contract:
 * non-blocking read/write returning -EAGAIN, close() closes the fd. Kept
 * here so rcmd does not depend on when the stream layer lands; it behaves
 * as ss_transport_fd_init.
 */
int rcmd_plain_transport_init(ss_transport *t, int fd);

/*
 * Write all of buf through `t`, waiting with poll() until `deadline_ms`
 * (negative = none). Returns 0, SS_ETIMEOUT or a negative code.
 */
int rcmd_transport_write_all(ss_transport *t, const void *buf, size_t len, int64_t deadline_ms);

/* Wait for `t` to be ready for `events` (POLLIN/POLLOUT, mapped through
 * wait_events) until `deadline_ms`. 0, SS_ETIMEOUT or -errno. */
int rcmd_transport_wait(ss_transport *t, short events, int64_t deadline_ms);

#endif
