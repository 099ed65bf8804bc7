/* keygen.c — `sockserve keygen`: arrives with issue 5. */
#include "cli.h"

static int run(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    cli_error("keygen", "not built yet (issue 5)");
    return CLI_RUNTIME;
}

const cli_command cli_cmd_keygen = {
    .name = "keygen",
    .summary = "(not built yet)",
    .usage = "usage: sockserve keygen ...\n",
    .run = run,
};
