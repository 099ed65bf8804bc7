/* SPDX-License-Identifier: MIT */
/*
 * sockserve.h — the one public header of libsockserve.
 *
 * Python's socket + socketserver model in C. The header is organised by the
 * layers of the library, bottom up:
 *
 *   errors     codes, names, ss_strerror(), the optional ss_error detail struct
 *   addr       one address syntax everywhere (tcp://, udp://, unix:, ...)
 *   sock       Python's socket semantics: timeouts, sendall, connect_ex ...
 *   transport  the operations table a stream runs over (plain fd, TLS)
 *   tls        TLS contexts and transports (OpenSSL 3), server and client
 *   stream     buffered request I/O (Python's rfile/wfile)
 *   proxy      the PROXY protocol header (HAProxy's v1 and v2) a server
 *              behind a load balancer reads first
 *   server     the socketserver core and its concurrency models
 *   coroutine  blocking calls that yield to a loop (SS_MODEL_COROUTINE)
 *   systemd    socket activation (LISTEN_FDS) and readiness (NOTIFY_SOCKET)
 *   loop       the event engine and its callback API
 *
 * Conventions (see docs/design.md):
 *   - functions return 0 (or a byte count) on success and a negative
 *     errno-style code on failure; ss_strerror() turns a code into text;
 *   - setup functions take an optional `ss_error *` (may be NULL) that receives
 *     a message naming the input (address, flag, file) that failed;
 *   - the library prints nothing on its own, with one exception: a server's
 *     log lines at ERROR and WARN (a handler that failed, a full queue) go
 *     to stderr by default (ss_server_log_to_stderr); set opts.log to your
 *     own sink, or to NULL for silence. Whoever opens frees with the
 *     matching close/free; no global mutable state (save the one server
 *     ss_server_serve_until_signal is running, which its signal handler
 *     must find).
 *
 * Thread safety: unless a prototype says otherwise, an object may be used by
 * one thread at a time; distinct objects may be used from distinct threads.
 */
#ifndef SOCKSERVE_H
#define SOCKSERVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <poll.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SS_VERSION_MAJOR 0
#define SS_VERSION_MINOR 1
#define SS_VERSION_PATCH 0
#define SS_VERSION_STRING "0.1.0"

/* Returns SS_VERSION_STRING of the library actually linked. Any thread. */
const char *ss_version(void);

/* ========================================================================
 * errors
 * ======================================================================== */

/*
 * sockserve's own error codes, beside the negative errno values that every
 * function may also return (-ECONNREFUSED, -EADDRINUSE, ...). They live far
 * above any errno so the two ranges never meet. X(NAME, value, message).
 */
#define SS_ERROR_TABLE(X)                                                      \
    X(EOF, -10001, "end of file")                                              \
    X(TIMEOUT, -10002, "timed out")                                            \
    X(BADADDR, -10003, "malformed address")                                    \
    X(NORESOLVE, -10004, "name does not resolve")                              \
    X(TOOLONG, -10005, "line too long")                                        \
    X(PROTO, -10006, "protocol error")                                         \
    X(CLOSED, -10007, "closed")                                                \
    X(BUSY, -10008, "server is busy")                                          \
    X(SHUTDOWN, -10009, "server is shutting down")                             \
    X(USAGE, -10010, "invalid argument")                                       \
    X(TLS, -10011, "TLS error")                                                \
    X(AUTH, -10012, "authentication failed")                                   \
    X(UNSUPPORTED, -10013, "not supported")

enum ss_error_code {
#define SS__ERROR_ENUM(name, value, msg) SS_E##name = (value),
    SS_ERROR_TABLE(SS__ERROR_ENUM)
#undef SS__ERROR_ENUM
    SS_OK = 0
};

/* Text for a code: one of the table above, or strerror(-code) for an errno.
 * Never NULL; thread-safe (does not use strerror's static buffer). */
const char *ss_strerror(int code);

/* Symbolic name: "SS_ETIMEOUT", "ECONNREFUSED", ... or "UNKNOWN". */
const char *ss_err_name(int code);

/*
 * Setup-time detail, filled by functions that take one (pass NULL if you do
 * not want it). `msg` names what failed, e.g.
 *   "cannot bind tcp://127.0.0.1:80: Permission denied"
 *   "bad address 'tcp://[::1': missing ']'"
 */
#define SS_ERROR_MSG_MAX 512
typedef struct ss_error {
    int code;                   /* the same negative code the call returned */
    char msg[SS_ERROR_MSG_MAX]; /* one line, no trailing newline */
} ss_error;

/* ========================================================================
 * addr — parse / format / resolve every address form
 * ======================================================================== */

typedef enum ss_addr_kind {
    SS_ADDR_NONE = 0,
    SS_ADDR_TCP,       /* tcp://HOST:PORT, HOST:PORT, :PORT */
    SS_ADDR_UDP,       /* udp://HOST:PORT */
    SS_ADDR_UNIX,      /* unix:/path, unix:@abstract (stream) */
    SS_ADDR_UNIXGRAM,  /* unixgram:/path, unixgram:@abstract */
    SS_ADDR_SEQPACKET  /* seqpacket:/path, seqpacket:@abstract */
} ss_addr_kind;

/* A resolved, bindable/connectable address. Plain data: copy it freely. */
typedef struct ss_addr {
    ss_addr_kind kind;
    socklen_t len; /* bytes of `u` in use (as for bind/connect) */
    union {
        struct sockaddr sa;
        struct sockaddr_in in;
        struct sockaddr_in6 in6;
        struct sockaddr_un un;
        struct sockaddr_storage storage;
    } u;
} ss_addr;

/* Big enough for any formatted address, with its NUL. */
#define SS_ADDR_STRLEN 160

/* Flags for ss_addr_parse / ss_addr_resolve. */
#define SS_ADDR_PASSIVE 0x1 /* for a server: ":PORT" means every interface
                               (dual-stack [::] when available), not localhost */
#define SS_ADDR_NUMERIC 0x2 /* never look names up (no DNS) */

/*
 * Parse `text` into `*out`, resolving a host name with getaddrinfo and taking
 * its first result. Accepts every form of DESIGN.md. Returns 0, SS_EBADADDR
 * (with err->msg saying what is wrong and quoting `text`), or SS_ENORESOLVE
 * ("cannot resolve 'HOST': <gai_strerror>"). Any thread.
 *
 * Strict by design: schemes are case-insensitive; ports are decimal 0..65535
 * with nothing else; IPv4 must be a.b.c.d (inet_aton forms like "127.1" are
 * refused); IPv6 must be bracketed, with an optional %scope (name or index);
 * unix paths and abstract names are 1..107 bytes without control characters
 * (abstract: len is exactly offsetof(sun_path) + 1 + strlen(name)). The
 * syntax is checked fully before any lookup. With SS_ADDR_NUMERIC a host
 * name gives SS_EBADADDR without any lookup. ":PORT" is 127.0.0.1, or with
 * SS_ADDR_PASSIVE [::] (0.0.0.0 where the machine has no IPv6). On failure
 * `*out` is zeroed.
 */
int ss_addr_parse(ss_addr *out, const char *text, int flags, ss_error *err);

/*
 * Like ss_addr_parse, but returns every address a name resolves to (e.g.
 * "localhost" -> ::1 and 127.0.0.1), in getaddrinfo's order without
 * duplicates, at most `max`. Returns how many were stored (>= 1) or a
 * negative code (SS_EUSAGE when max is 0). Any thread.
 */
int ss_addr_resolve(const char *text, int flags, ss_addr *out, size_t max,
                    ss_error *err);

/*
 * Canonical text of an address: "tcp://127.0.0.1:41234", "tcp://[::1]:80",
 * "udp://...", "unix:/path", "unix:@name", "unixgram:...", "seqpacket:...".
 * An unbound unix socket formats as "unix:" (empty). Writes at most `len`
 * bytes including the NUL (SS_ADDR_STRLEN always suffices); returns the
 * length it needed (like snprintf) or SS_EBADADDR (family unknown or not
 * matching the kind). Kind SS_ADDR_NONE formats as tcp/unix by family.
 * v4-mapped addresses print as "[::ffff:a.b.c.d]"; a scope id as %ifname.
 * Kernel-given unix names may hold any byte: as in /proc/net/unix, a NUL in
 * an abstract name prints as '@' and control bytes as '?'. Every address
 * ss_addr_parse makes formats back to text that parses to the same bytes.
 * Any thread.
 */
int ss_addr_format(const ss_addr *a, char *buf, size_t len);

/* Build an ss_addr from a sockaddr the kernel gave (accept, recvfrom,
 * getsockname). Returns 0 or SS_EBADADDR for a family it does not know, one
 * that does not match `kind`, or a short length. SS_ADDR_NONE means tcp for
 * inet and unix for AF_UNIX. For a unix kind, a length below
 * sizeof(sa_family_t) (an unnamed recvfrom peer) gives the unnamed address. */
int ss_addr_from_sockaddr(ss_addr *out, ss_addr_kind kind,
                          const struct sockaddr *sa, socklen_t len);

/* AF_INET / AF_INET6 / AF_UNIX for this address. */
int ss_addr_family(const ss_addr *a);
/* SOCK_STREAM / SOCK_DGRAM / SOCK_SEQPACKET for this address kind;
 * SS_EBADADDR for SS_ADDR_NONE. */
int ss_addr_socktype(ss_addr_kind kind);
/* True for kinds whose sockets are connection-oriented. */
bool ss_addr_is_stream(ss_addr_kind kind);
/* True for 127.0.0.0/8, ::1, ::ffff:127.x and every unix address. */
bool ss_addr_is_loopback(const ss_addr *a);
/* Port of an inet address (host byte order), or -1. */
int ss_addr_port(const ss_addr *a);
/* Scheme name of a kind: "tcp", "udp", "unix", "unixgram", "seqpacket";
 * "none" for SS_ADDR_NONE. */
