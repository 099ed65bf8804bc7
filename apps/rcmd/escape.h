/* SPDX-License-Identifier: MIT */
/*
 * escape.h — make untrusted bytes safe to print (logs, terminals).
 *
 * Commands and error texts come from the network: printed raw, a control
 * character could forge a log line or drive the terminal. These helpers
 * write `\xHH` for every byte below 0x20, 0x7f and above, and `\\`, `\"`.
 * Any thread.
 */
#ifndef RCMD_ESCAPE_H
#define RCMD_ESCAPE_H

#include <stddef.h>

/*
 * Escape `len` bytes of `in` into `out` (always NUL-terminated when cap > 0).
 * Stops before an escape that would not fit, and appends "..." when it had to
 * cut (when room allows). Returns the length written.
 */
size_t rcmd_escape(char *out, size_t cap, const void *in, size_t len);

/*
 * The audit form of a command (docs/rcmd-protocol.md §8): argv mode as
 * `"ls" "-l"`, shell mode as `sh:"LINE"`, at most `limit` bytes of command
 * shown. Returns the length written.
 */
size_t rcmd_format_command(char *out, size_t cap, int mode, char *const *argv, size_t argc,
                           size_t limit);

#endif
