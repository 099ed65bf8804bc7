/* SPDX-License-Identifier: MIT */
/* cli.h — what the subcommands of the sockserve command share. */
#ifndef SS_CLI_H
#define SS_CLI_H

#include "sockserve.h"

#include <stdarg.h>
#include <stdbool.h>

/* Exit codes of CLI.md. */
enum { CLI_OK = 0, CLI_RUNTIME = 1, CLI_USAGE = 2 };

/* One subcommand: name, one-line summary, usage text, entry point. */
typedef struct cli_command {
    const char *name;
    const char *summary;
    const char *usage; /* full --help text */
    const char *usage_more; /* printed after it (NULL = none): the shared
                               server flags, kept apart so no one string
                               outgrows what C compilers must accept */
    int (*run)(int argc, char **argv); /* argv[0] is the subcommand name */
} cli_command;

/* Each cli/<name>.c defines one of these. */
extern const cli_command cli_cmd_echo, cli_cmd_reply, cli_cmd_connect,
    cli_cmd_rcmd, cli_cmd_rcmd_server, cli_cmd_keygen, cli_cmd_bench, cli_cmd_exec;

const cli_command *cli_find(const char *name);

/* "sockserve: CMD: message" on stderr. */
void cli_error(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* A usage error: prints one line plus a hint, returns CLI_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Prints `cmd`'s --help text to stdout and returns CLI_OK. */
int cli_help(const cli_command *cmd);

/* Strict number parsers for flag values: the whole string must parse.
 * They return false on anything else (empty, trailing junk, out of range). */
bool cli_parse_int(const char *text, long min, long max, long *out);
bool cli_parse_seconds(const char *text, double *out); /* >= 0, finite */
bool cli_parse_size(const char *text, unsigned long long *out); /* 4096, 64K, 1M, 1G */

/* Logging levels for servers: -q lowers, -v raises. */
enum { CLI_LOG_QUIET = 0, CLI_LOG_NORMAL = 1, CLI_LOG_VERBOSE = 2 };

#endif
