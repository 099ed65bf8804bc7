/* SPDX-License-Identifier: MIT */
/*
 * client.h — the rcmd client (docs/rcmd-protocol.md §5, §9, §10).
 *
 * Connect (dial, TLS handshake, HELLO exchange) once, then run commands one
 * after another on that connection. Blocking, single-threaded; signals reach
 * it through a descriptor the caller writes signal numbers to (a self-pipe:
 * the only thing a signal handler may safely do).
 */
#ifndef RCMD_CLIENT_H
#define RCMD_CLIENT_H

#include "rcmd/keyfile.h"
#include "sockserve.h"

#include <stdbool.h>
#include <stddef.h>

#define RCMD_DEFAULT_ADDRESS "tcp://127.0.0.1:9922"

/* Exit statuses of §9 beyond the command's own. */
enum { RCMD_STATUS_FAILED = 255, RCMD_STATUS_INTERRUPTED = 130, RCMD_STATUS_PIPE = 141 };

typedef struct rcmd_client_opts {
    const char *address;   /* NULL: RCMD_DEFAULT_ADDRESS */
    const rcmd_key *key;   /* PSK mode */
    const char *cert_file; /* certificate mode (with cert_key_file, ca_file) */
    const char *cert_key_file;
    const char *ca_file;
    bool insecure;          /* plain, no TLS: loopback/unix addresses only */
    double connect_timeout; /* connect + handshake + HELLO; 0 = 10 s */
} rcmd_client_opts;

typedef struct rcmd_client rcmd_client;

/*
 * Connect and authenticate. Returns 0, or: SS_EUSAGE (insecure on a
 * non-loopback address, no key), SS_EAUTH (authentication failed),
 * SS_ETIMEOUT, SS_EPROTO (not an rcmd server, version), or a connect error;
 * err->msg is one line naming the address.
 */
int rcmd_client_connect(rcmd_client **out, const rcmd_client_opts *o, ss_error *err);

/* Where a command's I/O goes. */
typedef struct rcmd_client_io {
    int in_fd;  /* forwarded as STDIN until EOF; -1: send STDIN_EOF at once */
    int out_fd; /* STDOUT frames */
    int err_fd; /* STDERR frames and the server's ERROR texts */
    int sig_fd; /* readable: one byte per signal (SIGINT, SIGTERM, SIGHUP) the
                   caller caught; -1: none */
} rcmd_client_io;

/*
 * Run one command: `mode` RCMD_EXEC_ARGV (argv[0..argc)) or RCMD_EXEC_SHELL
 * (argv[0] is the line). Returns its exit status as §9 maps it (code, or
 * 128+N for signal N; 130 after a second Ctrl-C; 141 when out_fd is a closed
 * pipe; 128+N for SIGTERM/SIGHUP to us), or a negative code when the
 * connection or the protocol failed (err->msg says what; the client is then
 * unusable). After a status >= 0 from an EXIT frame the connection can run
 * the next command; after 130/141/128+N from our own signals it cannot.
 */
int rcmd_client_run(rcmd_client *c, int mode, const char *const *argv, size_t argc,
                    const rcmd_client_io *io, ss_error *err);

/* True while the connection can run another command. */
bool rcmd_client_usable(const rcmd_client *c);

/* Close the connection (sending TLS close_notify) and free. NULL is fine. */
void rcmd_client_close(rcmd_client *c);

/* ---- dialling ------------------------------------------------------------- */

/* Most addresses a name may give that the client tries (as ss_dial). */
#define RCMD_DIAL_MAX 16

/* True when every one of a[0..n) is loopback or unix (n > 0): the test a
 * cleartext connection must pass for *each* address it may dial, not only
 * the first a name resolves to. */
bool rcmd_addrs_all_loopback(const ss_addr *a, size_t n);

/*
 * Resolve `address` once (at most RCMD_DIAL_MAX results) and connect to the
 * first that answers, `timeout` seconds each. With `cleartext`, every
 * resolved address must be loopback or unix (else SS_EUSAGE, nothing
 * dialled): the addresses checked are exactly the ones dialled. 0 or a
 * negative code, err->msg naming the address.
 */
int rcmd_dial(ss_sock *out, const char *address, bool cleartext, double timeout, ss_error *err);

/* ---- the seed's protocol (§10) ------------------------------------------ */

/*
 * Dial `address` (plain TCP/unix; no TLS, by nature of the seed protocol)
 * and return a transport in *t. 0 or a negative code, err->msg set.
 */
int rcmd_seed_connect(ss_transport *t, const char *address, double timeout, ss_error *err);

/*
 * One exchange: send `line` (one write, no newline), read the
 * CMD_RESULT_SIZE|N announcement (one read of at most 100 bytes), send
 * CMD_RESULT, copy N bytes to out_fd. Returns N (>= 0) or a negative code
 * (SS_EPROTO for a bad announcement, SS_EEOF when the server closed early,
 * -EPIPE when out_fd is closed). `timeout` bounds each wait (seconds, < 0
 * none). `last_byte` (may be NULL) gets the result's last byte, or -1 when
 * it was empty.
 */
long long rcmd_seed_exchange(ss_transport *t, const char *line, int out_fd, double timeout,
                             int *last_byte, ss_error *err);

#endif
