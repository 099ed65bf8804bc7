/* SPDX-License-Identifier: MIT */
/* rules.c — parsing and matching the keyword responder's MATCH=REPLY rules. */
#include "reply/rules.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void reply_rules_init(reply_rules *r)
{
    memset(r, 0, sizeof *r);
}

void reply_rules_free(reply_rules *r)
{
    for (size_t i = 0; i < r->count; i++) {
        free(r->rules[i].match);
        free(r->rules[i].reply);
    }
    free(r->rules);
    free(r->def);
    free(r->stop);
    reply_rules_init(r);
}

static char *dup_bytes(const char *p, size_t len)
{
    char *s = malloc(len + 1);
    if (s != NULL) {
        memcpy(s, p, len);
        s[len] = '\0';
    }
    return s;
}

/* Add MATCH=REPLY given as `len` bytes (no NUL needed, no newline). */
static int add_bytes(reply_rules *r, const char *text, size_t len, char *why, size_t why_len)
{
    const char *eq = memchr(text, '=', len);
    if (eq == NULL) {
        snprintf(why, why_len, "expected MATCH=REPLY");
        return -1;
    }
    if (eq == text) {
        snprintf(why, why_len, "empty MATCH in MATCH=REPLY (use --default for every message)");
        return -1;
    }
    if (r->count == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 8;
        reply_rule *grown = realloc(r->rules, cap * sizeof *grown);
        if (grown == NULL)
            return -ENOMEM;
        r->rules = grown;
        r->cap = cap;
    }
    reply_rule *rule = &r->rules[r->count];
    rule->match_len = (size_t)(eq - text);
    rule->reply_len = len - rule->match_len - 1;
    rule->match = dup_bytes(text, rule->match_len);
    rule->reply = dup_bytes(eq + 1, rule->reply_len);
    if (rule->match == NULL || rule->reply == NULL) {
        free(rule->match);
        free(rule->reply);
        return -ENOMEM;
    }
    r->count++;
    return 0;
}

int reply_rules_add(reply_rules *r, const char *text, char *why, size_t why_len)
{
    return add_bytes(r, text, strlen(text), why, why_len);
}

static bool skippable(const char *line, size_t len)
{
    size_t i = 0;
    while (i < len && (line[i] == ' ' || line[i] == '\t'))
        i++;
    return i == len || line[i] == '#';
}

/*
 * One line into `buf` (room for `max` bytes): its length with the '\n', 0 at
 * end of file, -1 after a read error, -2 when it is longer than `max` bytes.
 * Reading stops at the bound: getline() would first take the whole line, so
 * a file without a newline (/dev/zero) took all the memory there was
 * before the length was ever checked.
 */
static ssize_t read_line(FILE *f, char *buf, size_t max)
{
    size_t n = 0;
    int ch = 0;
    while (n < max && (ch = getc(f)) != EOF) {
        buf[n++] = (char)ch;
        if (ch == '\n')
            return (ssize_t)n;
    }
    if (n == max) { /* full: fine only if the file ends right here */
        ch = getc(f);
        if (ch == EOF)
            return ferror(f) ? -1 : (ssize_t)n;
        return -2;
    }
    if (ferror(f))
        return -1;
    return (ssize_t)n;
}

int reply_rules_load(reply_rules *r, const char *path, char *why, size_t why_len)
{
    FILE *f = fopen(path, "re");
    if (f == NULL) {
        snprintf(why, why_len, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    char *line = malloc(REPLY_RULE_LINE_MAX);
    if (line == NULL) {
        snprintf(why, why_len, "cannot read %s: %s", path, strerror(ENOMEM));
        fclose(f);
        return -1;
    }
    ssize_t n;
    unsigned long lineno = 0;
    int rc = 0;
    char detail[128];
    while ((n = read_line(f, line, REPLY_RULE_LINE_MAX)) != 0) {
        lineno++;
        if (n == -1)
            break; /* said below */
        if (n == -2) {
            snprintf(why, why_len, "%s:%lu: line longer than %d bytes", path, lineno,
                     REPLY_RULE_LINE_MAX);
            rc = -1;
            break;
        }
        size_t len = (size_t)n;
        if (len > 0 && line[len - 1] == '\n')
            len--;
        if (len > 0 && line[len - 1] == '\r')
            len--;
        if (memchr(line, '\0', len) != NULL) {
            snprintf(why, why_len, "%s:%lu: NUL byte in rule", path, lineno);
            rc = -1;
            break;
        }
        if (skippable(line, len))
            continue;
        rc = add_bytes(r, line, len, detail, sizeof detail);
        if (rc == -ENOMEM) {
            snprintf(why, why_len, "%s:%lu: out of memory", path, lineno);
            rc = -1;
            break;
        }
        if (rc < 0) {
            snprintf(why, why_len, "%s:%lu: %s", path, lineno, detail);
            break;
        }
    }
    /* a read that fails midway ends the loop too: only a real end of file
     * is the end of the rules (never start with a part of them) */
    if (rc == 0 && (ferror(f) || !feof(f))) {
        snprintf(why, why_len, "cannot read %s: %s", path,
                 errno != 0 ? strerror(errno) : "read failed");
        rc = -1;
    }
    free(line);
    fclose(f);
    return rc;
}

static int set_text(char **dst, size_t *dst_len, const char *text)
{
    size_t len = strlen(text);
    char *copy = dup_bytes(text, len);
    if (copy == NULL)
        return -ENOMEM;
    free(*dst);
    *dst = copy;
    *dst_len = len;
    return 0;
}

int reply_rules_set_default(reply_rules *r, const char *text)
{
    return set_text(&r->def, &r->def_len, text);
}

int reply_rules_set_stop(reply_rules *r, const char *word)
{
    return set_text(&r->stop, &r->stop_len, word);
}

size_t reply_line_ending(const void *msg, size_t len)
{
    const char *p = msg;
    if (len >= 2 && p[len - 2] == '\r' && p[len - 1] == '\n')
        return 2;
    if (len >= 1 && p[len - 1] == '\n')
        return 1;
    return 0;
}

bool reply_rules_is_stop(const reply_rules *r, const void *msg, size_t len)
{
    if (r->stop == NULL)
        return false;
    len -= reply_line_ending(msg, len);
    return len == r->stop_len && memcmp(msg, r->stop, len) == 0;
}

bool reply_rules_match(const reply_rules *r, const void *msg, size_t len,
                       const char **reply, size_t *reply_len)
{
    for (size_t i = 0; i < r->count; i++) {
        const reply_rule *rule = &r->rules[i];
        if (memmem(msg, len, rule->match, rule->match_len) != NULL) {
            *reply = rule->reply;
            *reply_len = rule->reply_len;
            return true;
        }
    }
    if (r->def == NULL)
        return false;
    *reply = r->def;
    *reply_len = r->def_len;
    return true;
}
