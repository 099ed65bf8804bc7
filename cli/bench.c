/* bench.c — `sockserve bench`: arrives with issue 4. */
#include "cli.h"

static int run(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    cli_error("bench", "not built yet (issue 4)");
    return CLI_RUNTIME;
}

const cli_command cli_cmd_bench = {
    .name = "bench",
    .summary = "(not built yet)",
    .usage = "usage: sockserve bench ...\n",
    .run = run,
};
