/* SPDX-License-Identifier: MIT */
/*
 * tls_echo.c — an echo server over TLS, and its client, on the library's TLS:
 * what Python's ssl.SSLContext.wrap_socket() gives a socketserver, with the
 * handshake, certificates and reload done by sockserve.
 *
 *   usage: tls_echo serve ADDRESS CERT KEY [CERT KEY]...
 *              (threads; one echo per line; the pairs after the first are
 *              served to clients whose SNI their names cover)
 *          tls_echo send ADDRESS CA TEXT     (verifies the server, prints the echo)
 */
#include <sockserve.h>

#include <stdio.h>
#include <string.h>

static int handle(ss_request *req)
{
    ss_tls_info info;
    ss_tls_info_get(ss_stream_transport(req->stream), &info);
    printf("%s over %s\n", info.cipher, info.version);
    fflush(stdout);
    char line[4096];
    ssize_t n;
    while ((n = ss_stream_readline(req->stream, line, sizeof line)) > 0)
        if (ss_request_reply(req, line, (size_t)n) < 0)
            break;
    return n < 0 ? (int)n : 0;
}

static int serve(const char *address, char **pairs, int npairs)
{
    ss_error err = {0};
    ss_tls_ctx *tls;
    ss_tls_opts to = {.cert_file = pairs[0], .key_file = pairs[1]};
    if (ss_tls_ctx_new(&tls, true, &to, &err) < 0) {
        fprintf(stderr, "tls_echo: %s\n", err.msg);
        return 2;
    }
    for (int i = 1; i < npairs; i++) /* chosen by the client's SNI */
        if (ss_tls_ctx_add_cert(tls, pairs[2 * i], pairs[2 * i + 1], &err) < 0) {
            fprintf(stderr, "tls_echo: %s\n", err.msg);
            ss_tls_ctx_free(tls);
            return 2;
        }
    ss_server_opts opts;
    ss_server_opts_init(&opts);
    opts.model = SS_MODEL_THREADING;
    opts.tls = tls;
    ss_handler handler = {.handle = handle};
    ss_server *srv;
    if (ss_server_new(&srv, address, &handler, &opts, &err) < 0) {
        fprintf(stderr, "tls_echo: %s\n", err.msg);
        ss_tls_ctx_free(tls);
        return 1;
    }
    char bound[SS_ADDR_STRLEN];
    ss_addr_format(ss_server_address(srv), bound, sizeof bound);
    printf("server is running on %s...\n", bound);
    fflush(stdout);
    ss_server_serve_forever(srv); /* until killed */
    ss_server_free(srv);
    ss_tls_ctx_free(tls);
    return 0;
}

static int send_line(const char *address, const char *ca, const char *text)
{
    ss_error err = {0};
    ss_tls_ctx *tls;
    ss_tls_opts to = {.ca_file = ca};
    ss_transport t;
    if (ss_tls_ctx_new(&tls, false, &to, &err) < 0 ||
        ss_tls_dial(&t, address, tls, NULL, 5.0, &err) < 0) {
        fprintf(stderr, "tls_echo: %s\n", err.msg);
        ss_tls_ctx_free(tls);
        return 1;
    }
    ss_stream *s;
    ss_stream_opts so = {.timeout = 5.0};
    char line[4096];
    ssize_t n = ss_stream_new(&s, &t, &so);
    if (n == 0 && (n = ss_stream_write(s, text, strlen(text))) == 0 &&
        (n = ss_stream_write(s, "\n", 1)) == 0 && (n = ss_stream_flush(s)) == 0)
        n = ss_stream_readline(s, line, sizeof line);
    if (n > 0)
        printf("%.*s", (int)n, line);
    else
        fprintf(stderr, "tls_echo: %s\n", ss_strerror((int)n));
    ss_stream_free(s);
    t.ops->close(&t);
    ss_tls_ctx_free(tls);
    return n > 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc >= 5 && argc % 2 == 1 && strcmp(argv[1], "serve") == 0)
        return serve(argv[2], argv + 3, (argc - 3) / 2);
    if (argc == 5 && strcmp(argv[1], "send") == 0)
        return send_line(argv[2], argv[3], argv[4]);
    fprintf(stderr, "usage: %s serve ADDRESS CERT KEY [CERT KEY]... | send ADDRESS CA TEXT\n", argv[0]);
    return 2;
}
