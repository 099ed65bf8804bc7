/* SPDX-License-Identifier: MIT */
/* uring_echo.c — io_uring echo server (liburing from Debian): one thread, one
 * ring; every connection always has exactly one recv or send in flight on
 * its own 64 KiB buffer (only the pages a message touches become resident).
 * A reference for what the kernel's fastest interface gives; not an epoll loop.
 * usage: uring_echo [PORT] */
#include "common.h"

#include <errno.h>
#include <liburing.h>
#include <string.h>

enum { OP_ACCEPT = 1, OP_RECV = 2, OP_SEND = 3 };
#define BUF_SIZE 65536

typedef struct conn {
    int fd;
    size_t len, off; /* bytes of buf being echoed, and how many went out */
    char buf[BUF_SIZE];
} conn;

static struct io_uring ring;

static struct io_uring_sqe *sqe_get(void)
{
    struct io_uring_sqe *sqe;
    while ((sqe = io_uring_get_sqe(&ring)) == NULL)
        io_uring_submit(&ring);
    return sqe;
}

static void arm(conn *c, int op)
{
    struct io_uring_sqe *sqe = sqe_get();
    if (op == OP_RECV)
        io_uring_prep_recv(sqe, c->fd, c->buf, BUF_SIZE, 0);
    else
        io_uring_prep_send(sqe, c->fd, c->buf + c->off, c->len - c->off, MSG_NOSIGNAL);
    io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)c | (uint64_t)op);
}

static void arm_accept(int lfd)
{
    struct io_uring_sqe *sqe = sqe_get();
    io_uring_prep_accept(sqe, lfd, NULL, NULL, SOCK_CLOEXEC);
    io_uring_sqe_set_data64(sqe, OP_ACCEPT);
}

int main(int argc, char **argv)
{
    int lfd = peer_listen("uring_echo", peer_port(argc, argv), 0);
    struct io_uring_params p = {.flags = IORING_SETUP_CQSIZE, .cq_entries = 65536};
    int rc = io_uring_queue_init_params(4096, &ring, &p);
    if (rc < 0) {
        fprintf(stderr, "uring_echo: io_uring_queue_init: %s\n", strerror(-rc));
        return 1;
    }
    arm_accept(lfd);
    for (;;) {
        io_uring_submit_and_wait(&ring, 1);
        struct io_uring_cqe *cqe;
        unsigned head, seen = 0;
        io_uring_for_each_cqe(&ring, head, cqe)
        {
            seen++;
            uint64_t data = io_uring_cqe_get_data64(cqe);
            int op = (int)(data & 3);
            conn *c = (conn *)(uintptr_t)(data & ~(uint64_t)3);
            int res = cqe->res;
            if (op == OP_ACCEPT) {
                if (res >= 0) {
                    peer_nodelay(res);
                    c = malloc(sizeof *c); /* malloc aligns to 16: low bits free */
                    c->fd = res;
                    arm(c, OP_RECV);
                } else if (res == -EMFILE || res == -ENFILE) {
                    usleep(10000); /* never spin on a full descriptor table */
                }
                arm_accept(lfd);
            } else if (res <= 0) {
                close(c->fd);
                free(c);
            } else if (op == OP_RECV) {
                c->len = (size_t)res;
                c->off = 0;
                arm(c, OP_SEND);
            } else if ((c->off += (size_t)res) < c->len) {
                arm(c, OP_SEND);
            } else {
                arm(c, OP_RECV);
            }
        }
        io_uring_cq_advance(&ring, seen);
    }
}
