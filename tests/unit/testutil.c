/* SPDX-License-Identifier: MIT */
/* testutil.c — helpers shared by the unit tests. */
#include "testutil.h"

#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int tu_count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (d == NULL)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1; /* the DIR's own descriptor */
}

void tu_abstract_name(char *buf, size_t len)
{
    static int counter;
    snprintf(buf, len, "@sockserve-test-%d-%d", (int)getpid(), counter++);
}

void tu_temp_path(char *buf, size_t len, const char *leaf)
{
    static char dir[64];
    if (dir[0] == '\0') {
        snprintf(dir, sizeof dir, "/tmp/sockserve-test-XXXXXX");
        if (mkdtemp(dir) == NULL)
            abort();
    }
    snprintf(buf, len, "%s/%s", dir, leaf);
}

static void on_alarm(int sig)
{
    (void)sig;
    static const char msg[] = "test timed out\n";
    (void)!write(2, msg, sizeof msg - 1);
    _exit(99);
}

void tu_alarm(unsigned seconds)
{
    signal(SIGALRM, on_alarm);
    alarm(seconds);
}