const char *ss_addr_kind_name(ss_addr_kind kind);

/*
 * Inherited sockets: three forms name a socket this process was given rather
 * than an address to bind, and only a server takes them (ss_server_new):
 *   systemd:        the first socket systemd's socket activation passed
 *                   (LISTEN_FDS; see ss_listen_fds below)
 *   systemd:NAME    the passed socket named NAME in LISTEN_FDNAMES (a .socket
 *                   unit's FileDescriptorName=); NAME is 1..255 printable
 *                   ASCII characters other than ':'
 *   fd:N            descriptor N, a socket already bound (by a parent process,
 *                   s6-socketbinder, a test harness ...)
 * The schemes are case-insensitive like the others. They are not ss_addr
 * values: ss_addr_parse refuses them (SS_EBADADDR, saying only a server takes
 * them), and a server made from one reports the socket's own address
 * (getsockname) through ss_server_address().
 *
 * True when `text` is written in one of these schemes (well formed or not:
 * ss_server_new then says what is wrong with it). NULL is false. Any thread.
 */
bool ss_addr_is_inherited(const char *text);

/* ========================================================================
 * sock — Python's socket semantics
 * ======================================================================== */

/* settimeout values, as in Python: none = blocking, 0 = non-blocking. */
#define SS_TIMEOUT_NONE (-1.0)

/*
 * A socket. Plain struct, embeddable; fd is -1 when closed. `timeout` is the
 * settimeout value in seconds (SS_TIMEOUT_NONE, 0, or > 0). With a timeout
 * > 0 the descriptor is non-blocking underneath and every call waits at most
 * `timeout` seconds, then returns SS_ETIMEOUT (distinct from -EAGAIN, which
 * only a timeout of 0 returns).
 */
typedef struct ss_sock {
    int fd;
    ss_addr_kind kind;
    int family;
    double timeout;
} ss_sock;

#define SS_SOCK_INIT {-1, SS_ADDR_NONE, 0, SS_TIMEOUT_NONE}

/* Create a socket of any family/type/protocol (close-on-exec, blocking;
 * SOCK_NONBLOCK in `type` gives timeout 0). `kind` is derived from the
 * family and type (SS_ADDR_NONE for raw and other types).
 * RAW needs CAP_NET_RAW; without it -EPERM is returned. */
int ss_sock_open(ss_sock *s, int family, int type, int protocol);
/* Create the socket an address needs (family and type from `a`). */
int ss_sock_open_for(ss_sock *s, const ss_addr *a);
/* Adopt an existing descriptor (e.g. systemd LISTEN_FDS): sets FD_CLOEXEC;
 * the timeout is NONE, or 0 if the descriptor is already non-blocking (as
 * Python's socket(fileno=)). `kind` SS_ADDR_NONE = derive it. -ENOTSOCK for
 * a descriptor that is not a socket. */
int ss_sock_from_fd(ss_sock *s, int fd, ss_addr_kind kind);

/* settimeout/gettimeout/setblocking, as in Python. Any negative value means
 * SS_TIMEOUT_NONE; NaN is SS_EUSAGE. */
int ss_sock_settimeout(ss_sock *s, double seconds);
double ss_sock_gettimeout(const ss_sock *s);
int ss_sock_setblocking(ss_sock *s, bool blocking);

/*
 * bind. For a unix path that already exists: if it is a socket nobody listens
 * on (connect gets ECONNREFUSED) it is removed and the bind retried; a live
 * one gives -EADDRINUSE; a non-socket file is left alone (-EADDRINUSE).
 */
int ss_sock_bind(ss_sock *s, const ss_addr *a, ss_error *err);
int ss_sock_listen(ss_sock *s, int backlog);

/*
 * accept: the new socket is close-on-exec and blocking (timeout NONE), as in
 * Python with no default timeout. Waits per the listener's timeout. `peer`
 * may be NULL. Retries EINTR and ECONNABORTED.
 */
int ss_sock_accept(ss_sock *listener, ss_sock *conn, ss_addr *peer);

/* connect, honouring the socket's timeout (SS_ETIMEOUT when it runs out;
 * with timeout 0, -EINPROGRESS as Python). err->msg reads
 * "cannot connect to tcp://127.0.0.1:1: Connection refused". */
int ss_sock_connect(ss_sock *s, const ss_addr *a, ss_error *err);
/* Python's connect_ex: the same, but never fills an ss_error; returns 0 or
 * the negative code. */
int ss_sock_connect_ex(ss_sock *s, const ss_addr *a);

/* send/recv family. Never raises SIGPIPE. Retries EINTR. recv returns 0 at
 * end of file. Each call waits per the socket's timeout. */
ssize_t ss_sock_send(ss_sock *s, const void *buf, size_t len, int flags);
ssize_t ss_sock_recv(ss_sock *s, void *buf, size_t len, int flags);
ssize_t ss_sock_recvfrom(ss_sock *s, void *buf, size_t len, int flags,
                         ss_addr *from);
ssize_t ss_sock_sendto(ss_sock *s, const void *buf, size_t len, int flags,
                       const ss_addr *to);
/* Send every byte, surviving partial writes and EINTR. With a timeout, the
 * timeout applies to each wait for the peer (a peer that keeps reading never
 * times out; one that stops for `timeout` gives SS_ETIMEOUT; Python >= 3.5
 * bounds the whole call instead). On failure an unknown prefix was sent.
 * Returns 0 or a code. */
int ss_sock_sendall(ss_sock *s, const void *buf, size_t len);

/* The kernel's address, in ss_addr form (kind from the socket). */
int ss_sock_getsockname(const ss_sock *s, ss_addr *out);
int ss_sock_getpeername(const ss_sock *s, ss_addr *out);
/* SHUT_RD / SHUT_WR / SHUT_RDWR. */
int ss_sock_shutdown(ss_sock *s, int how);
/* Close (idempotent; fd becomes -1). Never retried on EINTR (Linux has
 * freed the descriptor already). */
int ss_sock_close(ss_sock *s);

typedef enum ss_sockopt {
    SS_OPT_REUSEADDR,
    SS_OPT_REUSEPORT,
    SS_OPT_NODELAY,
    SS_OPT_KEEPALIVE,
    SS_OPT_V6ONLY,
    SS_OPT_RCVBUF,
    SS_OPT_SNDBUF,
    SS_OPT_BROADCAST
} ss_sockopt;
/* Integer socket options. RCVBUF/SNDBUF read back as the kernel keeps them
 * (twice what was set, on Linux). */
int ss_sock_set_option(ss_sock *s, ss_sockopt opt, int value);
int ss_sock_get_option(const ss_sock *s, ss_sockopt opt, int *value);

/* Options for ss_listen(). Zero-initialise, then set what you need. */
typedef struct ss_listen_opts {
    int backlog;        /* 0 = 128 */
    bool reuse_address; /* SO_REUSEADDR (ignored for unix) */
    bool reuse_port;    /* SO_REUSEPORT */
    bool v6only;        /* for [::]: listen on IPv6 only, not dual-stack */
} ss_listen_opts;

/*
 * Open, set options, bind and (for stream kinds) listen: a ready server
 * socket. `opts` may be NULL. On failure nothing is left open and err->msg
 * reads like "cannot bind tcp://127.0.0.1:80: Permission denied".
 */
int ss_listen(ss_sock *out, const ss_addr *a, const ss_listen_opts *opts,
              ss_error *err);

/*
 * Client side in one call: parse (names resolved, ":PORT" = localhost), try
 * each resolved address in turn with `timeout` each (SS_TIMEOUT_NONE: block),
 * and return the first connected socket (datagram kinds are connect()ed too,
 * so send/recv work; unixgram clients are autobound to an abstract name so
 * replies reach them). The socket keeps `timeout` as its settimeout value,
 * as Python's create_connection. err->msg names the last address tried,
 * e.g. "cannot connect to tcp://127.0.0.1:1: Connection refused".
 */
int ss_dial(ss_sock *out, const char *address, double timeout, ss_error *err);

/* ========================================================================
 * transport — what a stream reads and writes through
 * ======================================================================== */

typedef struct ss_transport ss_transport;

/*
 * The operations table (Redis ConnectionType): plain fd now, TLS beside it.
 * read/write never block: they return bytes done, 0 (read: end of file), or
 * -EAGAIN when they would block, after which `wait_events` says what to poll
 * for (POLLIN/POLLOUT: TLS may need to write while reading), or another
 * negative code.
 */
typedef struct ss_transport_ops {
    const char *name;
    ssize_t (*read)(ss_transport *t, void *buf, size_t len);
    ssize_t (*write)(ss_transport *t, const void *buf, size_t len);
    short (*wait_events)(ss_transport *t, short wanted);
    int (*shutdown_write)(ss_transport *t);
    void (*close)(ss_transport *t);
} ss_transport_ops;

struct ss_transport {
    const ss_transport_ops *ops;
    int fd;     /* the descriptor to poll */
    void *impl; /* the implementation's state (e.g. SSL *) */
};

/* A plain-descriptor transport over `fd` (sets it non-blocking; ss_sock
 * calls on the same fd still honour the ss_sock's timeout). Sockets are
 * written with MSG_NOSIGNAL; other descriptors (pipes, ttys) with write(),
 * so the caller must ignore SIGPIPE for those, and their shutdown_write is
 * SS_EUNSUPPORTED. The transport's close() closes the fd; ss_stream_free
 * does not call it. */
