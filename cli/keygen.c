/* SPDX-License-Identifier: MIT */
/* keygen.c — `sockserve keygen FILE`: a fresh rcmd key, mode 0600, never
 * overwriting (docs/rcmd-protocol.md §2.1). */
#include "cli.h"

#include "rcmd/keyfile.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static int run(int argc, char **argv)
{
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return cli_help(&cli_cmd_keygen);
        if (strcmp(argv[i], "--") == 0) {
            if (i + 1 < argc && path == NULL)
                path = argv[++i];
            if (i + 1 < argc)
                return cli_usage_error("keygen", "one FILE only");
            break;
        }
        if (argv[i][0] == '-' && argv[i][1] != '\0')
            return cli_usage_error("keygen", "unknown option '%s'", argv[i]);
        if (path != NULL)
            return cli_usage_error("keygen", "one FILE only");
        path = argv[i];
    }
    if (path == NULL)
        return cli_usage_error("keygen", "missing FILE");
    ss_error err = {0};
    if (rcmd_key_generate(path, &err) < 0) {
        cli_error("keygen", "%s", err.msg);
        return CLI_RUNTIME;
    }
    return CLI_OK;
}

const cli_command cli_cmd_keygen = {
    .name = "keygen",
    .summary = "write a new random rcmd key file (mode 0600)",
    .usage = "usage: sockserve keygen FILE\n"
             "\n"
             "Writes a new random pre-shared key for rcmd and rcmd-server to FILE,\n"
             "created with mode 0600. An existing FILE is never overwritten (exit 1).\n"
             "Give the same file to both sides with --key FILE.\n",
    .run = run,
};
