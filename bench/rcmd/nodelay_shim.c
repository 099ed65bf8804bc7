/* nodelay_shim.c — LD_PRELOAD diagnostic for bench/rcmd: sets TCP_NODELAY on
 * every socket the program connects or accepts, without touching its code.
 *
 * sockserve rcmd and rcmd-server write small TLS records back to back (the
 * client's Finished then HELLO; EXEC then STDIN_EOF) and then wait for an
 * answer. With Nagle on, the second small write waits for the ACK of the first,
 * which the peer delays by up to 40 ms. The runner measures rcmd once as
 * shipped and once under this shim: the difference is that wait. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <sys/socket.h>

static void nodelay(int fd)
{
    int one = 1;
    /* fails harmlessly (ENOTSUP, EOPNOTSUPP) on unix and UDP sockets */
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

int connect(int fd, const struct sockaddr *addr, socklen_t len)
{
    static int (*real)(int, const struct sockaddr *, socklen_t);
    if (real == NULL)
        real = (int (*)(int, const struct sockaddr *, socklen_t))dlsym(RTLD_NEXT, "connect");
    nodelay(fd);
    return real(fd, addr, len);
}

int accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
    static int (*real)(int, struct sockaddr *, socklen_t *, int);
    if (real == NULL)
        real = (int (*)(int, struct sockaddr *, socklen_t *, int))dlsym(RTLD_NEXT, "accept4");
    int c = real(fd, addr, len, flags);
    if (c >= 0)
        nodelay(c);
    return c;
}

int accept(int fd, struct sockaddr *addr, socklen_t *len)
{
    static int (*real)(int, struct sockaddr *, socklen_t *);
    if (real == NULL)
        real = (int (*)(int, struct sockaddr *, socklen_t *))dlsym(RTLD_NEXT, "accept");
    int c = real(fd, addr, len);
    if (c >= 0)
        nodelay(c);
    return c;
}
