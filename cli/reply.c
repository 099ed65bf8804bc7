/* reply.c — `sockserve reply`: arrives with issue 3. */
#include "cli.h"

static int run(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    cli_error("reply", "not built yet (issue 3)");
    return CLI_RUNTIME;
}

const cli_command cli_cmd_reply = {
    .name = "reply",
    .summary = "(not built yet)",
    .usage = "usage: sockserve reply ...\n",
    .run = run,
};
