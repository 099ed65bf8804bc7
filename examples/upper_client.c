/* SPDX-License-Identifier: MIT */
/*
 * upper_client.c — the seed's socketserver client: one connection; each
 * line typed (stripped, empty lines skipped) is sent and the answer printed
 * as "server reply: ...". "q" ends it.
 *
 *   usage: upper_client PORT | ADDRESS
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
        snprintf(address, sizeof address, "tcp://127.0.0.1:%s", argv[1]);
    else
        snprintf(address, sizeof address, "%s", argv[1]);

    ss_sock sk;
    ss_error err = {0};
    if (ss_dial(&sk, address, 5.0, &err) < 0) {
        fprintf(stderr, "upper_client: %s\n", err.msg);
        return 1;
    }
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
        char reply[1024];
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
