/* SPDX-License-Identifier: MIT */
/*
 * opts.h — the one command-line parser of every subcommand, a table-driven
 * layer on getopt_long.
 *
 * Each subcommand declares its options as a table of rows; the options every
 * server shares are one more table (server_opts.c) that each server
 * subcommand adds to its own. What the user may type is therefore the same
 * everywhere:
 *
 *   -q -v   -qv   -vv          short flags, bundled or not
 *   --model event  --model=event
 *   --                         ends the options (exec: ADDRESS -- PROG ARGS)
 *   -h, --help                 the command's help text, exit 0
 *
 * Options may come before, between or after the operands (GNU order); a
 * command that takes a command line of its own (rcmd) stops at it. Long names
 * must be typed in full: an abbreviation would change meaning the day a
 * longer flag is added. Every mistake is one line and exit 2:
 *
 *   sockserve: echo: unknown option '--foo' (see 'sockserve echo --help')
 *   sockserve: echo: option '--prefix' needs a value (see 'sockserve echo --help')
 *   sockserve: echo: option '--once' takes no value (see 'sockserve echo --help')
 *   sockserve: echo: bad value 'x' for --workers: expected ... (see ...)
 *
 * Adding a flag is adding a row (and its line in the help text and in
 * man/sockserve.1):
 *
 *   static int set_backend(const cli_optarg *a) { ... return CLI_OK; }
 *   ...
 *   {"backend", 0, CLI_VALUE, set_backend},
 */
#ifndef SS_CLI_OPTS_H
#define SS_CLI_OPTS_H

#include "cli.h"

#include <stddef.h>

typedef struct cli_opt cli_opt;

/* What an option's apply() is given. */
typedef struct cli_optarg {
    const char *cmd;    /* the subcommand, for messages ("echo") */
    const cli_opt *opt; /* the row */
    void *ctx;          /* the context of the row's table */
    const char *value;  /* the value; NULL for an option that takes none */
} cli_optarg;

enum { CLI_NO_VALUE = 0, CLI_VALUE = 1 };

struct cli_opt {
    const char *name; /* long name without the dashes ("max-conns"); NULL ends a table */
    char short_name;  /* 'q', or 0: long name only */
    int value;        /* CLI_NO_VALUE or CLI_VALUE */
    /* Applies the option: CLI_OK, or an exit code after printing one line
     * (cli_bad_value() for a value that does not parse). */
    int (*apply)(const cli_optarg *a);
    size_t offset; /* for the generic setters below: where in ctx */
};

/* Generic apply()s for rows that only store: true into the bool at
 * ctx + offset; the value into the const char * at ctx + offset. */
int cli_opt_set_true(const cli_optarg *a);
int cli_opt_set_string(const cli_optarg *a);

/* "bad value 'V' for --NAME: WANT" as a usage error; returns CLI_USAGE. */
int cli_bad_value(const cli_optarg *a, const char *want);

/* One table and the context its rows apply to. */
typedef struct cli_opt_set {
    const cli_opt *opts;
    void *ctx;
} cli_opt_set;

#define CLI_MAX_SETS 4

/* What operand() may return besides CLI_OK and an exit code: this word and
 * every later one are not ours (rcmd's COMMAND); parsing stops before it. */
#define CLI_OPERANDS_REST (-2)
/* What cli_parse() returns when the caller should go on. */
#define CLI_PARSE_GO_ON (-1)

typedef struct cli_spec {
    const cli_command *command; /* its name for messages, its text for --help */
    cli_opt_set sets[CLI_MAX_SETS];
    int nsets;
    /* Each operand, in order: CLI_OK, CLI_OPERANDS_REST or an exit code
     * (after one line). NULL: the command takes none. */
    int (*operand)(void *ctx, const char *arg);
    void *operand_ctx;
    /* true: `--` ends parsing and what follows is the caller's (the tail:
     * exec's PROG, rcmd's COMMAND); false: what follows `--` are operands. */
    bool dashdash_ends;
} cli_spec;

/* Adds a table to the spec (at most CLI_MAX_SETS). */
void cli_spec_add(cli_spec *spec, const cli_opt *opts, void *ctx);

/*
 * Parses argv[1..argc) (argv[0] is the subcommand's name). Returns
 * CLI_PARSE_GO_ON with *tail set to the first word not parsed (argc when
 * none is left: see dashdash_ends and CLI_OPERANDS_REST), or an exit code
 * to return at once: CLI_OK after --help, CLI_USAGE after one line.
 * *after_dashdash (may be NULL) tells whether a `--` came before the tail.
 */
int cli_parse(const cli_spec *spec, int argc, char **argv, int *tail, bool *after_dashdash);

#endif
