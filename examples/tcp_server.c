/* SPDX-License-Identifier: MIT */
/*
 * tcp_server.c — the seed's first server: read one message, answer
 * "your input is ...", close. One client at a time (Python's TCPServer).
 *
 *   usage: tcp_server PORT | ADDRESS      e.g. tcp_server 9999
 */
#include <sockserve.h>

#include <stdio.h>
#include <string.h>

static int handle(ss_request *req)
{
    char buf[1024], addr[SS_ADDR_STRLEN], reply[1100];
    ssize_t n = ss_stream_read(req->stream, buf, sizeof buf);
    if (n <= 0)
        return (int)n; /* the client left without a word */
    ss_addr_format(&req->client_address, addr, sizeof addr);
    printf("%.*s %s\n", (int)n, buf, addr);
    int len = snprintf(reply, sizeof reply, "your input is %.*s", (int)n, buf);
    return ss_request_reply(req, reply, (size_t)len);
} /* returning closes the connection, as the seed's connection.close() */

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

    ss_handler handler = {.handle = handle};
    ss_server *srv;
    ss_error err = {0};
    if (ss_server_new(&srv, address, &handler, NULL, &err) < 0) { /* NULL: serial */
        fprintf(stderr, "tcp_server: %s\n", err.msg);
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
