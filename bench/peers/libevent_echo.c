/* SPDX-License-Identifier: MIT */
/* libevent_echo.c — libevent 2.1 echo server with bufferevents, as its
 * documentation shows: the read callback moves the whole input buffer to the
 * output buffer. A bufferevent reads at most 4096 bytes per callback, which
 * ruins bulk transfers.
 *
 * `--tuned` calls bufferevent_set_max_single_read/write(bev, 64 KiB), the
 * documented knob. In libevent 2.1 (Debian 12 ships 2.1.12) that only lifts
 * the bufferevent's own 16 KiB cap: evbuffer_read() still reads at most
 * EVBUFFER_MAX_READ = 4096 bytes (evbuffer_set_max_read() arrived in 2.2).
 * `--raw` is how one gets bulk speed out of 2.1: libevent's plain event API
 * (EV_READ | EV_PERSIST) with our own recv/send into a 64 KiB buffer, the
 * unsent tail kept per connection (reading paused) until it drains.
 * usage: libevent_echo [--tuned | --raw] [PORT] */
#include "common.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <errno.h>
#include <string.h>

static int tuned, raw;

/* --raw: one connection of the plain-event variant. */
typedef struct raw_conn {
    struct event *ev;
    evutil_socket_t fd;
    char *tail; /* unsent bytes of the last echo, or NULL */
    size_t len, off;
} raw_conn;

static void raw_close(raw_conn *c)
{
    event_free(c->ev);
    evutil_closesocket(c->fd);
    free(c->tail);
    free(c);
}

static void raw_io(evutil_socket_t fd, short what, void *arg)
{
    static char buf[65536];
    raw_conn *c = arg;
    if (c->tail != NULL) { /* EV_WRITE: drain the tail, then read again */
        ssize_t w = send(fd, c->tail + c->off, c->len - c->off, MSG_NOSIGNAL);
        if (w < 0 && errno != EAGAIN) {
            raw_close(c);
            return;
        }
        if (w > 0 && (c->off += (size_t)w) == c->len) {
            free(c->tail);
            c->tail = NULL;
            event_del(c->ev);
            event_assign(c->ev, event_get_base(c->ev), fd, EV_READ | EV_PERSIST, raw_io, c);
            event_add(c->ev, NULL);
        }
        return;
    }
    (void)what;
    ssize_t r = recv(fd, buf, sizeof buf, 0);
    if (r <= 0) {
        if (r == 0 || errno != EAGAIN)
            raw_close(c);
        return;
    }
    ssize_t w = send(fd, buf, (size_t)r, MSG_NOSIGNAL);
    if (w < 0 && errno != EAGAIN) {
        raw_close(c);
        return;
    }
    if (w < r) {
        size_t off = w > 0 ? (size_t)w : 0;
        c->len = (size_t)r - off;
        c->off = 0;
        c->tail = malloc(c->len);
        memcpy(c->tail, buf + off, c->len);
        event_del(c->ev);
        event_assign(c->ev, event_get_base(c->ev), fd, EV_WRITE | EV_PERSIST, raw_io, c);
        event_add(c->ev, NULL);
    }
}

static void on_read(struct bufferevent *bev, void *arg)
{
    (void)arg;
    bufferevent_write_buffer(bev, bufferevent_get_input(bev));
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    (void)arg;
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
        bufferevent_free(bev);
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                      int salen, void *arg)
{
    (void)sa;
    (void)salen;
    (void)arg;
    struct event_base *base = evconnlistener_get_base(l);
    if (raw) {
        raw_conn *c = calloc(1, sizeof *c);
        c->fd = fd;
        evutil_make_socket_nonblocking(fd);
        peer_nodelay(fd);
        c->ev = event_new(base, fd, EV_READ | EV_PERSIST, raw_io, c);
        event_add(c->ev, NULL);
        return;
    }
    struct bufferevent *bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
    peer_nodelay(fd);
    if (tuned) {
        bufferevent_set_max_single_read(bev, 65536);
        bufferevent_set_max_single_write(bev, 65536);
    }
    bufferevent_setcb(bev, on_read, NULL, on_event, NULL);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
}

int main(int argc, char **argv)
{
    if (argc > 1 && (strcmp(argv[1], "--tuned") == 0 || strcmp(argv[1], "--raw") == 0)) {
        tuned = argv[1][2] == 't';
        raw = argv[1][2] == 'r';
        argv++;
        argc--;
    }
    struct event_base *base = event_base_new();
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)peer_port(argc, argv))};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct evconnlistener *l = evconnlistener_new_bind(
        base, on_accept, NULL, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC,
        4096, (struct sockaddr *)&a, sizeof a);
    if (l == NULL) {
        perror("libevent_echo");
        return 1;
    }
    socklen_t len = sizeof a;
    getsockname(evconnlistener_get_fd(l), (struct sockaddr *)&a, &len);
    fprintf(stderr, "libevent_echo: listening on tcp://127.0.0.1:%d%s\n", ntohs(a.sin_port),
            tuned ? " (tuned)" : raw ? " (raw events)" : "");
    return event_base_dispatch(base);
}
