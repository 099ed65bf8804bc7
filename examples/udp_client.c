/* SPDX-License-Identifier: MIT */
/*
 * udp_client.c — the seed's UDP client: each line typed (stripped) is one
 * datagram; the answer is printed with the address it came from. "exit"
 * ends the client without being sent, as in the seed.
 *
 *   usage: udp_client PORT | ADDRESS
 */
#include <sockserve.h>

#include <ctype.h>
#include <stdio.h>
#include <string.h>

static char *strip(char *s)
{
    size_t len = strlen(s);
    while (len > 0 && isspace((unsigned char)s[len - 1]))
        s[--len] = '\0';
    while (isspace((unsigned char)*s))
        s++;
    return s;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s PORT|ADDRESS\n", argv[0]);
        return 2;
    }
    char address[256], line[1024];
    if (strspn(argv[1], "0123456789") == strlen(argv[1]))
        snprintf(address, sizeof address, "udp://127.0.0.1:%s", argv[1]);
    else
        snprintf(address, sizeof address, "%s", argv[1]);

    ss_sock sk;
    ss_error err = {0};
    if (ss_dial(&sk, address, 5.0, &err) < 0) { /* a connected datagram socket */
        fprintf(stderr, "udp_client: %s\n", err.msg);
        return 1;
    }
    /* Unlike the seed, never wait forever for a datagram that was lost. */
    ss_sock_settimeout(&sk, 5.0);
    for (;;) {
        printf("input: ");
        fflush(stdout);
        if (fgets(line, sizeof line, stdin) == NULL)
            break;
        char *inp = strip(line);
        if (strcmp(inp, "exit") == 0)
            break;
        if (ss_sock_send(&sk, inp, strlen(inp), 0) < 0)
            break;
        char reply[1024];
        ss_addr from;
        ssize_t n = ss_sock_recvfrom(&sk, reply, sizeof reply, 0, &from);
        if (n < 0) {
            fprintf(stderr, "udp_client: no answer: %s\n", ss_strerror((int)n));
            continue;
        }
        char addr[SS_ADDR_STRLEN];
        ss_addr_format(&from, addr, sizeof addr);
        printf("%.*s %s\n", (int)n, reply, addr);
    }
    ss_sock_close(&sk);
    return 0;
}
