/* SPDX-License-Identifier: MIT */
/* opts.c — the table-driven getopt_long layer of every subcommand (opts.h). */
#include "opts.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

/* Most rows of all the tables of one command (echo with every server and
 * TLS flag has about 30). */
#define MAX_ROWS 128
/* getopt_long's val for row i; above every char so it never meets a short name. */
#define ROW_VAL(i) (0x1000 + (i))
#define HELP_VAL 'h'

int cli_opt_set_true(const cli_optarg *a)
{
    *(bool *)(void *)((char *)a->ctx + a->opt->offset) = true;
    return CLI_OK;
}

int cli_opt_set_string(const cli_optarg *a)
{
    *(const char **)(void *)((char *)a->ctx + a->opt->offset) = a->value;
    return CLI_OK;
}

int cli_bad_value(const cli_optarg *a, const char *want)
{
    return cli_usage_error(a->cmd, "bad value '%s' for --%s: %s", a->value ? a->value : "",
                           a->opt->name, want);
}

void cli_spec_add(cli_spec *spec, const cli_opt *opts, void *ctx)
{
    if (spec->nsets < CLI_MAX_SETS)
        spec->sets[spec->nsets++] = (cli_opt_set){opts, ctx};
}

/* The rows of every table, flattened; a row's index is its getopt val. */
typedef struct row {
    const cli_opt *opt;
    void *ctx;
} row;

typedef struct table {
    row rows[MAX_ROWS];
    int nrows;
    struct option longopts[MAX_ROWS + 2];
    char shortopts[2 + 3 * MAX_ROWS + 2];
} table;

static void build(const cli_spec *spec, table *t)
{
    memset(t, 0, sizeof *t);
    /* "+": stop at the first operand (we take it and go on ourselves, so a
     * command can stop at its own command line); ":": report a missing
     * value as ':' rather than '?' */
    size_t s = 0;
    t->shortopts[s++] = '+';
    t->shortopts[s++] = ':';
    t->shortopts[s++] = 'h';
    int n = 0;
    for (int k = 0; k < spec->nsets; k++) {
        for (const cli_opt *o = spec->sets[k].opts; o->name != NULL && n < MAX_ROWS; o++) {
            t->rows[n] = (row){o, spec->sets[k].ctx};
            t->longopts[n] = (struct option){o->name, o->value ? required_argument : no_argument,
                                             NULL, ROW_VAL(n)};
            if (o->short_name != 0) {
                t->shortopts[s++] = o->short_name;
                if (o->value)
                    t->shortopts[s++] = ':';
            }
            n++;
        }
    }
    t->longopts[n] = (struct option){"help", no_argument, NULL, HELP_VAL};
    t->nrows = n;
}

static int row_of_short(const table *t, int c)
{
    for (int i = 0; i < t->nrows; i++)
        if (c != 0 && t->rows[i].opt->short_name == c)
            return i;
    return -1;
}

/* The option as the user typed it, for messages: "--name" of a long one,
 * "-c" of a short one. */
static void typed_name(const table *t, const char *word, int val, char *out, size_t len)
{
    int i = val >= ROW_VAL(0) ? val - ROW_VAL(0) : val > 0 ? row_of_short(t, val) : -1;
    if (strncmp(word, "--", 2) == 0 && i >= 0)
        snprintf(out, len, "--%s", t->rows[i].opt->name);
    else if (strncmp(word, "--", 2) == 0)
        snprintf(out, len, "%.*s", (int)strcspn(word, "="), word);
    else
        snprintf(out, len, "-%c", val > 0 && val < 256 ? val : '?');
}

/* getopt_long takes any unambiguous prefix of a long name; we take only the
 * full name, so that no command line changes meaning when a flag is added. */
static bool typed_in_full(const char *word, const char *name)
{
    size_t n = strlen(name);
    return strncmp(word, "--", 2) != 0 ||
           (strncmp(word + 2, name, n) == 0 && (word[2 + n] == '\0' || word[2 + n] == '='));
}

static int give_operand(const cli_spec *spec, const char *arg)
{
    if (spec->operand == NULL)
        return cli_usage_error(spec->command->name, "unexpected argument '%s'", arg);
    return spec->operand(spec->operand_ctx, arg);
}

int cli_parse(const cli_spec *spec, int argc, char **argv, int *tail, bool *after_dashdash)
{
    static table t; /* one command line per process: no need for the stack */
    const char *cmd = spec->command->name;
    build(spec, &t);
    *tail = argc;
    if (after_dashdash != NULL)
        *after_dashdash = false;
    opterr = 0;
    optind = 0; /* a fresh scan (glibc and musl both reset on 0) */
    for (;;) {
        int at = optind == 0 ? 1 : optind; /* the word this call starts on */
        int longindex = -1;
        int c = getopt_long(argc, argv, t.shortopts, t.longopts, &longindex);
        if (c == -1) {
            if (optind >= argc)
                return CLI_PARSE_GO_ON;
            if (optind == at + 1 && strcmp(argv[at], "--") == 0) {
                if (after_dashdash != NULL)
                    *after_dashdash = true;
                if (spec->dashdash_ends) {
                    *tail = optind;
                    return CLI_PARSE_GO_ON;
                }
                for (int i = optind; i < argc; i++) {
                    int rc = give_operand(spec, argv[i]);
                    if (rc == CLI_OPERANDS_REST) {
                        *tail = i;
                        return CLI_PARSE_GO_ON;
                    }
                    if (rc != CLI_OK)
                        return rc;
                }
                return CLI_PARSE_GO_ON;
            }
            int rc = give_operand(spec, argv[optind]);
            if (rc == CLI_OPERANDS_REST) {
                *tail = optind;
                return CLI_PARSE_GO_ON;
            }
            if (rc != CLI_OK)
                return rc;
            optind++; /* and go on past it: options may follow operands */
            continue;
        }
        const char *word = argv[at];
        char name[128];
        if (c == '?') {
            /* optopt is 0 for an unknown long name, the row's val for a
             * long option given a value it does not take, the char for an
             * unknown short one */
            if (strncmp(word, "--", 2) == 0 && optopt != 0) {
                typed_name(&t, word, optopt, name, sizeof name);
                return cli_usage_error(cmd, "option '%s' takes no value", name);
            }
            typed_name(&t, word, strncmp(word, "--", 2) == 0 ? 0 : optopt, name, sizeof name);
            return cli_usage_error(cmd, "unknown option '%s'", name);
        }
        if (c == ':') {
            typed_name(&t, word, optopt, name, sizeof name);
            return cli_usage_error(cmd, "option '%s' needs a value", name);
        }
        if (longindex >= 0 && !typed_in_full(word, t.longopts[longindex].name)) {
            typed_name(&t, word, 0, name, sizeof name);
            return cli_usage_error(cmd, "unknown option '%s'", name);
        }
        if (c == HELP_VAL)
            return cli_help(spec->command);
        int i = c >= ROW_VAL(0) ? c - ROW_VAL(0) : row_of_short(&t, c);
        if (i < 0 || i >= t.nrows)
            return cli_usage_error(cmd, "unknown option '%s'", word); /* cannot happen */
        cli_optarg a = {.cmd = cmd, .opt = t.rows[i].opt, .ctx = t.rows[i].ctx,
                        .value = t.rows[i].opt->value ? optarg : NULL};
        int rc = t.rows[i].opt->apply(&a);
        if (rc != CLI_OK)
            return rc;
    }
}
