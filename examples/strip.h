/* SPDX-License-Identifier: MIT */
/* strip.h — Python's str.strip() for the examples: the tutorial's programs
 * strip every line they read and every message they get. */
#ifndef EXAMPLES_STRIP_H
#define EXAMPLES_STRIP_H

#include <ctype.h>
#include <string.h>

/* Drop white space at both ends of `s`, in place; returns the new start. */
static inline char *strip(char *s)
{
    size_t len = strlen(s);
    while (len > 0 && isspace((unsigned char)s[len - 1]))
        s[--len] = '\0';
    while (isspace((unsigned char)*s))
        s++;
    return s;
}

#endif
