/* SPDX-License-Identifier: MIT */
/* common.c — error printing and strict flag-value parsing for every command. */
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void cli_error(const char *cmd, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fprintf(stderr, "sockserve: %s%s%s\n", cmd ? cmd : "", cmd ? ": " : "", line);
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fprintf(stderr, "sockserve: %s: %s (see 'sockserve %s --help')\n", cmd, line,
            cmd);
    return CLI_USAGE;
}

int cli_help(const cli_command *cmd)
{
    fputs(cmd->usage, stdout);
    if (cmd->usage_more != NULL)
        fputs(cmd->usage_more, stdout);
    return CLI_OK;
}

bool cli_parse_int(const char *text, long min, long max, long *out)
{
    if (text == NULL || *text == '\0')
        return false;
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return false;
    *out = v;
    return true;
}

bool cli_parse_seconds(const char *text, double *out)
{
    if (text == NULL || *text == '\0')
        return false;
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (errno != 0 || *end != '\0' || !isfinite(v) || v < 0 || v > 1e9)
        return false;
    *out = v;
    return true;
}

bool cli_parse_size(const char *text, unsigned long long *out)
{
    if (text == NULL || *text == '\0' || *text == '-')
        return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno != 0 || end == text)
        return false;
    unsigned long long mult = 1;
    if (*end != '\0') {
        switch (*end) {
        case 'k': case 'K': mult = 1ULL << 10; break;
        case 'm': case 'M': mult = 1ULL << 20; break;
        case 'g': case 'G': mult = 1ULL << 30; break;
        default: return false;
        }
        if (end[1] != '\0' && !((end[1] == 'i' || end[1] == 'B') &&
                                (end[2] == '\0' || (end[1] == 'i' && end[2] == 'B' && end[3] == '\0'))))
            return false;
    }
    if (v > ~0ULL / mult)
        return false;
    *out = v * mult;
    return true;
}