int ss_transport_fd_init(ss_transport *t, int fd);

/* ========================================================================
 * tls — TLS (OpenSSL 3) as a transport, for servers and clients
 * ======================================================================== */

/*
 * A context holds what every connection of one side shares: certificates,
 * the CA to verify the peer with, the protocol floor, the session cache.
 * Make it once (main thread), give it to a server (ss_server_opts.tls) or
 * to ss_tls_dial, and free it after everything that uses it. Connections
 * may be made from it on any thread at once; ss_tls_ctx_reload may run
 * meanwhile (certificate renewal without a restart).
 */
typedef struct ss_tls_ctx ss_tls_ctx;

#define SS_TLS_1_2 0x0303
#define SS_TLS_1_3 0x0304

typedef struct ss_tls_opts {
    const char *cert_file; /* PEM certificate chain. Server: required.
                              Client: optional (a client certificate). */
    const char *key_file;  /* its private key (PEM); with cert_file */
    const char *ca_file;   /* server: clients must present a certificate
                              signed by a CA in this file (mutual TLS).
                              Client: verify the server against this file
                              instead of the system's CAs. */
    bool insecure_no_verify; /* client: accept any server certificate (for
                                tests against self-signed peers only) */
    int min_version;       /* SS_TLS_1_2 (0 = this default) or SS_TLS_1_3;
                              older protocols are always refused */
    bool no_resumption;    /* server: no session tickets or cache; client:
                              never resume. Default: resumption on (server:
                              stateless tickets, so it works across the
                              processes of forking/prefork; client: the
                              context keeps its latest session) */
} ss_tls_opts;

/*
 * A server or client context from `opts` (which may be NULL for a client
 * that verifies against the system CAs). The files are read now; their
 * names are kept for ss_tls_ctx_reload. Returns 0, SS_EUSAGE (a server
 * without a certificate, a certificate without its key), or SS_ETLS with
 * err->msg naming the file and OpenSSL's reason:
 *   "cannot load certificate 'x.pem': no start line"
 *   "private key 'k.pem' does not match certificate 'x.pem'"
 */
int ss_tls_ctx_new(ss_tls_ctx **out, bool server, const ss_tls_opts *opts, ss_error *err);

/*
 * A context around an SSL_CTX the caller configured itself (e.g. for an
 * external PSK): the library takes a reference (the caller may free its
 * own) and adds nothing but its socket BIO. Such a context cannot reload.
 */
int ss_tls_ctx_adopt(ss_tls_ctx **out, bool server, void *ssl_ctx, ss_error *err);

/*
 * Re-read every certificate, key and CA file for the connections made from
 * now on; existing connections keep what they started with. On failure the
 * context is unchanged and err->msg names the file. Session tickets issued
 * before stay valid. Under the forking and prefork models, processes forked
 * earlier take what this call loaded at their next connection (the bytes
 * go through a mapping shared across fork; they never read the files, so a
 * file that went bad after a good reload cannot reach them). Each file is
 * at most 256 KiB, all of them 1 MiB. Any thread.
 */
int ss_tls_ctx_reload(ss_tls_ctx *ctx, ss_error *err);

/*
 * Server: serve another certificate chain and key to clients whose SNI it
 * covers (the certificate's subjectAltName DNS names, "*.example.org"
 * wildcards included; its CN when it has none). The certificate of
 * ss_tls_opts.cert_file stays the default: for a client that sends no
 * name, or a name no certificate covers. Pairs are tried in the order they
 * were added; at most 16 in all. The files are read now (errors as
 * ss_tls_ctx_new's), kept for ss_tls_ctx_reload, and take effect for new
 * connections, in every process of the server. SS_EUSAGE on a client or
 * adopted context. Any thread.
 */
int ss_tls_ctx_add_cert(ss_tls_ctx *ctx, const char *cert_file, const char *key_file,
                        ss_error *err);

/* Free the context (NULL is fine). Connections made from it keep working. */
void ss_tls_ctx_free(ss_tls_ctx *ctx);

/* The SSL_CTX connections are made from now (borrowed), to configure what
 * this API does not: ciphers, ALPN, callbacks. */
void *ss_tls_ctx_ssl_ctx(ss_tls_ctx *ctx);

/*
 * Make `t` a TLS transport over the connected socket `fd` (made
 * non-blocking). A client context sends `server_name` as SNI and verifies
 * the certificate against it (a host name or an IP literal); NULL sends no
 * name and verifies only the chain. No I/O happens here: the handshake
 * runs in ss_tls_handshake(_step), or on the first read or write. On
 * success the transport owns fd (t->ops->close frees both); on failure fd
 * is left open. Returns 0, SS_ETLS or -ENOMEM.
 */
int ss_tls_transport_new(ss_transport *t, ss_tls_ctx *ctx, int fd, const char *server_name,
                         ss_error *err);

/*
 * One non-blocking handshake step: 0 when complete, -EAGAIN when it must
 * wait (poll t->fd for t->ops->wait_events(t, POLLIN)), SS_EAUTH when the
 * peer failed verification (err->msg says why: "certificate has expired",
 * "unable to get local issuer certificate", "hostname mismatch", "peer did
 * not return a certificate"), SS_ETLS for any other TLS failure (a
 * plaintext peer, a protocol version below the floor), SS_ECLOSED when the
 * peer closed first, or a negative errno.
 */
int ss_tls_handshake_step(ss_transport *t, ss_error *err);

/* The whole handshake, waiting at most `timeout` seconds in all
 * (SS_TIMEOUT_NONE: no bound). The returns of the step form, plus
 * SS_ETIMEOUT. */
int ss_tls_handshake(ss_transport *t, double timeout, ss_error *err);

/*
 * Free the TLS state of `t` without a byte on the wire and without closing
 * the descriptor, which the caller keeps (the forking model's parent drops
 * its copy of a connection its child serves). `t` is left a plain transport
 * that is no longer usable.
 */
void ss_tls_transport_release(ss_transport *t);

/* True if `t` was made by ss_tls_transport_new. */
bool ss_transport_is_tls(const ss_transport *t);

/* The SSL of a TLS transport (borrowed), or NULL. */
void *ss_tls_ssl(const ss_transport *t);

/* What a finished handshake agreed on. Strings are NUL-terminated and
 * empty when not known. */
typedef struct ss_tls_info {
    char version[16];       /* "TLSv1.3" */
    char cipher[64];        /* "TLS_AES_256_GCM_SHA384" */
    char server_name[256];  /* server side: the SNI the client sent */
    char peer_subject[256]; /* the peer certificate's subject, one line */
    bool peer_verified;     /* a peer certificate was presented and verified */
    bool resumed;           /* the session was resumed (no full handshake) */
} ss_tls_info;

/* Fill `out` for a TLS transport; SS_EUSAGE for any other. */
int ss_tls_info_get(const ss_transport *t, ss_tls_info *out);

/*
 * Client side in one call: ss_dial `address`, wrap it in TLS from `ctx`
 * (a client context) and handshake, each wait bounded by `timeout`.
 * `server_name` NULL = the address's host (a name or an IP literal). On
 * success `t` owns the socket; on failure nothing is left open. err->msg
 * reads e.g. "tls://127.0.0.1:4433: certificate verify failed: certificate
 * has expired".
 */
int ss_tls_dial(ss_transport *t, const char *address, ss_tls_ctx *ctx, const char *server_name,
                double timeout, ss_error *err);

/* ========================================================================
 * stream — buffered reader and writer (Python's rfile / wfile)
 * ======================================================================== */

typedef struct ss_stream ss_stream;

/* Bounds of the stream's buffers; zero-initialise for defaults. */
typedef struct ss_stream_opts {
    size_t read_buffer;  /* 0 = 16 KiB */
    size_t write_buffer; /* 0 = 16 KiB; writes larger than it go straight out */
    double timeout;      /* > 0: seconds each wait for the peer may take;
                            0 or negative: wait forever (the default) */
    double write_timeout;/* > 0: waits for the peer to take our writes last
                            at most this long, even when `timeout` (or a
                            later ss_stream_settimeout) says forever; 0 = no
                            extra bound */
} ss_stream_opts;

/* New stream over `t` (which must outlive it). `opts` may be NULL. */
int ss_stream_new(ss_stream **out, ss_transport *t, const ss_stream_opts *o);
/* Frees the buffers; does not flush and does not close the transport. */
void ss_stream_free(ss_stream *s);
/*
 * Timeout in seconds, as a socket's: SS_TIMEOUT_NONE = wait forever, 0 =
 * never wait (-EAGAIN when the transport would block), > 0 = each wait for
 * the peer lasts at most this long, then SS_ETIMEOUT. It bounds time without
 * progress, as a socket timeout under Python's makefile(): a long read or
 * write from a peer that keeps moving does not time out.
 */
void ss_stream_settimeout(ss_stream *s, double seconds);
ss_transport *ss_stream_transport(ss_stream *s);

/* Read what is buffered, or wait for one read: up to `len` bytes, at least 1.
 * Returns bytes, 0 at end of file, SS_ETIMEOUT, or another code. */
ssize_t ss_stream_read(ss_stream *s, void *buf, size_t len);
/*
 * Read one line up to and including '\n', at most `max` bytes (the line is
 * not NUL-terminated). Returns its length; at end of file a last partial line
 * is returned as it is (no '\n'), then 0. If `max` bytes arrive without a
 * '\n' the call returns SS_ETOOLONG and those bytes stay buffered (read
 * them with ss_stream_read, or close). The read buffer grows up to `max`
 * when `max` exceeds it. `max` 0 is SS_EUSAGE.
 */
