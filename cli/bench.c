/* SPDX-License-Identifier: MIT */
/* bench.c — `sockserve bench ADDRESS`: load generator for echo servers.
 *
 * The engine (apps/bench/engine.c) does the work; this file parses flags,
 * shows a progress line when stderr is a terminal, and prints the result as
 * text or as one JSON object. */
#include "cli.h"
#include "opts.h"

#include "bench/engine.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CMD "bench"
#define TEXT_OF(x) TEXT_OF_(x)
#define TEXT_OF_(x) #x

typedef struct bench_cli {
    bench_opts o;
    const char *address;
    bool json;
    bool live; /* progress line on stderr */
    bool tls;  /* --tls, or implied by --ca / --cert */
    const char *ca_file, *cert_file, *cert_key_file;
} bench_cli;

static void on_progress(const bench_progress *p, void *arg)
{
    (void)arg;
    if (p->warming)
        fprintf(stderr, "\r\033[Kwarm-up %.0f s: %ld connections answered", p->elapsed,
                p->warmed);
    else
        fprintf(stderr, "\r\033[K%3.0f s  %10.0f msg/s  %12llu messages  p99 %.1f us",
                p->elapsed, p->interval_rate, (unsigned long long)p->messages,
                (double)p->p99_ns / 1e3);
    fflush(stderr);
}

static void on_warm(long conns, double warmup, void *arg)
{
    const bench_cli *b = arg;
    /* --idle is used to measure a server's memory per connection: whoever
     * watches the server needs to know when every connection is open. */
    if (b->o.idle) {
        if (b->live)
            fputs("\r\033[K", stderr);
        fprintf(stderr, "sockserve: bench: %ld connections open and idle (warm-up %.3f s)\n",
                conns, warmup);
    }
}

static int set_conns(const cli_optarg *a)
{
    long n;
    if (!cli_parse_int(a->value, 1, BENCH_MAX_CONNS, &n))
        return cli_bad_value(a, "expected an integer from 1 to " TEXT_OF(BENCH_MAX_CONNS));
    ((bench_cli *)a->ctx)->o.conns = n;
    return CLI_OK;
}

static int set_depth(const cli_optarg *a)
{
    long n;
    if (!cli_parse_int(a->value, 1, BENCH_MAX_DEPTH, &n))
        return cli_bad_value(a, "expected an integer from 1 to " TEXT_OF(BENCH_MAX_DEPTH));
    ((bench_cli *)a->ctx)->o.depth = n;
    return CLI_OK;
}

static int set_size(const cli_optarg *a)
{
    unsigned long long sz;
    if (!cli_parse_size(a->value, &sz) || sz < 1 || sz > BENCH_MAX_SIZE)
        return cli_bad_value(a, "expected a byte count from 1 to 16M");
    ((bench_cli *)a->ctx)->o.size = (size_t)sz;
    return CLI_OK;
}

/* --duration, --warmup: positive seconds into the double at offset */
static int set_positive_seconds(const cli_optarg *a)
{
    double sec;
    if (!cli_parse_seconds(a->value, &sec) || sec <= 0)
        return cli_bad_value(a, "expected a positive number of seconds");
    *(double *)(void *)((char *)a->ctx + a->opt->offset) = sec;
    return CLI_OK;
}

static int set_server_pid(const cli_optarg *a)
{
    long n;
    if (!cli_parse_int(a->value, 1, 1L << 30, &n))
        return cli_bad_value(a, "expected a process id");
    ((bench_cli *)a->ctx)->o.server_pid = n;
    return CLI_OK;
}

static int set_resume(const cli_optarg *a)
{
    bench_cli *b = a->ctx;
    b->tls = b->o.resume = true;
    return CLI_OK;
}

/* --ca, --server-name, --cert, --cert-key: a string, and TLS on */
static int set_tls_string(const cli_optarg *a)
{
    if (a->value[0] == '\0') /* --server-name '' would verify no name */
        return cli_bad_value(a, "an empty value");
    ((bench_cli *)a->ctx)->tls = true;
    return cli_opt_set_string(a);
}

