/* SPDX-License-Identifier: MIT */
/* escape.c — printable, unforgeable text from untrusted bytes. */
#include "rcmd/escape.h"

#include "rcmd/frame.h"

#include <string.h>

/* Append `s` (n bytes) if it fits with room for the NUL. */
static int put(char *out, size_t cap, size_t *pos, const char *s, size_t n)
{
    if (*pos + n + 1 > cap)
        return -1;
    memcpy(out + *pos, s, n);
    *pos += n;
    out[*pos] = '\0';
    return 0;
}

static void ellipsis(char *out, size_t cap, size_t *pos)
{
    while (*pos > 0 && *pos + 4 > cap)
        (*pos)--;
    out[*pos] = '\0';
    put(out, cap, pos, "...", 3);
}

static int escape_into(char *out, size_t cap, size_t *pos, const unsigned char *b, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        char tmp[4];
        size_t n;
        if (b[i] == '\\' || b[i] == '"') {
            tmp[0] = '\\';
            tmp[1] = (char)b[i];
            n = 2;
        } else if (b[i] < 0x20 || b[i] >= 0x7f) {
            tmp[0] = '\\';
            tmp[1] = 'x';
            tmp[2] = hex[b[i] >> 4];
            tmp[3] = hex[b[i] & 15];
            n = 4;
        } else {
            tmp[0] = (char)b[i];
            n = 1;
        }
        if (put(out, cap, pos, tmp, n) < 0)
            return -1;
    }
    return 0;
}

size_t rcmd_escape(char *out, size_t cap, const void *in, size_t len)
{
    size_t pos = 0;
    if (cap == 0)
        return 0;
    out[0] = '\0';
    if (escape_into(out, cap, &pos, in, len) < 0)
        ellipsis(out, cap, &pos);
    return pos;
}

size_t rcmd_format_command(char *out, size_t cap, int mode, char *const *argv, size_t argc,
                           size_t limit)
{
    size_t pos = 0, shown = 0;
    if (cap == 0)
        return 0;
    out[0] = '\0';
    if (mode == RCMD_EXEC_SHELL && put(out, cap, &pos, "sh:", 3) < 0)
        return pos;
    for (size_t i = 0; i < argc; i++) {
        size_t l = strlen(argv[i]);
        bool cut = shown + l > limit;
        if (cut)
            l = limit - shown;
        if ((i > 0 && put(out, cap, &pos, " ", 1) < 0) || put(out, cap, &pos, "\"", 1) < 0 ||
            escape_into(out, cap, &pos, (const unsigned char *)argv[i], l) < 0 ||
            put(out, cap, &pos, "\"", 1) < 0) {
            ellipsis(out, cap, &pos);
            return pos;
        }
        shown += l;
        if (cut) {
            put(out, cap, &pos, "...", 3);
            return pos;
        }
    }
    return pos;
}