ssize_t ss_stream_readline(ss_stream *s, void *buf, size_t max);
/* Exactly `len` bytes: 0, SS_EEOF if the peer closed first, SS_ETIMEOUT, or
 * another code. *got (when not NULL) says how many bytes were stored in
 * `buf`, on success and on every failure (they are consumed). */
int ss_stream_read_exact(ss_stream *s, void *buf, size_t len, size_t *got);
/* Buffer `len` bytes for writing (writing out when the buffer fills; a write
 * at least as large as the buffer goes straight out after a flush). A write
 * that fits in the room the buffer has left is copied and returns without
 * waiting, so `buf` may be reused at once even by a coroutine handler.
 * Returns 0 or a code (-ENOMEM: a stream holds its buffers only while they
 * hold bytes); after a failure other than a flush's the write side is in
 * an unknown state (close the connection). */
int ss_stream_write(ss_stream *s, const void *buf, size_t len);
/* Write everything buffered. Returns 0, SS_ETIMEOUT or a code; bytes not
 * written stay buffered (flush again after SS_ETIMEOUT / -EAGAIN). */
int ss_stream_flush(ss_stream *s);
/* Bytes buffered for reading (readable without I/O). */
size_t ss_stream_buffered(const ss_stream *s);

/* ========================================================================
 * proxy — the PROXY protocol header (HAProxy's v1 text, v2 binary)
 * ======================================================================== */

/*
 * A load balancer (HAProxy `send-proxy` / `send-proxy-v2`, nginx
 * `proxy_protocol on`, AWS NLB ...) that forwards a connection writes one
 * header before the client's first byte, saying whom it forwards: the
 * client's address and the one it connected to. A server with
 * opts.proxy_protocol reads it before anything else and serves the
 * connection as the client's (see ss_server_opts); this parser is what it
 * uses, and works on its own for any other transport.
 *
 * Hard bounds, whatever the peer claims:
 *   v1  one line "PROXY TCP4|TCP6 SRC DST SPORT DPORT\r\n" or
 *       "PROXY UNKNOWN[ anything]\r\n", at most SS_PROXY_V1_MAX bytes with
 *       the CRLF; single spaces; addresses as inet_pton reads them (IPv4
 *       a.b.c.d for TCP4, IPv6 for TCP6); ports decimal 0..65535 without
 *       leading zeros or signs.
 *   v2  the 12-byte signature, version 2, command LOCAL or PROXY, one of the
 *       specified family/transport bytes (AF_UNSPEC, TCP or UDP over IPv4 or
 *       IPv6, unix stream or datagram); its length field is checked against
 *       the family's address block (12, 36 or 216 bytes) and against
 *       SS_PROXY_V2_MAX_LEN as soon as the fixed 16 bytes are in, before
 *       anything more is taken. TLVs after the addresses are walked with
 *       their lengths checked against the header's and skipped; a
 *       PP2_TYPE_CRC32C TLV (4 bytes, at most one) is verified.
 * The parser never reads past what it is given, never takes a byte past the
 * header, and decides "malformed" as early as a byte allows (a plain HTTP
 * request is refused at its first byte).
 */
#define SS_PROXY_V1_MAX 107
/* The most bytes a v2 header may carry after its fixed 16: HAProxy's TLVs
 * (ALPN, authority, unique id of up to 128 bytes, CRC32C, the SSL block
 * with its sub-TLVs, netns) fit several times over. Longer is malformed. */
#define SS_PROXY_V2_MAX_LEN 2048
#define SS_PROXY_MAX_HEADER (16 + SS_PROXY_V2_MAX_LEN)

/* What ss_proxy_feed returns besides SS_EPROTO. */
#define SS_PROXY_MORE 0 /* every byte taken; the header goes on */
#define SS_PROXY_DONE 1 /* the header is complete */

/* A parsed header. Plain data. */
typedef struct ss_proxy_header {
    int version;         /* 1 or 2 */
    bool local;          /* no address carried: v2 LOCAL (health checks) or
                            AF_UNSPEC, v1 UNKNOWN. The connection's own
                            endpoints stand; source/destination are empty. */
    ss_addr source;      /* the client as the proxy saw it: kind SS_ADDR_TCP
                            (v1, v2 stream over IPv4/IPv6), SS_ADDR_UDP (v2
                            datagram), SS_ADDR_UNIX or SS_ADDR_UNIXGRAM (a
                            name of all zeros is the unnamed address) */
    ss_addr destination; /* what the client connected to, same kinds */
    size_t length;       /* bytes of the header, CRLF or TLVs included */
    bool crc32c;         /* v2: a CRC32C TLV was present (and matched) */
} ss_proxy_header;

/* An incremental parser. Embed it anywhere (no allocation); about 2 KiB:
 * it keeps the header's bytes until it is complete. Fields are private. */
typedef struct ss_proxy_parser {
    unsigned char buf[SS_PROXY_MAX_HEADER];
    size_t have;  /* bytes of the header taken so far */
    size_t total; /* v2: the header's whole length once known; else 0 */
    int state;
    const char *why; /* after SS_EPROTO */
} ss_proxy_parser;

/* Ready for a new header. Any thread (the parser is the caller's). */
void ss_proxy_init(ss_proxy_parser *p);

/*
 * Feed the next `len` bytes of the connection, as they arrive, in pieces of
 * any size (one byte at a time works). Returns
 *   SS_PROXY_MORE  all `len` bytes belong to the header, which goes on;
 *                  *used = len;
 *   SS_PROXY_DONE  the header is complete and *out holds it; *used = how
 *                  many of these `len` bytes ended it: the bytes after them
 *                  are the connection's own data, not the header's;
 *   SS_EPROTO      malformed; ss_proxy_error() says why. The parser stays
 *                  failed (feeding again returns SS_EPROTO) until
 *                  ss_proxy_init(). *used = the bytes looked at.
 * Feeding a parser that returned SS_PROXY_DONE returns it again (*used 0,
 * *out filled again). `out` may be NULL.
 */
int ss_proxy_feed(ss_proxy_parser *p, const void *data, size_t len, size_t *used,
                  ss_proxy_header *out);

/* Why the header was refused ("v1: port out of range", "v2: CRC32C does
 * not match" ...): static text, never NULL ("" before any failure). */
const char *ss_proxy_error(const ss_proxy_parser *p);

/* The whole header at the start of `buf` at once: ss_proxy_feed on a fresh
 * parser, without one to keep. Same returns; *why (may be NULL) gets the
 * reason after SS_EPROTO. Any thread. */
int ss_proxy_parse(const void *buf, size_t len, ss_proxy_header *out, const char **why);

/* CRC32C (Castagnoli, RFC 3720 / 4960: what PP2_TYPE_CRC32C holds), going
 * on from `crc` (0 to start): ss_crc32c(0, "123456789", 9) == 0xE3069283.
 * Any thread. */
uint32_t ss_crc32c(uint32_t crc, const void *data, size_t len);

/* ========================================================================
 * server — the socketserver core
 * ======================================================================== */

typedef struct ss_server ss_server;
typedef struct ss_request ss_request;
struct ss_event_handler; /* the event model's callbacks: see "loop" below */

/* How requests run. A field of the options, not a type (DESIGN.md). */
typedef enum ss_model {
    SS_MODEL_SERIAL = 0, /* TCPServer: one request at a time, in serve_forever */
    SS_MODEL_THREADING,  /* ThreadingMixIn: a thread per request */
    SS_MODEL_FORKING,    /* ForkingMixIn: a child process per request */
    SS_MODEL_POOL,       /* a fixed pool of threads and a bounded queue */
    SS_MODEL_PREFORK,    /* N processes sharing the listener */
    SS_MODEL_EVENT,      /* epoll loops; callback API (see "loop") */
    SS_MODEL_COROUTINE   /* the blocking handler as a coroutine per request
                            on `workers` epoll loops (see "coroutine") */
} ss_model;

/* "serial", "threading", ... ; parse returns 0 or SS_EUSAGE. */
const char *ss_model_name(ss_model m);
int ss_model_parse(const char *name, ss_model *out);

/* The kernel interface under an event loop (docs/backends.md). AUTO takes
 * io_uring when the kernel (and any seccomp or container policy) allows it,
 * else epoll; the environment variable SS_BACKEND=epoll|io_uring overrides
 * AUTO only (as libuv's UV_USE_IO_URING does). */
typedef enum ss_backend {
    SS_BACKEND_AUTO = 0,
    SS_BACKEND_EPOLL,
    SS_BACKEND_IO_URING
} ss_backend;
/* "auto", "epoll", "io_uring"; parse returns 0 or SS_EUSAGE. */
const char *ss_backend_name(ss_backend b);
int ss_backend_parse(const char *name, ss_backend *out);

typedef enum ss_log_level {
    SS_LOG_ERROR = 0,
    SS_LOG_WARN,
    SS_LOG_INFO,  /* one line per connection: opened / closed */
    SS_LOG_DEBUG
} ss_log_level;

/*
 * One request, as Python's BaseRequestHandler sees it (self.request,
 * self.client_address, self.rfile/self.wfile). The server owns it: it is
 * valid from setup() until finish() returns. Only `user` is the handler's.
 */
struct ss_request {
    ss_server *server;
    ss_sock *sock;            /* stream: the connection; datagram: the
                                 server's socket (reply with ss_request_reply) */
    ss_addr client_address;   /* the peer (unix peers are often unnamed) */
    ss_stream *stream;        /* buffered reader + writer; NULL for datagrams */
    const unsigned char *packet; /* datagram: the packet; NULL for streams */
    size_t packet_len;
    void *user;               /* per-request data of the handler */
};

