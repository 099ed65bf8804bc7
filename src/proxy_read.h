/* SPDX-License-Identifier: MIT */
/* proxy_read.h — reading a PROXY protocol header off a connection: the step
 * the acceptor (server_accept.c) and the event loop's connections
 * (event_conn.c) take before anything else of a connection when
 * proxy_protocol is on. Private. */
#ifndef SS_PROXY_READ_H
#define SS_PROXY_READ_H

#include "sockserve.h"

/*
 * Read what has arrived of the header on stream socket `fd`, without
 * waiting (MSG_DONTWAIT: the descriptor may be blocking) and without taking
 * a byte past the header's end: the bytes are peeked, given to the parser,
 * and only those it took are then read off the socket, so the connection's
 * own data stays in the socket for whoever reads it next (the handler, the
 * loop, a TLS handshake).
 *
 * Returns SS_PROXY_DONE (*out filled), SS_PROXY_MORE (nothing more to read
 * now: wait until `fd` is readable and call again), SS_EPROTO (malformed,
 * or the peer closed inside the header; *why says which), SS_EEOF (closed
 * before sending a byte), or a negative errno. Every byte peeked is taken
 * unless the header is refused, so a level-triggered poll never spins on
 * bytes left behind. Any thread (the parser is the caller's).
 */
int ss__proxy_read(int fd, ss_proxy_parser *p, ss_proxy_header *out, const char **why);

#endif
