/* SPDX-License-Identifier: MIT */
/*
 * tcp_server.c — the tutorial's first server: read one message, answer
 * "your input is ...", close. One client at a time (Python's TCPServer).
 *
 *   usage: tcp_server [ADDRESS]        (default tcp://127.0.0.1:9999)
 */
#include <sockserve.h>
#include <stdio.h>

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
} /* returning closes the connection, as the tutorial's connection.close() */

int main(int argc, char **argv)
{
    ss_handler handler = {.handle = handle};
    ss_server *srv;
    ss_error err;
    if (ss_server_new(&srv, argc > 1 ? argv[1] : "tcp://127.0.0.1:9999", &handler, NULL,
                      &err) < 0) /* NULL options: serial */
        return fprintf(stderr, "tcp_server: %s\n", err.msg), 1;
    char bound[SS_ADDR_STRLEN];
    ss_addr_format(ss_server_address(srv), bound, sizeof bound);
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("server is running on %s...\n", bound);
    int rc = ss_server_serve_until_signal(srv); /* Ctrl-C: finish, then exit */
    ss_server_free(srv);
    return rc < 0;
}
