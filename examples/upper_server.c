/* SPDX-License-Identifier: MIT */
/*
 * upper_server.c — the seed's socketserver example: ThreadingTCPServer with a
 * handler that answers every message upper-cased until the client leaves.
 * Change SS_MODEL_THREADING to SS_MODEL_FORKING or SS_MODEL_SERIAL for the
 * seed's commented-out ForkingTCPServer and TCPServer.
 *
 *   usage: upper_server PORT | ADDRESS
 */
#include <sockserve.h>

#include <ctype.h>
#include <stdio.h>
#include <string.h>

static int handle(ss_request *req)
{
    char addr[SS_ADDR_STRLEN], buf[1024];
    ss_addr_format(&req->client_address, addr, sizeof addr);
    printf("new conn: %s\n", addr);
    for (;;) {
        ssize_t n = ss_stream_read(req->stream, buf, sizeof buf);
        if (n <= 0)
            return (int)n;
        /* the seed's .strip(): a message of only white space ends it too */
        char *p = buf, *end = buf + n;
        while (p < end && isspace((unsigned char)*p))
            p++;
        while (end > p && isspace((unsigned char)end[-1]))
            end--;
        if (p == end)
            return 0;
        printf("[%s] %.*s\n", addr, (int)(end - p), p);
        for (char *c = p; c < end; c++)
            *c = (char)toupper((unsigned char)*c);
        int rc = ss_request_reply(req, p, (size_t)(end - p));
        if (rc < 0)
            return rc;
    }
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s PORT|ADDRESS\n", argv[0]);
        return 2;
    }
    char address[256];
    if (strspn(argv[1], "0123456789") == strlen(argv[1]))
        snprintf(address, sizeof address, "tcp://127.0.0.1:%s", argv[1]);
    else
        snprintf(address, sizeof address, "%s", argv[1]);

    ss_server_opts opts;
    ss_server_opts_init(&opts);
    opts.model = SS_MODEL_THREADING; /* a thread per client */
    ss_handler handler = {.handle = handle};
    ss_server *srv;
    ss_error err = {0};
    if (ss_server_new(&srv, address, &handler, &opts, &err) < 0) {
        fprintf(stderr, "upper_server: %s\n", err.msg);
        return 1;
    }
    char bound[SS_ADDR_STRLEN];
    ss_addr_format(ss_server_address(srv), bound, sizeof bound);
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("server is running on %s...\n", bound);
    int rc = ss_server_serve_forever(srv);
    ss_server_free(srv);
    return rc < 0 ? 1 : 0;
}
