/* echo.c — `sockserve echo`: arrives with issue 3. */
#include "cli.h"

static int run(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    cli_error("echo", "not built yet (issue 3)");
    return CLI_RUNTIME;
}

const cli_command cli_cmd_echo = {
    .name = "echo",
    .summary = "(not built yet)",
    .usage = "usage: sockserve echo ...\n",
    .run = run,
};
