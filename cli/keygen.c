/* SPDX-License-Identifier: MIT */
/* keygen.c — `sockserve keygen FILE`: a fresh rcmd key, mode 0600, never
 * overwriting (docs/rcmd-protocol.md §2.1). */
#include "cli.h"
#include "opts.h"

#include "rcmd/keyfile.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static int take_file(void *ctx, const char *arg)
{
    const char **path = ctx;
    if (*path != NULL)
        return cli_usage_error("keygen", "one FILE only");
    *path = arg;
    return CLI_OK;
}

static const cli_opt keygen_options[] = {
    {NULL, 0, 0, NULL, 0}, /* none but -h, --help */
};

static int run(int argc, char **argv)
{
    const char *path = NULL;
    cli_spec spec = {.command = &cli_cmd_keygen, .operand = take_file, .operand_ctx = &path};
    cli_spec_add(&spec, keygen_options, NULL);
    int tail;
    int rc = cli_parse(&spec, argc, argv, &tail, NULL);
    if (rc != CLI_PARSE_GO_ON)
        return rc;
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
