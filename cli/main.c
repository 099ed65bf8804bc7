/* SPDX-License-Identifier: MIT */
/* main.c — `sockserve COMMAND ...`: finds the subcommand and runs it. */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const cli_command *const commands[] = {
    &cli_cmd_echo,  &cli_cmd_reply,  &cli_cmd_connect, &cli_cmd_rcmd_server,
    &cli_cmd_rcmd,  &cli_cmd_keygen, &cli_cmd_bench,   &cli_cmd_exec,
};

const cli_command *cli_find(const char *name)
{
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(commands[i]->name, name) == 0)
            return commands[i];
    return NULL;
}

static void print_overview(FILE *out)
{
    fprintf(out, "usage: sockserve COMMAND [OPTIONS] [ARGS]\n\n"
                 "Python's socket + socketserver, in C.\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-12s %s\n", commands[i]->name, commands[i]->summary);
    fprintf(out, "  %-12s %s\n", "help", "help [COMMAND]: describe a command");
    fprintf(out, "\n'sockserve help COMMAND' or 'sockserve COMMAND --help' "
                 "for details; --version for the version.\n");
}

/* Started with stdin, stdout or stderr closed (`<&-`), the first socket we
 * open would become fd 0, 1 or 2 and be read or written as the terminal;
 * /dev/null takes those places first, as ssh does. */
static void fill_standard_fds(void)
{
    for (int fd = 0; fd <= 2; fd++) {
        if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF)
            continue;
        int n = open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY);
        if (n >= 0 && n != fd) { /* a lower slot was free first: cannot happen in order */
            dup2(n, fd);
            close(n);
        }
    }
}

int main(int argc, char **argv)
{
    fill_standard_fds();
    /* A peer that goes away must never kill us: every write path also uses
     * MSG_NOSIGNAL, this covers pipes (stdout to a closed reader). */
    signal(SIGPIPE, SIG_IGN);

    if (argc < 2) {
        print_overview(stderr);
        return CLI_USAGE;
    }
    const char *name = argv[1];
    if (strcmp(name, "--version") == 0 || strcmp(name, "-V") == 0) {
        printf("sockserve %s\n", ss_version());
        return CLI_OK;
    }
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0) {
        print_overview(stdout);
        return CLI_OK;
    }
    if (strcmp(name, "help") == 0) {
        if (argc < 3 || strcmp(argv[2], "--help") == 0 || strcmp(argv[2], "-h") == 0) {
            print_overview(stdout);
            return CLI_OK;
        }
        const cli_command *c = cli_find(argv[2]);
        if (c == NULL)
            return cli_usage_error("help", "unknown command '%s'", argv[2]);
        return cli_help(c);
    }
    const cli_command *c = cli_find(name);
    if (c == NULL && name[0] == '-') {
        /* worded as the subcommands word theirs (opts.c) */
        fprintf(stderr, "sockserve: unknown option '%.*s' (see 'sockserve --help')\n",
                (int)strcspn(name, "="), name);
        return CLI_USAGE;
    }
    if (c == NULL) {
        fprintf(stderr, "sockserve: unknown command '%s' (try 'sockserve help')\n",
                name);
        return CLI_USAGE;
    }
    return c->run(argc - 1, argv + 1);
}
