/* rcmd-server.c — `sockserve rcmd-server`: arrives with issue 5. */
#include "cli.h"

static int run(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    cli_error("rcmd-server", "not built yet (issue 5)");
    return CLI_RUNTIME;
}

const cli_command cli_cmd_rcmd_server = {
    .name = "rcmd-server",
    .summary = "(not built yet)",
    .usage = "usage: sockserve rcmd-server ...\n",
    .run = run,
};