/*
 * The handler (Python's RequestHandlerClass). Any member may be NULL.
 *   setup    runs first; a non-zero return skips handle and finish and goes
 *            to handle_error (as an exception in Python's setup() would).
 *   handle   does the work; a negative return goes to handle_error. The
 *            connection is the handler's until it returns.
 *   finish   always runs after handle, even when handle failed.
 * Under the threading and pool models these run on worker threads, under
 * forking/prefork in child processes, under event (blocking handlers) on a
 * loop thread: touch shared data with that in mind.
 */
typedef struct ss_handler {
    int (*setup)(ss_request *req);
    int (*handle)(ss_request *req);
    void (*finish)(ss_request *req);
    void *data; /* handler-wide data: ss_server_handler_data() */
} ss_handler;

/*
 * Declare a stream request admitted (authenticated, past its handshake...):
 * it stops counting against opts.max_unadmitted. Idempotent; a request that
 * ends without it is released then. Any thread; a no-op without
 * max_unadmitted.
 */
void ss_request_admit(ss_request *req);

/* The address the client connected to: with opts.proxy_protocol the
 * destination its PROXY header carried (a LOCAL header carries none: then,
 * as without a header, the socket's own address, getsockname). What
 * tcpserver's TCPLOCALIP means. Returns 0 or a code. */
int ss_request_local_address(const ss_request *req, ss_addr *out);

/* Send a reply: for a datagram request, to its sender; for a stream, write
 * and flush through req->stream. Returns 0 or a code. */
int ss_request_reply(ss_request *req, const void *buf, size_t len);

/*
 * Options: Python's class variables with Python's meaning, then what
 * socketserver lacks. Call ss_server_opts_init() first: it sets Python's
 * defaults (noted on each field), then change what you need.
 */
typedef struct ss_server_opts {
    ss_model model;          /* SS_MODEL_SERIAL */
    int workers;             /* pool threads / prefork processes / event loops;
                                0 = the model's default (documented in
                                docs/models.md) */
    int pool_queue;          /* pool: pending connections beyond the busy
                                workers; 0 = 4 x workers. When full, a new
                                connection is closed at once (counted,
                                logged at WARN). */

    /* socketserver class variables */
    int request_queue_size;  /* listen() backlog; Python's default is 5, ours
                                is 128 (5 makes busy servers drop clients) */
    bool allow_reuse_address;/* false, as TCPServer */
    bool allow_reuse_port;   /* false */
    double timeout;          /* handle_request() wait; SS_TIMEOUT_NONE */
    bool daemon_threads;     /* false: server_close waits for threads */
    bool block_on_close;     /* true */
    int max_children;        /* forking: at most this many children (40) */
    size_t max_packet_size;  /* datagram servers: 8192, as Python */

    /* beyond socketserver */
    int max_conns;           /* stream: connections served at once (holding
                                a worker); 0 = no limit. At the cap ready
                                connections wait in the acceptor (bounded
                                by max_pending), never accept-and-close. */
    int max_pending;         /* stream: connections accepted but not yet
                                given a worker -- waiting for their first
                                byte, or ready and waiting for room (1024;
                                0 = no limit). Past it the oldest waiting one
                                is closed (stats.evicted), silent ones before
                                ready ones: accepting never stops, so silent
                                connections cannot lock real clients out. */
    double handshake_timeout;/* stream: a connection that sends nothing for
                                this long after accept is closed before any
                                handler sees it (10 s; <= 0 = never) */
    bool server_speaks_first;/* stream: false = a connection gets a worker
                                (thread, child, pool slot...) only once it
                                has sent its first byte, so silent peers
                                cost no worker. true = at once, for
                                protocols whose server talks first (a
                                banner); the pending stage is skipped
                                (but for the PROXY header, when
                                proxy_protocol is set). */
    bool proxy_protocol;     /* stream (tcp, unix): every connection must
                                begin with a PROXY protocol header, v1 or
                                v2 (see "proxy"), read before anything else
                                and within handshake_timeout of the accept.
                                The address it carries is the client's
                                everywhere: req->client_address, the log
                                lines, the access rules, max_per_ip and
                                verify_request (its `conn` is still the
                                socket: getpeername() on it names the
                                proxy), which therefore run once the header
                                is in, not at accept. The proxy's own
                                address is not checked by any of them: a
                                server that trusts headers must listen
                                where only its proxies can reach it (a
                                loopback or private address, a unix socket
                                with file permissions, a firewall), or
                                check the socket's peer in verify_request.
                                A LOCAL (v2) or UNKNOWN (v1) header carries
                                no address: the socket's peer stands. A
                                connection without a valid header is
                                closed before any handler sees a byte of
                                it (stats.bad_header; past the timeout,
                                stats.timed_out). The bytes after the
                                header are the handler's, untouched. Not
                                for datagram or seqpacket servers
                                (SS_EUSAGE). false: a header is ordinary
                                data. */
    int max_per_ip;          /* stream: connections at once from one client
                                address (IPv4 /32, IPv6 /64; IPv4-mapped IPv6
                                counts as IPv4), pending ones included;
                                extra ones are closed at accept. 0 = none. */
    unsigned reply_rate;     /* datagram: packets handled per second from one
                                source address (token bucket, burst = rate);
                                the rest are dropped (stats.dropped). 0 = no
                                limit (the default; the CLI sets 1000). */
    unsigned unix_mode;      /* unix path sockets: chmod to this mode between
                                bind and listen (e.g. 0600); 0 = the umask's */
    double write_timeout;    /* stream: a write that makes no progress for
                                this long fails with SS_ETIMEOUT, so a peer
                                that stops reading cannot pin a worker (60 s;
                                <= 0 = wait forever) */
    int max_unadmitted;        /* stream: connections accepted but not yet
                                admitted by their handler (ss_request_admit:
                                e.g. still in a TLS handshake) at once; 0 = no
                                limit. Past the cap the *oldest* pending
                                connection is shut down (its handler sees end
                                of file; counted in stats.evicted): accepting
                                never stops, so a flood of clients that never
                                authenticate can neither take every thread
                                nor lock real clients out -- it would have to
                                outpace their handshakes. Under serial,
                                threading and pool; under forking and prefork
                                a request counts as admitted once its process
                                starts (max_children / workers bound those).
                                Not with SS_MODEL_EVENT. */
    double idle_timeout;     /* stream: a request with no data for this long
                                is closed (the stream's timeout: the handler's
                                read returns SS_ETIMEOUT; logged at INFO, not
                                passed to handle_error); 0 = never */
    double drain_timeout;    /* server_close: how long accepted requests may
                                go on (5 s); then their connections are shut
                                down so handlers return; < 0 = forever */
    int socket_type;         /* 0 = serve whatever the address is;
                                SOCK_STREAM, SOCK_DGRAM or SOCK_SEQPACKET =
                                serve only that type (a handler written for
                                streams): an address of another kind is
                                refused with SS_EUSAGE, an inherited socket
                                of another type with -EPROTOTYPE */
    bool notify;             /* systemd readiness (sd_notify, ss_notify
                                below): when NOTIFY_SOCKET is set, send
                                READY=1 as serving starts (the first
                                serve_forever or handle_request) and
                                STOPPING=1 as server_close begins, from the
                                process that made the server only; a failed
                                send is logged at WARN. false (the CLI turns
                                it on) */

    ss_tls_ctx *tls;         /* stream: serve TLS with this server context
                                (borrowed: it must outlive the server).
                                The handshake runs when the connection gets
                                its worker (after its first byte), bounded
                                by handshake_timeout; a connection that fails
                                it is closed before setup() (stats.tls_failed,
                                logged at INFO) and one that finishes it is
                                admitted (max_unadmitted). req->stream reads
                                and writes plaintext; ss_tls_info_get on
                                ss_stream_transport(req->stream) tells the
                                peer's certificate. NULL = plain. */

    /* hooks (NULL = socketserver's default behaviour) */
    bool (*verify_request)(ss_server *srv, const ss_sock *conn,
                           const ss_addr *client); /* false: close, no handler */
    void (*handle_error)(ss_server *srv, ss_request *req, int code);
                                                   /* default: log at ERROR */
    void (*handle_timeout)(ss_server *srv);        /* handle_request timed out */
    void (*service_actions)(ss_server *srv);       /* once per serve_forever
                                                      loop turn */
    int (*server_bind)(ss_server *srv, ss_sock *sock, const ss_addr *a,
                       ss_error *err);             /* default: ss_sock_bind */
    int (*server_activate)(ss_server *srv, ss_sock *sock,
                           ss_error *err);         /* default: listen() */

    /* where the server's log lines go, called from any thread of the
       server (and its children); default ss_server_log_to_stderr: errors
       and warnings on stderr. NULL = nowhere. */
    void (*log)(void *log_data, ss_log_level level, const char *line);
    void *log_data;

    /* SS_MODEL_EVENT with the callback API; NULL = run `handler` on the
       loop (see "loop"). */
    const struct ss_event_handler *event;
    /* SS_MODEL_EVENT: the loops' kernel interface (SS_BACKEND_AUTO; a
       fallback from io_uring to epoll is logged once, at WARN). */
    ss_backend backend;
    size_t coro_stack_size;  /* SS_MODEL_COROUTINE: each request's stack, in
                                bytes (rounded up to whole pages), below which
                                a guard page turns an overflow into a clear
                                crash report; 0 = 64 KiB; 16 KiB..64 MiB */

    void *user; /* anything: ss_server_user() */
} ss_server_opts;

void ss_server_opts_init(ss_server_opts *o);

