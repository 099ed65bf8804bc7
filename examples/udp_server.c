/* SPDX-License-Identifier: MIT */
/*
 * udp_server.c — the tutorial's UDP keyword responder: "nihao" and "sb" get
 * their answers, anything else a hint, and "exit" stops the server.
 *
 *   usage: udp_server [ADDRESS]        (default udp://127.0.0.1:9998)
 */
#include <sockserve.h>
#include <stdio.h>
#include <string.h>

static int handle(ss_request *req)
{
    const char *msg = (const char *)req->packet;
    size_t len = req->packet_len;
    char addr[SS_ADDR_STRLEN];
    ss_addr_format(&req->client_address, addr, sizeof addr);
    printf("%.*s %s\n", (int)len, msg, addr);
    if (len == 4 && memcmp(msg, "exit", 4) == 0) {
        ss_server_shutdown_nowait(req->server); /* serve_forever returns */
        return 0;
    }
    const char *answer = memmem(msg, len, "nihao", 5) ? "hello,baby,nihao"
                         : memmem(msg, len, "sb", 2)  ? "sb,to you"
                                                      : "input exit to exit";
    return ss_request_reply(req, answer, strlen(answer)); /* to the sender */
}

int main(int argc, char **argv)
{
    ss_handler handler = {.handle = handle};
    ss_server *srv;
    ss_error err;
    if (ss_server_new(&srv, argc > 1 ? argv[1] : "udp://127.0.0.1:9998", &handler, NULL,
                      &err) < 0)
        return fprintf(stderr, "udp_server: %s\n", err.msg), 1;
    char bound[SS_ADDR_STRLEN];
    ss_addr_format(ss_server_address(srv), bound, sizeof bound);
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("server is running on %s...\n", bound);
    int rc = ss_server_serve_until_signal(srv);
    ss_server_free(srv);
    return rc < 0;
}
