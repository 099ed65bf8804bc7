/* SPDX-License-Identifier: MIT */
/* fuzz_access.c — libFuzzer target: access rules. The input is tried as one
 * CIDR (ss_access_add) and as a rules file (ss_access_load, from a memfd).
 * Nothing may crash, read out of bounds or leak; a refusal must say why in
 * the documented form and add nothing; what is accepted must decide the
 * same as ss_addr_in_cidr.
 *
 * Seed: with RCMD_FUZZ_SEED_DIR set (the fuzz tests set it for every
 * target), LLVMFuzzerInitialize writes a few CIDRs and a rules file there,
 * so the fuzzer starts from the grammar instead of having to find it. */
#include "sockserve.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static ss_addr probes[6];

static void write_seeds(const char *dir)
{
    static const char *seeds[] = {
        "10.0.0.0/8",
        "::ffff:10.0.0.0/104",
        "2001:db8::/32",
        "127.0.0.1",
        "# rules\nallow 127.0.0.0/8\n  deny ::1/128 # c\r\n\nallow 2001:db8::/33\n",
    };
    for (size_t i = 0; i < sizeof seeds / sizeof seeds[0]; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/seed_%zu", dir, i);
        FILE *f = fopen(path, "wb");
        if (f != NULL) {
            fputs(seeds[i], f);
            fclose(f);
        }
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    static const char *text[] = {"10.1.2.3:1",       "127.0.0.1:1",         "[::1]:1",
                                 "[2001:db8::77]:1", "[::ffff:10.1.2.3]:1", "unix:@fuzz"};
    for (size_t i = 0; i < sizeof probes / sizeof probes[0]; i++)
        if (ss_addr_parse(&probes[i], text[i], SS_ADDR_NUMERIC, NULL) != 0)
            abort();
    const char *dir = getenv("RCMD_FUZZ_SEED_DIR");
    if (dir != NULL)
        write_seeds(dir);
    return 0;
}

static void check_add(const uint8_t *data, size_t size)
{
    char *cidr = malloc(size + 1);
    if (cidr == NULL)
        return;
    memcpy(cidr, data, size);
    cidr[size] = '\0';
    ss_access *a;
    if (ss_access_new(&a) != 0)
        abort();
    ss_error err = {0};
    int rc = ss_access_add(a, false, cidr, &err);
    if (rc != 0) {
        if (rc != SS_EUSAGE || err.code != rc || strncmp(err.msg, "bad CIDR '", 10) != 0 ||
            memchr(err.msg, '\0', sizeof err.msg) == NULL)
            abort();
        for (const char *p = err.msg; *p != '\0'; p++)
            if ((unsigned char)*p < 0x20)
                abort();
    }
    /* one deny rule: refused exactly where the CIDR matches; unix never */
    for (size_t i = 0; i < sizeof probes / sizeof probes[0]; i++) {
        bool match = ss_addr_in_cidr(&probes[i], cidr);
        if (rc != 0 && match)
            abort();
        if (ss_access_allows(a, &probes[i]) == match)
            abort();
    }
    if (ss_access_allows(a, &probes[5]) != true)
        abort();
    ss_access_free(a);
    free(cidr);
}

static void check_load(const uint8_t *data, size_t size)
{
    int fd = memfd_create("fuzz_access", MFD_CLOEXEC);
    if (fd < 0)
        return;
    size_t off = 0;
    while (off < size) {
        ssize_t n = write(fd, data + off, size - off);
        if (n <= 0) {
            close(fd);
            return;
        }
        off += (size_t)n;
    }
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    ss_access *a;
    if (ss_access_new(&a) != 0)
        abort();
    ss_error err = {0};
    int rc = ss_access_load(a, path, &err);
    if (rc != 0) {
        /* "PATH:LINE: ..." or "cannot read PATH: ..."; and nothing added */
        char want[80];
        snprintf(want, sizeof want, "%s:", path);
        if (err.code != rc || (strncmp(err.msg, want, strlen(want)) != 0 &&
                               strncmp(err.msg, "cannot read ", 12) != 0))
            abort();
        for (size_t i = 0; i < sizeof probes / sizeof probes[0]; i++)
            if (!ss_access_allows(a, &probes[i]))
                abort();
    }
    if (!ss_access_allows(a, &probes[5]))
        abort();
    ss_access_free(a);
    close(fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_add(data, size);
    check_load(data, size);
    return 0;
}