/*
 * Make a server: parse `address` (SS_ADDR_PASSIVE), open, bind
 * (server_bind) and activate (server_activate), as Python's constructor
 * with bind_and_activate=True. `handler` is copied; `opts` may be NULL
 * (defaults). On failure *out is NULL, nothing is left open, and err->msg
 * reads e.g. "cannot bind tcp://127.0.0.1:9999: Address already in use".
 * Main thread.
 *
 * `address` may also name an inherited socket (systemd:, systemd:NAME, fd:N;
 * see ss_addr_is_inherited). The server then takes that descriptor instead
 * of opening one: it must be an open, bound socket of a kind sockserve
 * serves (tcp, udp, unix, unixgram, seqpacket) and of opts.socket_type when
 * that is set; it is made close-on-exec and is never bound again;
 * server_activate (listen) runs only when a stream socket is not listening
 * yet (SO_ACCEPTCONN), and the options that act before bind
 * (allow_reuse_address, allow_reuse_port, unix_mode) do not apply: whoever
 * bound it chose them. The kind (stream or datagram) comes from the socket.
 * For systemd: the whole of LISTEN_FDS is taken as ss_listen_fds() does
 * (every passed descriptor close-on-exec, the variables unset). A unix
 * socket file is not the server's: server_close leaves it. On success the
 * server owns the descriptor (server_close closes it); on failure it is left
 * open, and when the socket itself is refused (the codes below) nothing was
 * changed, the environment included. Errors name the form and say what is
 * wrong: "'systemd:web': no socket named 'web' among the 2 passed
 * (LISTEN_FDNAMES=http:admin)", "'fd:7': descriptor 7 is not open",
 * "'systemd:': LISTEN_PID=41 is not this process (pid 42)...": codes are
 * SS_EBADADDR for a malformed form (fd:x), negative errno values for what
 * the environment got wrong (-ENOENT nothing passed or no such name, -ESRCH
 * wrong LISTEN_PID, -EINVAL malformed variables, -EBADF not open, -ENOTSOCK,
 * -EPROTOTYPE wrong type, -EAFNOSUPPORT a family sockserve cannot serve,
 * -EDESTADDRREQ not bound, -EISCONN a connected socket).
 */
int ss_server_new(ss_server **out, const char *address,
                  const ss_handler *handler, const ss_server_opts *opts,
                  ss_error *err);

/* Serve until shutdown. Returns 0 after a shutdown, or a code if the
 * server could not go on. Call from one thread only. */
int ss_server_serve_forever(ss_server *srv);

/* Serve one request: wait at most opts.timeout (SS_TIMEOUT_NONE: forever);
 * on timeout call handle_timeout and return SS_ETIMEOUT. Under threading,
 * pool and forking the request is handed to the model (as in Python); under
 * prefork it is served in the calling process. Returns SS_ESHUTDOWN if a
 * shutdown was requested meanwhile, SS_EBUSY if serve_forever is running. */
int ss_server_handle_request(ss_server *srv);

/* Ask serve_forever to stop and wait until it has returned (Python's
 * shutdown()). Takes effect at once, no poll interval. If serve_forever is
 * not running it returns at once and the request stays pending: the next
 * serve_forever returns at once (as in Python). From serve_forever's own
 * thread (a handler under serial) it does not wait. */
void ss_server_shutdown(ss_server *srv);

/* Ask serve_forever to stop and return at once. Async-signal-safe: may be
 * called from a signal handler. */
void ss_server_shutdown_nowait(ss_server *srv);

/*
 * Cut the requests this process is serving on its own threads right now
 * (serial, threading, pool): their connections are shut down, so handlers
 * see end of file or an error and return. It is what server_close does when
 * drain_timeout runs out, on demand, and the only way to end a drain under
 * serial, whose one request runs on serve_forever's own thread. Forked
 * children and event-model connections are left to server_close. Any
 * thread, not a signal handler.
 */
void ss_server_abort(ss_server *srv);

/*
 * Python's server_close(): close the listener (removing a unix socket file
 * it created), then, with block_on_close, wait for running requests, worker
 * threads and children, at most drain_timeout; past it, shut their
 * connections down and wait for them to return. Idempotent. Main thread.
 */
void ss_server_close(ss_server *srv);

/* ss_server_close() if needed, then free everything. NULL is fine.
 * Whatever still runs is finished first (wait up to drain_timeout, then shut
 * connections down / stop children), even with block_on_close false or
 * daemon_threads: requests use the server's memory. */
void ss_server_free(ss_server *srv);

/* The address really bound (port 0 resolved). Valid until free. */
const ss_addr *ss_server_address(const ss_server *srv);
/* The listening (or datagram) socket's descriptor. */
int ss_server_fileno(const ss_server *srv);
/* Give the unix socket file this server made to uid:gid (a server that
 * binds as root and then drops to another user, so it can still remove the
 * file at exit). It changes the socket it bound, never what the path names
 * now: -ENOTSOCK when the file was replaced since (a link to another file
 * would hand that file over). SS_EUSAGE when it made no file (abstract,
 * inherited, not unix); else 0 or a negative errno. */
int ss_server_chown_unix_file(ss_server *srv, uid_t uid, gid_t gid);
void *ss_server_user(const ss_server *srv);
void *ss_server_handler_data(const ss_server *srv);
const ss_server_opts *ss_server_options(const ss_server *srv);
/* Requests being served right now (any thread). */
size_t ss_server_active(const ss_server *srv);

/* Counters of this process's server (forked children count in their own
 * copy, so under forking/prefork `errors` only shows the parent's share). */
typedef struct ss_server_stats {
    unsigned long long accepted; /* connections accepted / packets received */
    unsigned long long refused;  /* verify_request said no */
    unsigned long long rejected; /* closed at once: the pool's queue was full */
    unsigned long long errors;   /* requests that went to handle_error */
    size_t active;               /* ss_server_active() */
    size_t unadmitted;           /* of those, not yet admitted (max_unadmitted) */
    unsigned long long evicted;  /* cut while pending, to make room */
    unsigned long long denied;   /* closed at accept (or packet dropped):
                                    the access rules said no */
    unsigned long long over_ip;  /* closed at accept: max_per_ip reached */
    unsigned long long timed_out;/* closed silent: handshake_timeout */
    unsigned long long dropped;  /* datagrams over reply_rate */
    unsigned long long tls_failed; /* closed: the TLS handshake failed or
                                      timed out (opts.tls) */
    unsigned long long bad_header; /* closed: no valid PROXY header
                                      (proxy_protocol) */
} ss_server_stats;
/* Any thread. */
void ss_server_stats_get(const ss_server *srv, ss_server_stats *out);

/*
 * Access rules (tcpserver's rules, HAProxy's ACLs): who may talk to a server.
 * A rule set is a list of `allow CIDR` and `deny CIDR`; a client address is
 * refused when any deny rule matches it, or when there is at least one allow
 * rule and none matches. CIDR: `127.0.0.1`, `10.0.0.0/8`, `::1`,
 * `2001:db8::/32`. An IPv4-mapped IPv6 client (::ffff:a.b.c.d) is matched as
 * the IPv4 address. Peers without an IP address (unix sockets) are never
 * refused by rules. A rule set is immutable once given to a server.
 */
typedef struct ss_access ss_access;

/* An empty rule set (allows everyone). Returns 0 or -ENOMEM. */
int ss_access_new(ss_access **out);
void ss_access_free(ss_access *a); /* NULL is fine */
/* Add one rule. SS_EUSAGE with err->msg "bad CIDR 'TEXT': why" when it does
 * not parse (prefix too long, host bits... are fine: they are masked). */
int ss_access_add(ss_access *a, bool allow, const char *cidr, ss_error *err);
/*
 * Add the rules of a file: one `allow CIDR` or `deny CIDR` a line, `#`
 * starts a comment, blank lines are fine. The whole file must read and parse
 * (at most 1 MiB): otherwise nothing is added and err->msg says
 * "FILE:LINE: what is wrong" or "cannot read FILE: why" (a read that fails
 * midway is an error, never a silent short rule set).
 */
int ss_access_load(ss_access *a, const char *path, ss_error *err);
/* Would these rules serve `peer`? Any thread. */
bool ss_access_allows(const ss_access *a, const ss_addr *peer);
/* Does `peer` match `cidr`? (Both as above; false on a bad CIDR.) */
bool ss_addr_in_cidr(const ss_addr *peer, const char *cidr);

/*
 * Give the server its rules (NULL = none): the server owns `rules` from
 * here and frees the previous set once no accept uses it. Takes effect for
 * the next connection or packet, under every model (forking: in the parent
 * that accepts; prefork: the acceptor parent, and datagram workers are
 * restarted to pick it up). Any thread but a signal handler.
 */
void ss_server_set_access(ss_server *srv, ss_access *rules);

