/* SPDX-License-Identifier: MIT */
/*
 * udp_server.c — the seed's UDP keyword responder: "nihao" and "sb" get
 * their answers, anything else a hint, and "exit" stops the server.
 *
 *   usage: udp_server PORT | ADDRESS       e.g. udp_server 9999
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
    const char *answer = "input exit to exit";
    if (memmem(msg, len, "nihao", 5) != NULL)
        answer = "hello,baby,nihao";
    else if (memmem(msg, len, "sb", 2) != NULL)
        answer = "sb,to you";
    return ss_request_reply(req, answer, strlen(answer)); /* to the sender */
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s PORT|ADDRESS\n", argv[0]);
        return 2;
    }
    char address[256];
    if (strspn(argv[1], "0123456789") == strlen(argv[1]))
        snprintf(address, sizeof address, "udp://127.0.0.1:%s", argv[1]);
    else
        snprintf(address, sizeof address, "%s", argv[1]);

    ss_handler handler = {.handle = handle};
    ss_server *srv;
    ss_error err = {0};
    if (ss_server_new(&srv, address, &handler, NULL, &err) < 0) {
        fprintf(stderr, "udp_server: %s\n", err.msg);
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
