/* SPDX-License-Identifier: MIT */
/* error.c — one table gives the codes, their names and their text. */
#include "sockserve.h"

#include <errno.h>
#include <string.h>

const char *ss_version(void) { return SS_VERSION_STRING; }

const char *ss_strerror(int code)
{
    switch (code) {
    case 0:
        return "success";
#define SS__ERROR_TEXT(name, value, msg)                                       \
    case value:                                                                \
        return msg;
        SS_ERROR_TABLE(SS__ERROR_TEXT)
#undef SS__ERROR_TEXT
    default:
        break;
    }
    /* strerrordesc_np (glibc >= 2.32) gives the message without touching the
     * static buffer that strerror() may use, so any thread may call this. */
    if (code < 0 && code > -4096) {
        const char *text = strerrordesc_np(-code);
        if (text != NULL)
            return text;
    }
    return "unknown error";
}

const char *ss_err_name(int code)
{
    switch (code) {
    case 0:
        return "OK";
#define SS__ERROR_NAME(name, value, msg)                                       \
    case value:                                                                \
        return "SS_E" #name;
        SS_ERROR_TABLE(SS__ERROR_NAME)
#undef SS__ERROR_NAME
    default:
        break;
    }
    if (code < 0 && code > -4096) {
        const char *name = strerrorname_np(-code);
        if (name != NULL)
            return name;
    }
    return "UNKNOWN";
}