/* Log through opts.log (no-op without one). Any thread. */
void ss_server_log(ss_server *srv, ss_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * The default opts.log: lines at SS_LOG_ERROR and SS_LOG_WARN are written to
 * stderr as "PROGRAM: error: LINE" / "PROGRAM: warning: LINE" (PROGRAM is the
 * program's short name), one write() a line so lines from threads and
 * children never interleave; INFO and DEBUG lines are dropped (give your own
 * sink to see them). `log_data` is unused. Any thread; not async-signal-safe.
 */
void ss_server_log_to_stderr(void *log_data, ss_log_level level, const char *line);

/*
 * Serve until SIGINT or SIGTERM, then drain, as a command-line server should:
 * install handlers for both signals (they only call
 * ss_server_shutdown_nowait), run ss_server_serve_forever, put the previous
 * handlers back, then ss_server_close (stop accepting; requests already
 * accepted finish, for at most opts.drain_timeout). While the drain runs the
 * signals have their previous actions again, so a second Ctrl-C ends a
 * program that kept the default one. Returns 0 after a signal (or another
 * shutdown), serve_forever's code if it failed, or SS_EBUSY if another
 * server of this process is running under this call. Free the server
 * afterwards with ss_server_free. Main thread, one server at a time.
 */
int ss_server_serve_until_signal(ss_server *srv);

/* ========================================================================
 * coroutine — blocking calls that yield (SS_MODEL_COROUTINE)
 * ======================================================================== */

/*
 * Under SS_MODEL_COROUTINE each request's setup/handle/finish runs as a
 * coroutine on one of `workers` event loops (threads; default: one per CPU
 * the process may run on). The handler is written
 * as for threading: every call of this library that would wait -- reads and
 * writes on req->stream (TLS included, handshake too), ss_sock_* calls on any
 * socket (connect, accept, send, recv ...; a blocking socket is made
 * non-blocking underneath), ss_dial and ss_tls_dial (except their name
 * lookup), ss_request_reply, ss_sleep -- gives the loop to the other
 * requests until it can go on or its timeout passes. What the library does
 * not do for the handler still blocks the whole loop: sleep(3), read(2) on a
 * blocking descriptor, getaddrinfo, a mutex held by another request of the
 * same loop (never wait for one that way: it deadlocks). A request stays on
 * its loop's thread from start to end; thread-local data is shared by the
 * loop's requests.
 */

/* Wait `seconds` (NaN: SS_EUSAGE; <= 0: return at once). In a coroutine
 * the loop serves others meanwhile; elsewhere it is nanosleep(). Returns 0.
 * Any thread. */
int ss_sleep(double seconds);

/* poll(2) that yields: in a coroutine the loop serves the other requests
 * until one of `fds` is ready or `timeout_ms` passes (-1: no limit);
 * elsewhere it is poll(). Returns how many entries have revents, 0 on
 * timeout, or a negative errno (errno is set to it too, so code written for
 * poll's -1 works unchanged). Any thread. */
int ss_poll(struct pollfd *fds, nfds_t nfds, int timeout_ms);

/* True when called from a request running under SS_MODEL_COROUTINE (a
 * coroutine), false elsewhere. Any thread. */
bool ss_in_coroutine(void);

/* ========================================================================
 * systemd — socket activation and readiness, without libsystemd
 * ======================================================================== */

/*
 * Socket activation (sd_listen_fds(3)): the service manager passes sockets
 * as descriptors SS_LISTEN_FDS_START, +1, ... and describes them in
 * LISTEN_PID (the process they are for), LISTEN_FDS (how many) and
 * LISTEN_FDNAMES (their names, ':'-separated; each entry "unknown" when the
 * variable is not set, as libsystemd says). ss_server_new("systemd:...")
 * uses this itself; call it directly to serve several passed sockets from
 * one process (take them all, then give each server "fd:N"): the first
 * taking unsets the variables, so a second finds nothing.
 */
#define SS_LISTEN_FDS_START 3
#define SS_LISTEN_FDS_MAX 65536 /* the most LISTEN_FDS accepted */
#define SS_LISTEN_NAME_MAX 256  /* a name (at most 255 bytes) and its NUL */

typedef struct ss_listen_fd {
    int fd;
    char name[SS_LISTEN_NAME_MAX];
} ss_listen_fd;

/*
 * Take the passed sockets: check that LISTEN_PID is this process and that
 * LISTEN_FDS and LISTEN_FDNAMES are well formed and every descriptor is open;
 * then make every one close-on-exec (programs the server runs must not hold
 * its listeners) and unset the three variables (so that they do not believe
 * the sockets are theirs). Stores the first `max` in `out` (`out` may be
 * NULL when max is 0) and returns how many were passed, possibly more than
 * `max` (those are taken too: close them if you do not serve them). Returns
 * 0 when LISTEN_FDS is not set (nothing changed), or a negative code with
 * err->msg saying what is wrong, nothing changed: -ESRCH (LISTEN_PID missing
 * or another process's), -EINVAL (a malformed variable), -EBADF (a
 * descriptor is not open). Main thread: getenv/unsetenv are not thread-safe.
 */
int ss_listen_fds(ss_listen_fd *out, size_t max, ss_error *err);

/*
 * Readiness notification (sd_notify(3)): send `state`, one or more
 * "VARIABLE=value" lines ("READY=1", "STOPPING=1", "STATUS=text",
 * "WATCHDOG=1" ...), as one datagram to the unix socket NOTIFY_SOCKET names
 * ("/path", or "@name" for the abstract namespace). Returns 1 when sent, 0
 * when NOTIFY_SOCKET is not set (not run by a manager that listens: nothing
 * to do), or a negative code with err->msg naming the socket: SS_EUSAGE
 * (`state` empty or over 4096 bytes), -EINVAL (NOTIFY_SOCKET neither a path
 * nor @name), SS_EUNSUPPORTED (vsock: addresses), or the send's error. Waits
 * at most 1 s for room in the socket; never raises SIGPIPE. The variable is
 * left set (children that send are ignored by systemd's NotifyAccess=main).
 * Any thread (it only reads the environment); opts.notify makes a server
 * send READY=1 and STOPPING=1 itself.
 */
int ss_notify(const char *state, ss_error *err);

/* ========================================================================
 * loop — the event engine and its callback API
 * ======================================================================== */

/*
 * One ss_loop is one epoll instance or one io_uring (ss_backend) driven by
 * one thread: every callback of a
 * loop (timers, connections, datagrams, posted work) runs on the thread that
 * called ss_loop_run(). Only ss_loop_stop(), ss_loop_wakeup() and
 * ss_loop_post() may be called from other threads.
 *
 * Under SS_MODEL_EVENT the server runs `workers` loops (default: the number
 * of cores), one per thread, sharing the listener (docs/event.md says how and
 * why). With opts.event set, connections are served by the callbacks below.
 * Without it, datagram servers run the blocking `handler` on the loop (one
 * packet, one handle() call; keep it short); a blocking stream handle()
 * would stall every connection of its loop, so the server runs it on a
 * thread per request instead (as SS_MODEL_THREADING), and
 * SS_MODEL_COROUTINE runs it on the loops (see "coroutine").
 */
typedef struct ss_loop ss_loop;
typedef struct ss_conn ss_conn;
typedef struct ss_dgram ss_dgram;
typedef struct ss_listener ss_listener;
typedef struct ss_timer ss_timer;

/* Make a loop (SS_BACKEND_AUTO, + an eventfd). Returns 0 or a code; *out
 * NULL on error. */
int ss_loop_new(ss_loop **out, ss_error *err);
/* The same on a chosen backend. SS_BACKEND_IO_URING fails (the kernel's
 * reason in err) where io_uring is refused; AUTO then falls back to epoll. */
int ss_loop_new_backend(ss_loop **out, ss_backend backend, ss_error *err);
/* The backend the loop runs on: SS_BACKEND_EPOLL or SS_BACKEND_IO_URING. */
ss_backend ss_loop_backend(const ss_loop *loop);
/* Close every connection, listener and datagram socket still on the loop
 * (their on_close runs), then free it. Not while it runs. NULL is fine. */
void ss_loop_free(ss_loop *loop);

/* Run until ss_loop_stop(). Returns 0, or a code if epoll itself failed.
 * A stop requested before the call makes it return at once (the request
 * is then used up). */
int ss_loop_run(ss_loop *loop);
/* One turn: wait at most `timeout_ms` (-1: until something happens) and run
 * what is ready. Returns 0 or a code. */
int ss_loop_run_once(ss_loop *loop, int timeout_ms);
/* Make ss_loop_run() return after the current turn. Any thread;
 * async-signal-safe (an atomic flag and a write to the loop's eventfd). */
void ss_loop_stop(ss_loop *loop);
/* Wake the loop without stopping it. Any thread; async-signal-safe. */
void ss_loop_wakeup(ss_loop *loop);
/* Run fn(loop, arg) on the loop's thread at its next turn, in order of
 * posting. Any thread (not from a signal handler: it allocates). Returns 0
 * or -ENOMEM. Work still queued when the loop is freed runs then, on the
 * freeing thread. */
int ss_loop_post(ss_loop *loop, void (*fn)(ss_loop *loop, void *arg), void *arg);
/* The loop's cached monotonic clock in ms (updated once per turn). */
int64_t ss_loop_now(const ss_loop *loop);
/* Connections open on this loop right now. Loop thread. */
size_t ss_loop_conn_count(const ss_loop *loop);
void ss_loop_set_user(ss_loop *loop, void *user);
void *ss_loop_user(const ss_loop *loop);

/*
 * Timers: embed an ss_timer anywhere (no allocation per timer beyond the
 * loop's heap slot). Timers due at the same millisecond fire in the order
 * they were started. A callback may stop or restart any timer, its own too.
 * Loop thread only.
 */
typedef void (*ss_timer_cb)(ss_timer *t);
struct ss_timer {
    ss_timer_cb cb;
    void *data; /* yours */
    /* private */
    ss_loop *loop;
    int64_t due;     /* loop clock, ms */
    uint64_t repeat; /* ms; 0 = one shot */
    uint64_t seq;    /* start order, for ties */
    size_t slot;     /* heap index; SIZE_MAX when not active */
};
void ss_timer_init(ss_timer *t, ss_timer_cb cb, void *data);
/* Fire after `timeout_ms`, then every `repeat_ms` (0: once). Restarting an
 * active timer moves it. Returns 0 or -ENOMEM. */
int ss_timer_start(ss_loop *loop, ss_timer *t, uint64_t timeout_ms, uint64_t repeat_ms);
/* Idempotent; safe on a timer that was initialised but never started. */
void ss_timer_stop(ss_timer *t);
bool ss_timer_active(const ss_timer *t);

/*
 * The callback API. All callbacks run on the connection's loop thread. Any
 * member may be NULL.
 *
 * Stream connections (tcp, unix, seqpacket):
 *   on_open   a connection was accepted (or adopted); write, set user data.
 *   on_data   bytes arrived (seqpacket: one whole message). `data` is the
 *             loop's read buffer: valid only during the call; copy what you
 *             keep. No allocation happens per read.
 *   on_eof    the peer shut down its writing side. Reading stops; writing
 *             still works. NULL means ss_conn_close(): what is queued is
 *             still sent, then the connection closes.
 *   on_drain  the output queue became empty after a write had to queue.
 *   on_close  the connection is gone; `reason` is 0 (either side closed
 *             cleanly) or a code: -ECONNRESET ..., SS_ETIMEOUT (idle
 *             timeout; under the server, also its write_timeout: output
 *             the peer took none of), SS_EBUSY (output over hard_limit), SS_ESHUTDOWN
 *             (drain deadline passed). The ss_conn is freed when it returns.
 *             Runs once for every connection on_open ran for.
 * Datagram sockets (udp, unixgram):
 *   on_packet one datagram; reply with ss_dgram_send() (batched with
 *             sendmmsg at the end of the receive batch).
 *
 * Backpressure: when more than `high_water` bytes wait in a connection's
 * output queue its reading stops, until the queue drains to `low_water`. A
 * write that would take the queue past `hard_limit` closes the connection
 * (SS_EBUSY) instead.
 */
struct ss_event_handler {
    void (*on_open)(ss_conn *c);
    void (*on_data)(ss_conn *c, const void *data, size_t len);
    void (*on_eof)(ss_conn *c);
    void (*on_drain)(ss_conn *c);
    void (*on_close)(ss_conn *c, int reason);
    void (*on_packet)(ss_dgram *d, const void *data, size_t len, const ss_addr *from);
    size_t high_water; /* 0 = 256 KiB */
    size_t low_water;  /* 0 = high_water / 4 */
    size_t hard_limit; /* 0 = 8 x high_water */
    void *data;        /* handler-wide: ss_conn_handler_data() */
};

/* Per-listener limits; zero-initialise for "none". */
typedef struct ss_listener_opts {
    int max_conns;       /* open at once on this listener; 0 = no limit. At
                            the cap the listener is not polled (clients wait
                            in the backlog). */
    double idle_timeout; /* seconds without I/O before a connection is
                            closed (SS_ETIMEOUT); 0 = never */
    bool exclusive;      /* the listener is shared by several loops: poll it
                            with EPOLLEXCLUSIVE (one loop woken per client) */
    /* Admission before any allocation: false closes the new descriptor
       before on_open (e.g. the server's verify_request). May be NULL. */
    bool (*verify)(void *arg, int fd, const ss_addr *peer);
    void *verify_arg;
    /* A verified connection that closed before on_open (its TLS handshake
       failed or timed out): undo what verify took. `why` is one line. May
       be NULL. Called with verify_arg, on the loop thread. */
    void (*unopened)(void *arg, const ss_addr *peer, int reason, const char *why);
    /* Serve TLS with this server context (borrowed; it must outlive the
       listener): the handshake runs on the loop, non-blocking, and on_open
       comes after it; on_data sees plaintext, ss_conn_write encrypts.
       NULL = plain. */
    ss_tls_ctx *tls;
    double handshake_timeout; /* TLS: seconds the handshake may take (0 = 10) */
    /* The PROXY protocol (see "proxy"): every connection must begin with a
       v1 or v2 header, read on the loop before anything else. Then
       ss_conn_peer() is the address it carries (for a LOCAL / UNKNOWN
       header, the socket's peer), `verify` runs with that address (not at
       accept), and only then on_open; the bytes after the header come to
       on_data as usual. A connection whose header is malformed, that
       closes or fails first, or whose header is not in within
       proxy_timeout seconds (0: 10; negative: no limit) is closed with no
       callback of the handler; proxy_refused (may be NULL; called with
       verify_arg) hears why: SS_EPROTO (and `why`), SS_ETIMEOUT, SS_EEOF
       (closed before a byte) or a negative errno; `peer` is the socket's.
       Stream sockets only, not seqpacket (SS_EUSAGE). */
    bool proxy_protocol;
    double proxy_timeout;
    void (*proxy_refused)(void *arg, const ss_addr *peer, int reason, const char *why);
} ss_listener_opts;

/*
 * Serve the listening stream socket `fd` on `loop` with `h` (which must
 * outlive the listener). The fd stays the caller's (it is made
 * non-blocking). Accepts in batches; at EMFILE/ENFILE the listener pauses
 * (100 ms, or until a connection of the loop closes) instead of spinning.
 * `opts` may be NULL. Loop thread (or before the loop runs).
 */
int ss_loop_listen(ss_loop *loop, int fd, const struct ss_event_handler *h,
                   const ss_listener_opts *opts, ss_listener **out, ss_error *err);
/* Stop accepting (connections stay). Frees the listener; the fd is left
 * open. Loop thread. */
void ss_listener_close(ss_listener *l);
/* Accepting stopped by max_conns or EMFILE right now? (for tests/logs) */
bool ss_listener_paused(const ss_listener *l);

/* Serve an already connected stream socket (e.g. a client's): takes the fd
 * (closed with the connection), runs on_open. Returns 0 or a code (the fd
 * is closed on failure). `out` may be NULL. Loop thread. */
int ss_loop_adopt(ss_loop *loop, int fd, const struct ss_event_handler *h, ss_conn **out);

/*
 * The same over TLS: the handshake runs on the loop, non-blocking, with
 * `tls` (a client context: this end connects, sends `server_name` as SNI
 * and verifies the certificate against it, NULL = no name, the chain only;
 * a server context: this end accepts), bounded by handshake_timeout
 * seconds (0 = 10). on_open comes once it is done; on_data sees plaintext,
 * ss_conn_write encrypts, ss_conn_tls gives the transport. A handshake that
 * fails or times out calls on_close(c, reason) with no on_open before it
 * (SS_EAUTH: verification failed; SS_ETLS, SS_ETIMEOUT, SS_ECLOSED or a
 * negative errno). `tls` must outlive the connection. Takes the fd (closed
 * on failure too). Returns 0, SS_EUSAGE (no context, not a stream socket)
 * or a code. Loop thread.
 */
int ss_loop_adopt_tls(ss_loop *loop, int fd, const struct ss_event_handler *h, ss_tls_ctx *tls,
                      const char *server_name, double handshake_timeout, ss_conn **out);

/*
 * Queue `len` bytes for the peer (copied). When nothing is queued the bytes
 * go straight to the socket; only what the kernel does not take is queued.
 * Returns 0, SS_ECLOSED (closed or closing: nothing written), or SS_EBUSY
 * (over hard_limit: the connection is being closed). Loop thread.
 */
int ss_conn_write(ss_conn *c, const void *buf, size_t len);
/* Close after the output queue has been sent. Idempotent. */
void ss_conn_close(ss_conn *c);
/* Close now, dropping what is queued; with `reset` the peer gets an RST
 * (SO_LINGER 0). on_close still runs (reason 0). Idempotent. */
void ss_conn_abort(ss_conn *c, bool reset);
/* Half-close: shut down writing once the queue has been sent; reading goes
 * on. Idempotent. */
void ss_conn_shutdown(ss_conn *c);
/* Stop / restart reading this peer (independent of backpressure). */
void ss_conn_pause(ss_conn *c);
void ss_conn_resume(ss_conn *c);
/* Bytes waiting in the output queue. */
size_t ss_conn_queued(const ss_conn *c);
/* Reading stopped by backpressure or ss_conn_pause()? */
bool ss_conn_paused(const ss_conn *c);
void ss_conn_set_user(ss_conn *c, void *user);
void *ss_conn_user(const ss_conn *c);
void *ss_conn_handler_data(const ss_conn *c);
ss_loop *ss_conn_loop(const ss_conn *c);
int ss_conn_fd(const ss_conn *c);
/* The peer's address as accept() gave it (empty unix addresses stay
 * empty). */
const ss_addr *ss_conn_peer(const ss_conn *c);
/* The TLS transport of a connection served with ss_listener_opts.tls (for
 * ss_tls_info_get), or NULL for a plain one. Loop thread. */
const ss_transport *ss_conn_tls(const ss_conn *c);

/*
 * Serve the datagram socket `fd` on `loop` with h->on_packet: received in
 * batches (recvmmsg), replies sent in batches (sendmmsg). A reply the socket
 * cannot take right now (EAGAIN) is dropped and counted, as UDP may drop.
 * `max_packet` bounds a packet (0 = 65536; longer ones are truncated). The fd
 * stays the caller's. Loop thread.
 */
int ss_loop_dgram(ss_loop *loop, int fd, const struct ss_event_handler *h, size_t max_packet,
                  ss_dgram **out, ss_error *err);
void ss_dgram_close(ss_dgram *d);
/* Queue a reply to `to` (copied). Returns 0, -EDESTADDRREQ for an unnamed
 * unixgram sender (it cannot be answered), or a code. Loop thread. */
int ss_dgram_send(ss_dgram *d, const ss_addr *to, const void *buf, size_t len);
void *ss_dgram_handler_data(const ss_dgram *d);
ss_loop *ss_dgram_loop(const ss_dgram *d);
/* Replies dropped because the socket was full. */
uint64_t ss_dgram_dropped(const ss_dgram *d);

#ifdef __cplusplus
}
#endif
#endif /* SOCKSERVE_H */
