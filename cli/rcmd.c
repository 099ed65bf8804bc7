/* rcmd.c — `sockserve rcmd`: arrives with issue 5. */
#include "cli.h"

static int run(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    cli_error("rcmd", "not built yet (issue 5)");
    return CLI_RUNTIME;
}

const cli_command cli_cmd_rcmd = {
    .name = "rcmd",
    .summary = "(not built yet)",
    .usage = "usage: sockserve rcmd ...\n",
    .run = run,
};
