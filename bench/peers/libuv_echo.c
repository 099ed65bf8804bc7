/* SPDX-License-Identifier: MIT */
/* libuv_echo.c — libuv echo server written the way libuv's own examples and
 * most tutorials write it: alloc_cb mallocs a 64 KiB buffer for every read,
 * the write callback frees it. Nothing tuned: this is what people ship.
 * glibc then trims and regrows the heap around every message; the runner
 * reports it plain and with GLIBC_TUNABLES=glibc.malloc.trim_threshold=67108864.
 * usage: libuv_echo [PORT] */
#include "common.h"

#include <uv.h>

typedef struct write_req {
    uv_write_t req;
    uv_buf_t buf;
} write_req;

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    buf->base = malloc(suggested); /* libuv suggests 64 KiB */
    buf->len = buf->base ? suggested : 0;
}

static void on_close(uv_handle_t *h)
{
    free(h);
}

static void on_written(uv_write_t *req, int status)
{
    write_req *w = (write_req *)req;
    free(w->buf.base);
    free(w);
    (void)status;
}

static void on_read(uv_stream_t *client, ssize_t nread, const uv_buf_t *buf)
{
    if (nread > 0) {
        write_req *w = malloc(sizeof *w);
        w->buf = uv_buf_init(buf->base, (unsigned)nread);
        if (uv_write(&w->req, client, &w->buf, 1, on_written) == 0)
            return;
        free(w);
    }
    free(buf->base);
    if (nread < 0 || nread == UV_EOF)
        uv_close((uv_handle_t *)client, on_close);
}

static void on_connection(uv_stream_t *server, int status)
{
    if (status < 0)
        return;
    uv_tcp_t *client = malloc(sizeof *client);
    uv_tcp_init(server->loop, client);
    if (uv_accept(server, (uv_stream_t *)client) == 0) {
        uv_tcp_nodelay(client, 1);
        uv_read_start((uv_stream_t *)client, on_alloc, on_read);
    } else {
        uv_close((uv_handle_t *)client, on_close);
    }
}

int main(int argc, char **argv)
{
    uv_loop_t *loop = uv_default_loop();
    uv_tcp_t server;
    uv_tcp_init(loop, &server);
    struct sockaddr_in addr;
    uv_ip4_addr("127.0.0.1", peer_port(argc, argv), &addr);
    int rc = uv_tcp_bind(&server, (const struct sockaddr *)&addr, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&server, 4096, on_connection);
    if (rc != 0) {
        fprintf(stderr, "libuv_echo: %s\n", uv_strerror(rc));
        return 1;
    }
    int len = sizeof addr;
    uv_tcp_getsockname(&server, (struct sockaddr *)&addr, &len);
    fprintf(stderr, "libuv_echo: listening on tcp://127.0.0.1:%d\n", ntohs(addr.sin_port));
    return uv_run(loop, UV_RUN_DEFAULT);
}
