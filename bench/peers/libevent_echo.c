/* libevent_echo.c — libevent 2.1 echo server with bufferevents, as its
 * documentation shows: the read callback moves the whole input buffer to the
 * output buffer. By default a bufferevent reads at most 4096 bytes per
 * callback, which ruins bulk transfers; `--tuned` lifts that with
 * bufferevent_set_max_single_read(bev, 64 KiB) (and the same for writes).
 * usage: libevent_echo [--tuned] [PORT] */
#include "common.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <string.h>

static int tuned;

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
    if (argc > 1 && strcmp(argv[1], "--tuned") == 0) {
        tuned = 1;
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
            tuned ? " (tuned)" : "");
    return event_base_dispatch(base);
}
