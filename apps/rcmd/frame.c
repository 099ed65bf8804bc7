/* SPDX-License-Identifier: MIT */
/* frame.c — encode and parse rcmd frames (docs/rcmd-protocol.md §3–§4). */
#include "rcmd/frame.h"

#include "sockserve.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

/* Payload bounds per type, from the table of §4. */
typedef struct type_info {
    const char *name;
    uint32_t min, max;
} type_info;

static const type_info types[] = {
    [RCMD_HELLO] = {"HELLO", 6, 6 + RCMD_HELLO_TEXT_MAX},
    [RCMD_EXEC] = {"EXEC", 2, RCMD_MAX_PAYLOAD},
    [RCMD_STDIN] = {"STDIN", 0, RCMD_MAX_PAYLOAD},
    [RCMD_STDIN_EOF] = {"STDIN_EOF", 0, 0},
    [RCMD_STDOUT] = {"STDOUT", 0, RCMD_MAX_PAYLOAD},
    [RCMD_STDERR] = {"STDERR", 0, RCMD_MAX_PAYLOAD},
    [RCMD_SIGNAL] = {"SIGNAL", 1, 1},
    [RCMD_EXIT] = {"EXIT", 2, 2},
    [RCMD_ERROR] = {"ERROR", 2, 2 + RCMD_ERROR_TEXT_MAX},
};

static const type_info *info_of(int type)
{
    if (type < RCMD_HELLO || type > RCMD_ERROR)
        return NULL;
    return &types[type];
}

const char *rcmd_type_name(int type)
{
    const type_info *ti = info_of(type);
    return ti ? ti->name : NULL;
}

