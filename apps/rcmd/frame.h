/* SPDX-License-Identifier: MIT */
/*
 * frame.h — the rcmd wire format (docs/rcmd-protocol.md §3–§4).
 *
 * Pure functions over byte buffers: no I/O, no allocation except where a
 * prototype says so, so the blocking client, the server and the fuzzer all
 * share one parser. Every length from the wire is checked against its
 * type's bound as soon as the 5-byte header is in, before anything else.
 *
 * Any thread; distinct rcmd_reader objects in distinct threads.
 */
#ifndef RCMD_FRAME_H
#define RCMD_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define RCMD_VERSION 1
#define RCMD_MAGIC "RCMD"
#define RCMD_HEADER_LEN 5
#define RCMD_MAX_PAYLOAD 65536u
#define RCMD_FRAME_MAX (RCMD_HEADER_LEN + RCMD_MAX_PAYLOAD)
#define RCMD_MAX_ARGS 4096
#define RCMD_HELLO_TEXT_MAX 64
#define RCMD_ERROR_TEXT_MAX 1024

typedef enum rcmd_type {
    RCMD_HELLO = 0x01,
    RCMD_EXEC = 0x02,
    RCMD_STDIN = 0x03,
    RCMD_STDIN_EOF = 0x04,
    RCMD_STDOUT = 0x05,
    RCMD_STDERR = 0x06,
    RCMD_SIGNAL = 0x07,
    RCMD_EXIT = 0x08,
    RCMD_ERROR = 0x09
} rcmd_type;

/* EXEC modes. */
enum { RCMD_EXEC_ARGV = 0, RCMD_EXEC_SHELL = 1 };
/* EXIT kinds. */
enum { RCMD_EXIT_CODE = 0, RCMD_EXIT_SIGNAL = 1 };
/* ERROR codes. */
enum {
    RCMD_ERR_PROTOCOL = 1,
    RCMD_ERR_VERSION = 2,
    RCMD_ERR_DENIED = 3,
    RCMD_ERR_TIMEOUT = 4,
    RCMD_ERR_OUTPUT_LIMIT = 5,
    RCMD_ERR_INTERNAL = 6,
    RCMD_ERR_BUSY = 7
};

/* A parsed frame. `payload` points into the buffer it was parsed from. */
typedef struct rcmd_frame {
    uint8_t type;
    uint32_t len;
    const uint8_t *payload;
} rcmd_frame;

/* "HELLO", "EXEC", ... or NULL for an unknown type. */
const char *rcmd_type_name(int type);
/* True for the signals a SIGNAL frame may carry (HUP INT QUIT KILL USR1 USR2
 * TERM). */
bool rcmd_signal_allowed(int sig);

/*
 * Check a 5-byte header: known type and length within that type's bound.
 * Returns 0 (filling *type and *len) or SS_EPROTO. Needs no payload.
 */
int rcmd_header_check(const uint8_t hdr[RCMD_HEADER_LEN], uint8_t *type, uint32_t *len);

/*
 * Parse one frame from the start of `buf`. Returns the bytes it used (> 0),
 * 0 when more bytes are needed (a truncated frame), or SS_EPROTO when the
 * header or the payload's structure is invalid (a frame over its bound is
 * refused from its header alone, so `len` may be shorter than it claims).
 */
ssize_t rcmd_frame_parse(const void *buf, size_t len, rcmd_frame *out);

/* ---- payload decoders (on a frame rcmd_frame_parse accepted) ---------- */

typedef struct rcmd_hello {
    uint8_t version;
    uint8_t flags;
    char text[RCMD_HELLO_TEXT_MAX + 1]; /* NUL-terminated, may be "" */
} rcmd_hello;
int rcmd_hello_decode(const rcmd_frame *f, rcmd_hello *out);

/*
 * EXEC: *mode gets RCMD_EXEC_ARGV or RCMD_EXEC_SHELL; *argv a malloc'd,
 * NULL-terminated array whose strings live in the same block (free(*argv)
 * once); *argc its count (>= 1). Returns 0, SS_EPROTO or -ENOMEM.
 */
int rcmd_exec_decode(const rcmd_frame *f, int *mode, char ***argv, size_t *argc);

int rcmd_signal_decode(const rcmd_frame *f, int *sig);
int rcmd_exit_decode(const rcmd_frame *f, int *kind, int *value);
/* `text` gets the message, NUL-terminated (cap >= 1; cut to fit). */
int rcmd_error_decode(const rcmd_frame *f, int *code, char *text, size_t cap);

/* ---- encoders: write one whole frame into buf[0..cap) ------------------
 * Each returns the frame's length, or SS_ETOOLONG when it would not fit in
 * `cap` or exceed its bound, or SS_EUSAGE for a bad argument. */

/* Just the header: for data frames whose payload the caller puts at
 * buf + RCMD_HEADER_LEN itself (read() straight into it, no copy). */
void rcmd_header_encode(uint8_t hdr[RCMD_HEADER_LEN], uint8_t type, uint32_t len);

ssize_t rcmd_hello_encode(void *buf, size_t cap, const char *software);
ssize_t rcmd_exec_encode(void *buf, size_t cap, int mode, const char *const *argv, size_t argc);
/* STDIN, STDOUT, STDERR (len <= RCMD_MAX_PAYLOAD) and STDIN_EOF (len 0). */
ssize_t rcmd_data_encode(void *buf, size_t cap, uint8_t type, const void *data, size_t len);
ssize_t rcmd_signal_encode(void *buf, size_t cap, int sig);
ssize_t rcmd_exit_encode(void *buf, size_t cap, int kind, int value);
/* The text is cut at RCMD_ERROR_TEXT_MAX bytes (on a UTF-8 boundary). */
ssize_t rcmd_error_encode(void *buf, size_t cap, int code, const char *text);

/* ---- rcmd_reader: frames out of a byte stream ---------------------------
 * A buffer of 2 * RCMD_FRAME_MAX bytes: read into rcmd_reader_space(), say
 * how much arrived with rcmd_reader_commit(), take frames with
 * rcmd_reader_next(). A frame stays valid until the next space() call. */
typedef struct rcmd_reader {
    uint8_t *buf;
    size_t cap, start, end;
} rcmd_reader;

int rcmd_reader_init(rcmd_reader *r); /* 0 or -ENOMEM */
void rcmd_reader_free(rcmd_reader *r);
/* Where to read to, and how much fits: >= 1 whenever every whole frame
 * buffered has been taken with rcmd_reader_next(). */
uint8_t *rcmd_reader_space(rcmd_reader *r, size_t *avail);
void rcmd_reader_commit(rcmd_reader *r, size_t n);
/* 1 and *f filled, 0 when no whole frame is buffered, or SS_EPROTO. */
int rcmd_reader_next(rcmd_reader *r, rcmd_frame *f);
/* Bytes buffered but not yet returned as frames (non-zero at EOF means the
 * peer stopped in the middle of a frame: a protocol error). */
size_t rcmd_reader_pending(const rcmd_reader *r);

#endif