static const cli_opt bench_options[] = {
    {"conns", 0, CLI_VALUE, set_conns, 0},
    {"depth", 0, CLI_VALUE, set_depth, 0},
    {"size", 0, CLI_VALUE, set_size, 0},
    {"duration", 0, CLI_VALUE, set_positive_seconds, offsetof(bench_cli, o.duration)},
    {"warmup", 0, CLI_VALUE, set_positive_seconds, offsetof(bench_cli, o.warmup_max)},
    {"json", 0, CLI_NO_VALUE, cli_opt_set_true, offsetof(bench_cli, json)},
    {"idle", 0, CLI_NO_VALUE, cli_opt_set_true, offsetof(bench_cli, o.idle)},
    {"server-pid", 0, CLI_VALUE, set_server_pid, 0},
    {"tls", 0, CLI_NO_VALUE, cli_opt_set_true, offsetof(bench_cli, tls)},
    {"resume", 0, CLI_NO_VALUE, set_resume, 0},
    {"ca", 0, CLI_VALUE, set_tls_string, offsetof(bench_cli, ca_file)},
    {"server-name", 0, CLI_VALUE, set_tls_string, offsetof(bench_cli, o.server_name)},
    {"cert", 0, CLI_VALUE, set_tls_string, offsetof(bench_cli, cert_file)},
    {"cert-key", 0, CLI_VALUE, set_tls_string, offsetof(bench_cli, cert_key_file)},
    {NULL, 0, 0, NULL, 0},
};

static int take_address(void *ctx, const char *arg)
{
    bench_cli *b = ctx;
    if (b->address != NULL)
        return cli_usage_error(CMD, "unexpected argument '%s'", arg);
    b->address = arg;
    return CLI_OK;
}

/* Returns CLI_PARSE_GO_ON, or an exit code (CLI_OK after --help). */
static int parse(bench_cli *b, int argc, char **argv)
{
    b->o.conns = 1;
    b->o.depth = 1;
    b->o.size = 64;
    b->o.duration = 5;
    b->o.warmup_max = 10;
    cli_spec spec = {.command = &cli_cmd_bench, .operand = take_address, .operand_ctx = b};
    cli_spec_add(&spec, bench_options, b);
    int tail;
    int rc = cli_parse(&spec, argc, argv, &tail, NULL);
    if (rc != CLI_PARSE_GO_ON)
        return rc;
    if (b->address == NULL)
        return cli_usage_error(CMD, "missing ADDRESS");
    if ((unsigned long long)b->o.depth * b->o.size > BENCH_MAX_WINDOW)
        return cli_usage_error(CMD, "--depth x --size must stay within 64M in flight");
    ss_error err = {0};
    if (ss_addr_parse(&b->o.addr, b->address, 0, &err) < 0) {
        if (err.code == SS_ENORESOLVE)
            return cli_error(CMD, "%s", err.msg), CLI_RUNTIME;
        return cli_usage_error(CMD, "%s", err.msg);
    }
    if (b->o.addr.kind != SS_ADDR_TCP && b->o.addr.kind != SS_ADDR_UNIX)
        return cli_usage_error(CMD, "'%s': bench needs a tcp or unix stream address",
                               b->address);
    return CLI_PARSE_GO_ON;
}

static void print_text(const bench_cli *b, const bench_result *r)
{
    char addr[SS_ADDR_STRLEN];
    if (ss_addr_format(&b->o.addr, addr, sizeof addr) < 0)
        snprintf(addr, sizeof addr, "%s", b->address);
    double rate = r->seconds > 0 ? (double)r->messages / r->seconds : 0;
    double mbs = r->seconds > 0 ? (double)r->bytes / r->seconds / 1e6 : 0;
    const bench_hist *h = &r->hist;
    printf("sockserve bench %s: %ld connections x depth %ld x %zu bytes%s\n", addr,
           b->o.conns, b->o.depth, b->o.size, b->o.idle ? " (idle)" : "");
    printf("  duration   %.3f s (after a %.3f s warm-up)\n", r->seconds, r->warmup);
    printf("  messages   %llu\n", (unsigned long long)r->messages);
    printf("  rate       %.0f msg/s\n", rate);
    printf("  throughput %.2f MB/s\n", mbs);
    printf("  latency    p50 %.1f us  p99 %.1f us  p99.9 %.1f us  (min %.1f, max %.1f, "
           "mean %.1f; %llu samples)\n",
           bench_hist_percentile(h, 50) / 1e3, bench_hist_percentile(h, 99) / 1e3,
           bench_hist_percentile(h, 99.9) / 1e3, h->count ? h->min / 1e3 : 0.0,
           h->max / 1e3, bench_hist_mean(h) / 1e3, (unsigned long long)h->count);
    if (r->server_cpu >= 0)
        printf("  server cpu %.3f s (%.2f us/msg)\n", r->server_cpu,
               r->messages ? r->server_cpu * 1e6 / (double)r->messages : 0.0);
    printf("  client cpu %.3f s (%.2f us/msg)\n", r->client_cpu,
           r->messages ? r->client_cpu * 1e6 / (double)r->messages : 0.0);
    if (b->tls)
        printf("  tls        %ld handshakes in the warm-up (%.0f/s), %ld resumed\n", r->conns,
               r->warmup > 0 ? (double)r->conns / r->warmup : 0.0, r->resumed);
    printf("  connections %ld, errors %ld\n", r->conns, r->errors);
}

