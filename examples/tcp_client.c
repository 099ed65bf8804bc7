/* SPDX-License-Identifier: MIT */
/*
 * tcp_client.c — the seed's first client: for every line typed, a new
 * connection, the line sent (stripped, no newline), the reply printed.
 * "exit" is sent and ends the client, as in the seed.
 *
 *   usage: tcp_client PORT | ADDRESS
 */
#include <sockserve.h>

#include <ctype.h>
#include <stdio.h>
#include <string.h>

/* Python's str.strip(): drop white space at both ends, in place. */
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
        snprintf(address, sizeof address, "tcp://127.0.0.1:%s", argv[1]);
    else
        snprintf(address, sizeof address, "%s", argv[1]);

    for (;;) {
        ss_sock sk;
        ss_error err = {0};
        if (ss_dial(&sk, address, 5.0, &err) < 0) {
            fprintf(stderr, "tcp_client: %s\n", err.msg);
            return 1;
        }
        printf("please input the info : ");
        fflush(stdout);
        if (fgets(line, sizeof line, stdin) == NULL) {
            ss_sock_close(&sk);
            return 0;
        }
        char *inp = strip(line);
        ss_sock_sendall(&sk, inp, strlen(inp));
        if (strcmp(inp, "exit") == 0) {
            ss_sock_close(&sk);
            return 0;
        }
        char reply[1024];
        ssize_t n = ss_sock_recv(&sk, reply, sizeof reply, 0);
        if (n < 0)
            fprintf(stderr, "tcp_client: %s\n", ss_strerror((int)n));
        else
            printf("%.*s\n", (int)n, reply);
        ss_sock_close(&sk);
    }
}
