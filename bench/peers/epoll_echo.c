/* SPDX-License-Identifier: MIT */
/* epoll_echo.c — the practical ceiling: one thread, level-triggered epoll,
 * one 64 KiB buffer shared by every connection, read then write straight back.
 * A connection whose write would block keeps its unsent tail in a per-connection
 * buffer and stops being read until it drains (the only allocation).
 * usage: epoll_echo [PORT] */
#include "common.h"

#include <errno.h>
#include <string.h>
#include <sys/epoll.h>

typedef struct pending {
    char *data;
    size_t len, off;
} pending;

static pending *pend;  /* indexed by fd */
static size_t npend;

static void watch(int ep, int op, int fd, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.fd = fd};
    epoll_ctl(ep, op, fd, &ev);
}

static void drop(int ep, int fd)
{
    epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
    if ((size_t)fd < npend) {
        free(pend[fd].data);
        pend[fd] = (pending){0};
    }
    close(fd);
}

static void grow(int fd)
{
    if ((size_t)fd < npend)
        return;
    size_t n = npend ? npend : 1024;
    while (n <= (size_t)fd)
        n *= 2;
    pend = realloc(pend, n * sizeof *pend);
    memset(pend + npend, 0, (n - npend) * sizeof *pend);
    npend = n;
}

int main(int argc, char **argv)
{
    int lfd = peer_listen("epoll_echo", peer_port(argc, argv), SOCK_NONBLOCK);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    watch(ep, EPOLL_CTL_ADD, lfd, EPOLLIN);
    static char buf[65536];
    struct epoll_event events[512];
    for (;;) {
        int n = epoll_wait(ep, events, 512, -1);
        for (int i = 0; i < n; i++) {
            int fd = events[i].data.fd;
            if (fd == lfd) {
                for (;;) {
                    int c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                    if (c < 0)
                        break;
                    peer_nodelay(c);
                    grow(c);
                    watch(ep, EPOLL_CTL_ADD, c, EPOLLIN);
                }
                continue;
            }
            if (events[i].events & EPOLLOUT) {
                pending *p = &pend[fd];
                ssize_t w = send(fd, p->data + p->off, p->len - p->off, MSG_NOSIGNAL);
                if (w < 0 && errno != EAGAIN) {
                    drop(ep, fd);
                    continue;
                }
                if (w > 0 && (p->off += (size_t)w) == p->len) {
                    free(p->data);
                    *p = (pending){0};
                    watch(ep, EPOLL_CTL_MOD, fd, EPOLLIN);
                }
                continue;
            }
            ssize_t r = recv(fd, buf, sizeof buf, 0);
            if (r <= 0) {
                if (r == 0 || errno != EAGAIN)
                    drop(ep, fd);
                continue;
            }
            ssize_t w = send(fd, buf, (size_t)r, MSG_NOSIGNAL);
            if (w < 0 && errno != EAGAIN) {
                drop(ep, fd);
                continue;
            }
            if (w < r) {
                size_t off = w > 0 ? (size_t)w : 0;
                pending *p = &pend[fd];
                p->len = (size_t)r - off;
                p->off = 0;
                p->data = malloc(p->len);
                memcpy(p->data, buf + off, p->len);
                watch(ep, EPOLL_CTL_MOD, fd, EPOLLOUT);
            }
        }
    }
}
