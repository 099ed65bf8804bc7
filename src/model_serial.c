/* SPDX-License-Identifier: MIT */
/* model_serial.c — TCPServer / UDPServer: each request runs to its end inside
 * serve_forever (or handle_request) before the next is taken. */
#include "server_internal.h"

static void serial_dispatch(ss_server *srv, ss__req *req)
{
    ss__req_run(srv, req);
    ss__req_end(srv, req, false);
}

/* Nothing runs outside the loop, so draining and aborting have nothing to
 * do; the members stay NULL. */
const ss__model_ops ss__model_serial = {
    .name = "serial",
    .dispatch = serial_dispatch,
};