static void print_json(const bench_cli *b, const bench_result *r)
{
    char addr[SS_ADDR_STRLEN];
    if (ss_addr_format(&b->o.addr, addr, sizeof addr) < 0)
        addr[0] = '\0';
    const bench_hist *h = &r->hist;
    double rate = r->seconds > 0 ? (double)r->messages / r->seconds : 0;
    /* The address is canonical text from ss_addr_format; a unix path may still
     * hold a quote or a backslash, so escape those. */
    printf("{\"address\":\"");
    for (const char *p = addr; *p; p++) {
        if (*p == '"' || *p == '\\')
            putchar('\\');
        putchar((unsigned char)*p < 0x20 ? '?' : *p);
    }
    printf("\",\"conns\":%ld,\"depth\":%ld,\"size\":%zu,\"idle\":%s,", b->o.conns, b->o.depth,
           b->o.size, b->o.idle ? "true" : "false");
    printf("\"duration_s\":%.6f,\"warmup_s\":%.6f,\"messages\":%llu,\"bytes\":%llu,",
           r->seconds, r->warmup, (unsigned long long)r->messages,
           (unsigned long long)r->bytes);
    printf("\"msgs_per_s\":%.1f,\"mb_per_s\":%.3f,", rate,
           r->seconds > 0 ? (double)r->bytes / r->seconds / 1e6 : 0.0);
    printf("\"latency_us\":{\"samples\":%llu,\"min\":%.3f,\"p50\":%.3f,\"p90\":%.3f,"
           "\"p99\":%.3f,\"p999\":%.3f,\"max\":%.3f,\"mean\":%.3f},",
           (unsigned long long)h->count, h->count ? h->min / 1e3 : 0.0,
           bench_hist_percentile(h, 50) / 1e3, bench_hist_percentile(h, 90) / 1e3,
           bench_hist_percentile(h, 99) / 1e3, bench_hist_percentile(h, 99.9) / 1e3,
           h->max / 1e3, bench_hist_mean(h) / 1e3);
    if (r->server_cpu >= 0)
        printf("\"server_cpu_s\":%.3f,\"server_cpu_us_per_msg\":%.4f,", r->server_cpu,
               r->messages ? r->server_cpu * 1e6 / (double)r->messages : 0.0);
    else
        printf("\"server_cpu_s\":null,\"server_cpu_us_per_msg\":null,");
    printf("\"client_cpu_s\":%.3f,\"client_cpu_us_per_msg\":%.4f,", r->client_cpu,
           r->messages ? r->client_cpu * 1e6 / (double)r->messages : 0.0);
    if (b->tls)
        printf("\"tls\":true,\"handshakes_per_s\":%.1f,\"resumed\":%ld,",
               r->warmup > 0 ? (double)r->conns / r->warmup : 0.0, r->resumed);
    printf("\"errors\":%ld}\n", r->errors);
}

