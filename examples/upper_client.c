/* SPDX-License-Identifier: MIT */
/*
 * upper_client.c — the tutorial's socketserver client: one connection; each
 * line typed (stripped, empty lines skipped) is sent and the answer printed
 * as "server reply: ...". "q" ends it.
 *
 *   usage: upper_client [ADDRESS]      (default tcp://127.0.0.1:9997)
 */
#include <sockserve.h>
#include <stdio.h>

#include "strip.h"

int main(int argc, char **argv)
{
    ss_sock sk;
    ss_error err;
    if (ss_dial(&sk, argc > 1 ? argv[1] : "tcp://127.0.0.1:9997", 5.0, &err) < 0)
        return fprintf(stderr, "upper_client: %s\n", err.msg), 1;
    char line[1024], reply[1024];
    int status = 0;
    for (;;) {
        printf("cmd : ");
        fflush(stdout);
        if (fgets(line, sizeof line, stdin) == NULL)
            break;
        char *inp = strip(line);
        if (*inp == '\0')
            continue;
        if (strcmp(inp, "q") == 0)
            break;
        ssize_t n;
        if (ss_sock_sendall(&sk, inp, strlen(inp)) < 0 ||
            (n = ss_sock_recv(&sk, reply, sizeof reply, 0)) <= 0) {
            fprintf(stderr, "upper_client: the server closed the connection\n");
            status = 1;
            break;
        }
        printf("server reply: %.*s\n", (int)n, reply);
    }
    ss_sock_close(&sk);
    return status;
}
