/* connect.c — `sockserve connect`: arrives with issue 2. */
#include "cli.h"

static int run(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    cli_error("connect", "not built yet (issue 2)");
    return CLI_RUNTIME;
}

const cli_command cli_cmd_connect = {
    .name = "connect",
    .summary = "(not built yet)",
    .usage = "usage: sockserve connect ...\n",
    .run = run,
};