static int run(int argc, char **argv)
{
    bench_cli b = {0};
    int rc = parse(&b, argc, argv);
    if (rc != CLI_PARSE_GO_ON)
        return rc;
    b.live = isatty(STDERR_FILENO);
    if (b.tls) {
        ss_tls_opts to = {.ca_file = b.ca_file, .cert_file = b.cert_file,
                          .key_file = b.cert_key_file};
        ss_error err = {0};
        if (b.o.addr.kind != SS_ADDR_TCP && b.o.addr.kind != SS_ADDR_UNIX)
            return cli_usage_error(CMD, "--tls needs a tcp or unix address");
        if (ss_tls_ctx_new(&b.o.tls, false, &to, &err) < 0)
            return cli_usage_error(CMD, "%s", err.msg);
        if (b.o.server_name == NULL && b.o.addr.kind == SS_ADDR_TCP) {
            /* verify the host the address names, as connect does */
            static char host[SS_ADDR_STRLEN];
            char text[SS_ADDR_STRLEN];
            ss_addr_format(&b.o.addr, text, sizeof text);
            const char *p = strstr(text, "://");
            p = p != NULL ? p + 3 : text;
            size_t len = strlen(p);
            const char *colon = strrchr(p, ':');
            if (colon != NULL)
                len = (size_t)(colon - p);
            if (len >= 2 && p[0] == '[') {
                p++;
                len -= 2;
            }
            snprintf(host, sizeof host, "%.*s", (int)len, p);
            b.o.server_name = host;
        }
    }

    bench_result *r = malloc(sizeof *r); /* the histogram is ~60 KiB: not on the stack */
    if (r == NULL) {
        cli_error(CMD, "out of memory");
        return CLI_RUNTIME;
    }
    rc = bench_run(&b.o, r, b.live ? on_progress : NULL, on_warm, &b);
    if (b.live)
        fputs("\r\033[K", stderr);
    if (rc < 0) {
        cli_error(CMD, "%s", r->error);
        free(r);
        ss_tls_ctx_free(b.o.tls);
        return CLI_RUNTIME;
    }
    if (b.json)
        print_json(&b, r);
    else
        print_text(&b, r);
    free(r);
    ss_tls_ctx_free(b.o.tls);
    return CLI_OK;
}

const cli_command cli_cmd_bench = {
    .name = "bench",
    .summary = "load generator for echo servers (msg/s, MB/s, latency)",
    .usage =
        "usage: sockserve bench ADDRESS [--conns N] [--depth D] [--size BYTES]\n"
        "                       [--duration SEC] [--warmup SEC] [--json] [--idle]\n"
        "                       [--server-pid PID]\n"
        "\n"
        "Opens N connections to the echo server at ADDRESS (tcp://HOST:PORT,\n"
        "HOST:PORT, :PORT, unix:/path, unix:@name) and keeps D messages of BYTES\n"
        "bytes in flight on each, for SEC seconds. Every echoed byte is checked\n"
        "against what was sent; every message's round trip is measured.\n"
        "\n"
        "  --conns N        connections (default 1, at most 100000)\n"
        "  --depth D        messages in flight per connection (default 1)\n"
        "  --size BYTES     message size: 64, 16K, 1M (default 64)\n"
        "  --duration SEC   length of the measured window (default 5)\n"
        "  --warmup SEC     bound on the warm-up (default 10): the clock starts only\n"
        "                   when every connection has had one echo back; a server\n"
        "                   that cannot manage that within SEC fails the run\n"
        "  --json           print one JSON object instead of text\n"
        "  --idle           after the warm-up send nothing more: hold the connections\n"
        "                   open and idle for SEC (to measure a server's memory per\n"
        "                   connection); announces itself on stderr when idle\n"
        "  --server-pid PID also report the server's CPU time (utime+stime from\n"
        "                   /proc/PID/stat) over the window, per message\n"
        "  --tls            every connection does a TLS handshake first (verified\n"
        "                   against the system CAs); the warm-up then times the\n"
        "                   handshakes (reported as handshakes/s)\n"
        "  --ca FILE        verify against FILE (implies --tls)\n"
        "  --server-name NAME  SNI and the name verified (default: the host)\n"
        "  --cert FILE, --cert-key FILE  a client certificate (implies --tls)\n"
        "  --resume         TLS: one connection first for a session ticket, then\n"
        "                   every connection resumes it (no full handshakes)\n"
        "\n"
        "Prints messages/s, MB/s (echoed payload, one direction), latency p50, p99\n"
        "and p99.9, connections and errors. A progress line is shown once a second\n"
        "when stderr is a terminal.\n"
        "\n"
        "Exit status: 0 done; 1 a connection was refused or closed by the server,\n"
        "an echoed byte differed, or the warm-up ran out of time; 2 a bad flag.\n",
    .run = run,
};
