/* SPDX-License-Identifier: MIT */
/* inherited.h — taking a socket this process was given (inherited.c) for a
 * server: systemd:, systemd:NAME, fd:N. Private: not installed. */
#ifndef SS_INHERITED_H
#define SS_INHERITED_H

#include "internal.h"

/*
 * Find the socket `text` names, check it (an open socket of a kind sockserve
 * serves, of `want_type` unless that is 0, bound, and not a connection),
 * then take it: *out adopts it (close-on-exec; timeout as the descriptor's
 * O_NONBLOCK says) and *addr is its own address (getsockname). For systemd:
 * the whole of LISTEN_FDS is taken then (ss_listen_fds). *listening says
 * whether a stream socket is already listening (SO_ACCEPTCONN).
 *
 * Returns 0, or a code with err->msg "'TEXT': what is wrong" (SS_EBADADDR for
 * a malformed form; see ss_server_new in sockserve.h for the others). On
 * failure nothing was changed: the descriptor and the environment are as
 * they were. Main thread (systemd: reads and unsets the environment).
 */
int ss__inherited_take(const char *text, int want_type, ss_sock *out, ss_addr *addr,
                       bool *listening, ss_error *err);

#endif
