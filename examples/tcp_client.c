/* SPDX-License-Identifier: MIT */
/*
 * tcp_client.c — the tutorial's first client: for every line typed, a new
 * connection, the line sent (stripped, no newline), the reply printed.
 * "exit" is sent and ends the client, as in the tutorial.
 *
 *   usage: tcp_client [ADDRESS]        (default tcp://127.0.0.1:9999)
 */
#include <sockserve.h>
#include <stdio.h>

#include "strip.h"

int main(int argc, char **argv)
{
    const char *address = argc > 1 ? argv[1] : "tcp://127.0.0.1:9999";
    char line[1024], reply[1024];
    for (;;) {
        ss_sock sk;
        ss_error err;
        if (ss_dial(&sk, address, 5.0, &err) < 0)
            return fprintf(stderr, "tcp_client: %s\n", err.msg), 1;
        printf("please input the info : ");
        fflush(stdout);
        if (fgets(line, sizeof line, stdin) == NULL)
            return ss_sock_close(&sk), 0;
        char *inp = strip(line);
        ss_sock_sendall(&sk, inp, strlen(inp));
        if (strcmp(inp, "exit") == 0)
            return ss_sock_close(&sk), 0;
        ssize_t n = ss_sock_recv(&sk, reply, sizeof reply, 0);
        if (n < 0)
            fprintf(stderr, "tcp_client: %s\n", ss_strerror((int)n));
        else
            printf("%.*s\n", (int)n, reply);
        ss_sock_close(&sk);
    }
}
