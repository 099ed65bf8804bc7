/* SPDX-License-Identifier: MIT */
/* common.h — the few lines every C peer shares: a loopback listener on a
 * given port (0 = any) and the "listening on" line the runner waits for. */
#ifndef BENCH_PEER_COMMON_H
#define BENCH_PEER_COMMON_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* accept4 */
#endif

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

/* A bound, listening TCP socket on 127.0.0.1:port with a deep backlog (the
 * 1000-connection scenario opens them all at once). Exits on failure. */
static inline int peer_listen(const char *name, int port, int flags)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | flags, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, 4096) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) < 0) {
        perror(name);
        exit(1);
    }
    fprintf(stderr, "%s: listening on tcp://127.0.0.1:%d\n", name, ntohs(a.sin_port));
    return fd;
}

/* Echo servers answer small messages one by one: never let Nagle hold one. */
static inline void peer_nodelay(int fd)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static inline int peer_port(int argc, char **argv)
{
    return argc > 1 ? atoi(argv[1]) : 0;
}

#endif
