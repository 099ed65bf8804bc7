/* SPDX-License-Identifier: MIT */
/*
 * upper_server.c — the tutorial's socketserver example: ThreadingTCPServer
 * with a handler that answers every message upper-cased until the client
 * leaves. Change SS_MODEL_THREADING to SS_MODEL_FORKING or SS_MODEL_SERIAL
 * for its commented-out ForkingTCPServer and TCPServer.
 *
 *   usage: upper_server [ADDRESS]      (default tcp://127.0.0.1:9997)
 */
#include <sockserve.h>
#include <stdio.h>

#include "strip.h"

static int handle(ss_request *req)
{
    char addr[SS_ADDR_STRLEN], buf[1025];
    ss_addr_format(&req->client_address, addr, sizeof addr);
    printf("new conn: %s\n", addr);
    for (;;) {
        ssize_t n = ss_stream_read(req->stream, buf, sizeof buf - 1);
        if (n <= 0)
            return (int)n;
        buf[n] = '\0';
        char *data = strip(buf); /* a message of only white space ends it too */
        if (*data == '\0')
            return 0;
        printf("[%s] %s\n", addr, data);
        for (char *c = data; *c; c++)
            *c = (char)toupper((unsigned char)*c);
        int rc = ss_request_reply(req, data, strlen(data));
        if (rc < 0)
            return rc;
    }
}

int main(int argc, char **argv)
{
    ss_server_opts opts;
    ss_server_opts_init(&opts);
    opts.model = SS_MODEL_THREADING; /* a thread per client */
    ss_handler handler = {.handle = handle};
    ss_server *srv;
    ss_error err;
    if (ss_server_new(&srv, argc > 1 ? argv[1] : "tcp://127.0.0.1:9997", &handler, &opts,
                      &err) < 0)
        return fprintf(stderr, "upper_server: %s\n", err.msg), 1;
    char bound[SS_ADDR_STRLEN];
    ss_addr_format(ss_server_address(srv), bound, sizeof bound);
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("server is running on %s...\n", bound);
    int rc = ss_server_serve_until_signal(srv);
    ss_server_free(srv);
    return rc < 0;
}
