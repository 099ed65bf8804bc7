/* SPDX-License-Identifier: MIT */
/* fuzz_tls_handshake.c — libFuzzer target: the server side of the rcmd
 * TLS 1.3 PSK handshake. The input is what a client would send; it goes in
 * through a memory BIO. Nothing may crash or leak, and no input without the
 * key may complete the handshake.
 *
 * Seed: with RCMD_FUZZ_SEED_DIR set, LLVMFuzzerInitialize writes a real
 * ClientHello (from our own client, same key) into that directory, so the
 * fuzzer starts inside the PSK path instead of having to find it. */
#include "rcmd/tls.h"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static rcmd_tls_ctx *server_ctx;
static rcmd_key key;

static void write_seed(const char *dir)
{
    rcmd_tls_ctx *cctx;
    rcmd_tls_config cc = {.key = &key};
    if (rcmd_tls_ctx_new(&cctx, false, &cc, NULL) != 0)
        return;
    SSL *ssl = SSL_new(rcmd_tls_ctx_ssl_ctx(cctx));
    BIO *rb = BIO_new(BIO_s_mem()), *wb = BIO_new(BIO_s_mem());
    SSL_set_bio(ssl, rb, wb);
    SSL_set_connect_state(ssl);
    (void)SSL_do_handshake(ssl); /* wants to read: the ClientHello is out */
    char *p;
    long n = BIO_get_mem_data(wb, &p);
    char path[4096];
    snprintf(path, sizeof path, "%s/client_hello", dir);
    FILE *f = fopen(path, "wb");
    if (f != NULL) {
        fwrite(p, 1, (size_t)n, f);
        fclose(f);
    }
    SSL_free(ssl);
    rcmd_tls_ctx_free(cctx);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    memset(&key, 0x5a, 32);
    key.key_len = 32;
    strcpy(key.identity, "rcmd-fuzz");
    rcmd_tls_config sc = {.key = &key};
    if (rcmd_tls_ctx_new(&server_ctx, true, &sc, NULL) != 0)
        abort();
    const char *dir = getenv("RCMD_FUZZ_SEED_DIR");
    if (dir != NULL)
        write_seed(dir);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    SSL *ssl = SSL_new(rcmd_tls_ctx_ssl_ctx(server_ctx));
    if (ssl == NULL)
        return 0;
    BIO *rb = BIO_new_mem_buf(data, (int)(size > 1 << 20 ? 1 << 20 : size));
    BIO *wb = BIO_new(BIO_s_mem());
    if (rb == NULL || wb == NULL) {
        BIO_free(rb);
        BIO_free(wb);
        SSL_free(ssl);
        return 0;
    }
    /* at the end of the input, say "try again" rather than EOF, as a
     * non-blocking socket would */
    BIO_set_mem_eof_return(rb, -1);
    SSL_set_bio(ssl, rb, wb);
    SSL_set_accept_state(ssl);
    for (int i = 0; i < 16; i++) {
        int r = SSL_do_handshake(ssl);
        if (r == 1) {
            /* the fuzzer cannot know the key: a completed handshake would
             * mean authentication without it */
            abort();
        }
        int e = SSL_get_error(ssl, r);
        if (e != SSL_ERROR_WANT_WRITE)
            break;
    }
    ERR_clear_error();
    SSL_free(ssl);
    return 0;
}
