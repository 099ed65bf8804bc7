/* SPDX-License-Identifier: MIT */
/* testutil.h — small helpers for the cmocka unit tests. */
#ifndef SS_TESTUTIL_H
#define SS_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "sockserve.h"

/* Number of open descriptors of this process (to check nothing leaks). */
int tu_count_fds(void);
/* A unique abstract unix name "@sockserve-test-<pid>-<n>". */
void tu_abstract_name(char *buf, size_t len);
/* A unique path in a fresh temporary directory (removed by tu_cleanup()). */
void tu_temp_path(char *buf, size_t len, const char *leaf);
/* Kill the whole test after `seconds` (a hung test must stop by itself). */
void tu_alarm(unsigned seconds);

#endif