bool rcmd_signal_allowed(int sig)
{
    switch (sig) {
    case SIGHUP:
    case SIGINT:
    case SIGQUIT:
    case SIGKILL:
    case SIGUSR1:
    case SIGUSR2:
    case SIGTERM: return true;
    default: return false;
    }
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

int rcmd_header_check(const uint8_t hdr[RCMD_HEADER_LEN], uint8_t *type, uint32_t *len)
{
    const type_info *ti = info_of(hdr[0]);
    uint32_t n = get_u32(hdr + 1);
    if (ti == NULL || n < ti->min || n > ti->max)
        return SS_EPROTO;
    *type = hdr[0];
    *len = n;
    return 0;
}

/* EXEC payload: mode, then NUL-terminated strings filling it exactly.
 * Counts the strings into *argc when valid. */
static int check_exec(const uint8_t *p, uint32_t len, size_t *argc)
{
    uint8_t mode = p[0];
    if (mode != RCMD_EXEC_ARGV && mode != RCMD_EXEC_SHELL)
        return SS_EPROTO;
    if (p[len - 1] != 0) /* the last string must be terminated */
        return SS_EPROTO;
    if (p[1] == 0) /* argv[0] / the shell line is never empty */
        return SS_EPROTO;
    size_t n = 0;
    for (uint32_t i = 1; i < len; i++)
        if (p[i] == 0)
            n++;
    if (n > RCMD_MAX_ARGS || (mode == RCMD_EXEC_SHELL && n != 1))
        return SS_EPROTO;
    if (argc)
        *argc = n;
    return 0;
}

static int check_payload(uint8_t type, const uint8_t *p, uint32_t len)
{
    switch (type) {
    case RCMD_HELLO:
        if (memcmp(p, RCMD_MAGIC, 4) != 0)
            return SS_EPROTO;
        /* the text is for humans: no NUL inside so it prints as it is */
        if (memchr(p + 6, 0, len - 6) != NULL)
            return SS_EPROTO;
        return 0;
    case RCMD_EXEC: return check_exec(p, len, NULL);
    case RCMD_SIGNAL: return rcmd_signal_allowed(p[0]) ? 0 : SS_EPROTO;
    case RCMD_EXIT:
        if (p[0] == RCMD_EXIT_CODE)
            return 0;
        if (p[0] == RCMD_EXIT_SIGNAL && p[1] >= 1 && p[1] <= 127)
            return 0;
        return SS_EPROTO;
    case RCMD_ERROR:
        if ((p[0] == 0 && p[1] == 0) || memchr(p + 2, 0, len - 2) != NULL)
            return SS_EPROTO;
        return 0;
    default: return 0; /* data frames: any bytes */
    }
}

ssize_t rcmd_frame_parse(const void *buf, size_t len, rcmd_frame *out)
{
    const uint8_t *b = buf;
    if (len < RCMD_HEADER_LEN)
        return 0;
    uint8_t type;
    uint32_t n;
    if (rcmd_header_check(b, &type, &n) < 0)
        return SS_EPROTO;
    if (len - RCMD_HEADER_LEN < n)
        return 0;
    const uint8_t *p = b + RCMD_HEADER_LEN;
    int rc = check_payload(type, p, n);
    if (rc < 0)
        return rc;
    out->type = type;
    out->len = n;
    out->payload = p;
    return (ssize_t)(RCMD_HEADER_LEN + n);
}

/* ---- decoders ------------------------------------------------------------ */

static int check_frame(const rcmd_frame *f, uint8_t type)
{
    const type_info *ti = info_of(f->type);
    if (f->type != type || ti == NULL || f->len < ti->min || f->len > ti->max)
        return SS_EPROTO;
    return check_payload(f->type, f->payload, f->len);
}

int rcmd_hello_decode(const rcmd_frame *f, rcmd_hello *out)
{
    int rc = check_frame(f, RCMD_HELLO);
    if (rc < 0)
        return rc;
    out->version = f->payload[4];
    out->flags = f->payload[5];
    memcpy(out->text, f->payload + 6, f->len - 6);
    out->text[f->len - 6] = '\0';
    return 0;
}

int rcmd_exec_decode(const rcmd_frame *f, int *mode, char ***argv, size_t *argc)
{
    if (f->type != RCMD_EXEC || f->len < 2 || f->len > RCMD_MAX_PAYLOAD)
        return SS_EPROTO;
    size_t n;
    int rc = check_exec(f->payload, f->len, &n);
    if (rc < 0)
        return rc;
    /* One block: the pointer array, then a copy of the strings. */
    size_t ptrs = (n + 1) * sizeof(char *);
    char **v = malloc(ptrs + f->len - 1);
    if (v == NULL)
        return -ENOMEM;
    char *s = (char *)v + ptrs;
    memcpy(s, f->payload + 1, f->len - 1);
    size_t i = 0;
    for (char *p = s, *end = s + f->len - 1; p < end; p += strlen(p) + 1)
        v[i++] = p;
    v[i] = NULL;
    *mode = f->payload[0];
    *argv = v;
    *argc = n;
    return 0;
}

int rcmd_signal_decode(const rcmd_frame *f, int *sig)
{
    int rc = check_frame(f, RCMD_SIGNAL);
    if (rc == 0)
        *sig = f->payload[0];
    return rc;
}

int rcmd_exit_decode(const rcmd_frame *f, int *kind, int *value)
{
    int rc = check_frame(f, RCMD_EXIT);
    if (rc == 0) {
        *kind = f->payload[0];
        *value = f->payload[1];
    }
    return rc;
}

int rcmd_error_decode(const rcmd_frame *f, int *code, char *text, size_t cap)
{
    int rc = check_frame(f, RCMD_ERROR);
    if (rc < 0)
        return rc;
    *code = f->payload[0] << 8 | f->payload[1];
    if (cap > 0) {
        size_t n = f->len - 2;
        if (n > cap - 1)
            n = cap - 1;
        memcpy(text, f->payload + 2, n);
        text[n] = '\0';
    }
    return 0;
}

/* ---- encoders ------------------------------------------------------------ */

void rcmd_header_encode(uint8_t hdr[RCMD_HEADER_LEN], uint8_t type, uint32_t len)
{
    hdr[0] = type;
    put_u32(hdr + 1, len);
}

/* Header for a payload of `len` bytes into buf[0..cap), or SS_ETOOLONG. */
static ssize_t begin(void *buf, size_t cap, uint8_t type, size_t len)
{
    const type_info *ti = info_of(type);
    if (ti == NULL || len < ti->min)
        return SS_EUSAGE;
    if (len > ti->max || cap < RCMD_HEADER_LEN + len)
        return SS_ETOOLONG;
    rcmd_header_encode(buf, type, (uint32_t)len);
    return (ssize_t)(RCMD_HEADER_LEN + len);
}

ssize_t rcmd_hello_encode(void *buf, size_t cap, const char *software)
{
    size_t tl = software ? strnlen(software, RCMD_HELLO_TEXT_MAX) : 0;
    ssize_t n = begin(buf, cap, RCMD_HELLO, 6 + tl);
    if (n < 0)
        return n;
    uint8_t *p = (uint8_t *)buf + RCMD_HEADER_LEN;
    memcpy(p, RCMD_MAGIC, 4);
    p[4] = RCMD_VERSION;
    p[5] = 0;
    if (tl)
        memcpy(p + 6, software, tl);
    return n;
}

ssize_t rcmd_exec_encode(void *buf, size_t cap, int mode, const char *const *argv, size_t argc)
{
    if ((mode != RCMD_EXEC_ARGV && mode != RCMD_EXEC_SHELL) || argc == 0 ||
        (mode == RCMD_EXEC_SHELL && argc != 1) || argv[0][0] == '\0')
        return SS_EUSAGE;
    if (argc > RCMD_MAX_ARGS)
        return SS_ETOOLONG;
    size_t len = 1;
    for (size_t i = 0; i < argc; i++) {
        len += strlen(argv[i]) + 1;
        if (len > RCMD_MAX_PAYLOAD)
            return SS_ETOOLONG;
    }
    ssize_t n = begin(buf, cap, RCMD_EXEC, len);
    if (n < 0)
        return n;
    uint8_t *p = (uint8_t *)buf + RCMD_HEADER_LEN;
    *p++ = (uint8_t)mode;
    for (size_t i = 0; i < argc; i++) {
        size_t l = strlen(argv[i]) + 1;
        memcpy(p, argv[i], l);
        p += l;
    }
    return n;
}

ssize_t rcmd_data_encode(void *buf, size_t cap, uint8_t type, const void *data, size_t len)
{
    if (type != RCMD_STDIN && type != RCMD_STDOUT && type != RCMD_STDERR && type != RCMD_STDIN_EOF)
        return SS_EUSAGE;
    ssize_t n = begin(buf, cap, type, len);
    if (n >= 0 && len > 0)
        memcpy((uint8_t *)buf + RCMD_HEADER_LEN, data, len);
    return n;
}

ssize_t rcmd_signal_encode(void *buf, size_t cap, int sig)
{
    if (!rcmd_signal_allowed(sig))
        return SS_EUSAGE;
    ssize_t n = begin(buf, cap, RCMD_SIGNAL, 1);
    if (n >= 0)
        ((uint8_t *)buf)[RCMD_HEADER_LEN] = (uint8_t)sig;
    return n;
}

ssize_t rcmd_exit_encode(void *buf, size_t cap, int kind, int value)
{
    if (!(kind == RCMD_EXIT_CODE && value >= 0 && value <= 255) &&
        !(kind == RCMD_EXIT_SIGNAL && value >= 1 && value <= 127))
        return SS_EUSAGE;
    ssize_t n = begin(buf, cap, RCMD_EXIT, 2);
    if (n >= 0) {
        ((uint8_t *)buf)[RCMD_HEADER_LEN] = (uint8_t)kind;
        ((uint8_t *)buf)[RCMD_HEADER_LEN + 1] = (uint8_t)value;
    }
    return n;
}

ssize_t rcmd_error_encode(void *buf, size_t cap, int code, const char *text)
{
    if (code <= 0 || code > 0xffff)
        return SS_EUSAGE;
    size_t tl = text ? strlen(text) : 0;
    if (tl > RCMD_ERROR_TEXT_MAX) {
        tl = RCMD_ERROR_TEXT_MAX;
        /* do not cut a UTF-8 sequence in two: back off continuation bytes */
        while (tl > 0 && ((unsigned char)text[tl] & 0xC0) == 0x80)
            tl--;
    }
    ssize_t n = begin(buf, cap, RCMD_ERROR, 2 + tl);
    if (n < 0)
        return n;
    uint8_t *p = (uint8_t *)buf + RCMD_HEADER_LEN;
    p[0] = (uint8_t)(code >> 8);
    p[1] = (uint8_t)code;
    if (tl)
        memcpy(p + 2, text, tl);
    return n;
}

/* ---- reader -------------------------------------------------------------- */

int rcmd_reader_init(rcmd_reader *r)
{
    r->cap = 2 * RCMD_FRAME_MAX;
    r->start = r->end = 0;
    r->buf = malloc(r->cap);
    return r->buf ? 0 : -ENOMEM;
}

void rcmd_reader_free(rcmd_reader *r)
{
    free(r->buf);
    r->buf = NULL;
    r->cap = r->start = r->end = 0;
}

uint8_t *rcmd_reader_space(rcmd_reader *r, size_t *avail)
{
    /* Slide the unread bytes down once a whole frame no longer fits behind
     * them; the buffer is twice the largest frame, so this is rare. */
    if (r->start > 0 && r->cap - r->start < RCMD_FRAME_MAX) {
        memmove(r->buf, r->buf + r->start, r->end - r->start);
        r->end -= r->start;
        r->start = 0;
    }
    *avail = r->cap - r->end;
    return r->buf + r->end;
}

void rcmd_reader_commit(rcmd_reader *r, size_t n)
{
    r->end += n;
}

int rcmd_reader_next(rcmd_reader *r, rcmd_frame *f)
{
    ssize_t n = rcmd_frame_parse(r->buf + r->start, r->end - r->start, f);
    if (n <= 0)
        return (int)n;
    r->start += (size_t)n;
    if (r->start == r->end)
        r->start = r->end = 0;
    return 1;
}

size_t rcmd_reader_pending(const rcmd_reader *r)
{
    return r->end - r->start;
}
