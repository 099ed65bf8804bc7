/* SPDX-License-Identifier: MIT */
/*
 * server.h — the rcmd server's per-connection sessions, as blocking
 * ss_server handlers (docs/rcmd-protocol.md §6–§8, §10).
 */
#ifndef SS_RCMD_SERVER_H
#define SS_RCMD_SERVER_H

#include "sockserve.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct rcmd_server_cfg {
    bool seed;               /* --protocol seed */
    bool insecure;           /* --insecure-no-auth */
    const char *const *allow;/* --allow PROG..., NULL-terminated; NULL = any */
    double timeout;          /* --timeout SEC; 0 = none */
    uint64_t max_output;     /* --max-output BYTES; 0 = none (seed: 64 MiB) */
    struct rcmd_tls_ctx *tls;/* native: NULL with --insecure-no-auth */
} rcmd_server_cfg;

#define RCMD_SEED_DEFAULT_MAX_OUTPUT ((uint64_t)64 << 20)

/* The seed's exchange on one connection (§10); the handler's `handle`. */
int rcmd_seed_handle(ss_request *req);

#endif

/* Process-wide state of the native protocol: the TLS context (NULL with
 * --insecure-no-auth). Set before serving. */
struct rcmd_tls_ctx;
void rcmd_server_set_tls(rcmd_server_cfg *cfg, struct rcmd_tls_ctx *ctx);

/* The native protocol on one connection (§5–§8); the handler's `handle`. */
int rcmd_native_handle(ss_request *req);
