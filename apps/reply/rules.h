/* SPDX-License-Identifier: MIT */
/*
 * rules.h — the keyword responder's rules (`sockserve reply`), apart from any
 * socket so that the blocking handler, a later event-loop version and the
 * unit tests share one matcher.
 *
 * A rule is MATCH=REPLY, split at the first '=': MATCH may not contain '='
 * and may not be empty (use a default reply for "everything"); REPLY may be
 * empty. Matching is on bytes: the first rule (in the order given) whose
 * MATCH occurs anywhere in the message wins, else the default reply, else
 * no reply at all.
 */
#ifndef SS_APPS_REPLY_RULES_H
#define SS_APPS_REPLY_RULES_H

#include <stdbool.h>
#include <stddef.h>

typedef struct reply_rule {
    char *match;
    size_t match_len;
    char *reply;
    size_t reply_len;
} reply_rule;

typedef struct reply_rules {
    reply_rule *rules;
    size_t count, cap;
    char *def;      /* default reply, NULL = none */
    size_t def_len;
    char *stop;     /* stop word, NULL = none */
    size_t stop_len;
} reply_rules;

/* Longest rules file line we accept: a bound, not a promise. */
#define REPLY_RULE_LINE_MAX 65536

void reply_rules_init(reply_rules *r);
void reply_rules_free(reply_rules *r);

/*
 * Add one "MATCH=REPLY" text. Returns 0, or -1 with `why` (at least 64
 * bytes) saying what is wrong ("expected MATCH=REPLY", "empty MATCH"),
 * or -ENOMEM.
 */
int reply_rules_add(reply_rules *r, const char *text, char *why, size_t why_len);

/*
 * Append the rules of a file: one MATCH=REPLY a line; blank lines and lines
 * whose first non-blank character is '#' are skipped; a trailing "\r" is
 * dropped (files written on Windows). Nothing else is trimmed: spaces are
 * part of MATCH and REPLY. Returns 0, or -1 with `why` set to a one-line
 * message naming the file (and the line): "rules.txt:3: expected
 * MATCH=REPLY", "cannot open rules.txt: No such file or directory".
 */
int reply_rules_load(reply_rules *r, const char *path, char *why, size_t why_len);

/* Set the default reply / the stop word (copied). 0 or -ENOMEM. */
int reply_rules_set_default(reply_rules *r, const char *text);
int reply_rules_set_stop(reply_rules *r, const char *word);

/*
 * True when the message is the stop word, alone or followed by one "\n" or
 * "\r\n" (so `sockserve connect`, which sends lines, can stop the server).
 */
bool reply_rules_is_stop(const reply_rules *r, const void *msg, size_t len);

/*
 * The reply for a message: sets *reply and *reply_len (pointing into `r`) and returns
 * true, or returns false when no rule matches and there is no default.
 */
bool reply_rules_match(const reply_rules *r, const void *msg, size_t len,
                       const char **reply, size_t *reply_len);

/* Length of the line ending ("\n" or "\r\n") that ends msg, or 0. */
size_t reply_line_ending(const void *msg, size_t len);

#endif
