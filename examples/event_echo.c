/* SPDX-License-Identifier: MIT */
/*
 * event_echo.c — an echo server on the event model's callback API.
 *
 *   event_echo [ADDRESS] [WORKERS]     (default tcp://127.0.0.1:9999, cores)
 *
 * Works on every address kind: tcp, unix, seqpacket through on_data, udp
 * and unixgram through on_packet. Each read is written straight back; only
 * what the socket cannot take right now is queued, and a peer that does
 * not read its echoes is paused at the high-water mark. Ctrl-C drains.
 */
#include <sockserve.h>
#include <stdio.h>
#include <stdlib.h>

static void echo_data(ss_conn *c, const void *data, size_t len)
{
    (void)ss_conn_write(c, data, len);
}

static void echo_packet(ss_dgram *d, const void *data, size_t len, const ss_addr *from)
{
    (void)ss_dgram_send(d, from, data, len);
}

static const struct ss_event_handler echo = {
    .on_data = echo_data, .on_packet = echo_packet,
    /* on_eof NULL: when the client shuts down writing, finish sending what
     * is queued, then close */
};

int main(int argc, char **argv)
{
    const char *address = argc > 1 ? argv[1] : "tcp://127.0.0.1:9999";
    ss_server_opts opts;
    ss_server_opts_init(&opts);
    opts.model = SS_MODEL_EVENT;
    opts.event = &echo;
    opts.workers = argc > 2 ? atoi(argv[2]) : 0;
    opts.allow_reuse_address = true;
    opts.drain_timeout = 2;

    ss_error err;
    ss_handler none = {0};
    ss_server *server;
    if (ss_server_new(&server, address, &none, &opts, &err) < 0) {
        fprintf(stderr, "event_echo: %s\n", err.msg);
        return 1;
    }
    char text[SS_ADDR_STRLEN];
    ss_addr_format(ss_server_address(server), text, sizeof text);
    fprintf(stderr, "event_echo: listening on %s\n", text);

    int rc = ss_server_serve_until_signal(server); /* Ctrl-C drains */
    ss_server_free(server);
    return rc < 0 ? 1 : 0;
}
