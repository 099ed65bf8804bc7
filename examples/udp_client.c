/* SPDX-License-Identifier: MIT */
/*
 * udp_client.c — the tutorial's UDP client: each line typed (stripped) is
 * one datagram; the answer is printed with the address it came from. "exit"
 * ends the client without being sent, as in the tutorial.
 *
 *   usage: udp_client [ADDRESS]        (default udp://127.0.0.1:9998)
 */
#include <sockserve.h>
#include <stdio.h>

#include "strip.h"

int main(int argc, char **argv)
{
    ss_sock sk;
    ss_error err;
    if (ss_dial(&sk, argc > 1 ? argv[1] : "udp://127.0.0.1:9998", 5.0, &err) < 0)
        return fprintf(stderr, "udp_client: %s\n", err.msg), 1; /* a connected socket */
    /* 5.0 stays its timeout: unlike the tutorial, never wait forever for a
     * datagram that was lost */
    char line[1024], reply[1024], addr[SS_ADDR_STRLEN];
    for (;;) {
        printf("input: ");
        fflush(stdout);
        if (fgets(line, sizeof line, stdin) == NULL)
            break;
        char *inp = strip(line);
        if (strcmp(inp, "exit") == 0 || ss_sock_send(&sk, inp, strlen(inp), 0) < 0)
            break;
        ss_addr from;
        ssize_t n = ss_sock_recvfrom(&sk, reply, sizeof reply, 0, &from);
        if (n < 0) {
            fprintf(stderr, "udp_client: no answer: %s\n", ss_strerror((int)n));
            continue;
        }
        ss_addr_format(&from, addr, sizeof addr);
        printf("%.*s %s\n", (int)n, reply, addr);
    }
    ss_sock_close(&sk);
    return 0;
}
