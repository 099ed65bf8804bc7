/* SPDX-License-Identifier: MIT */
/* util.c — time, waiting and error-detail helpers used across the library. */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <math.h>
#include <time.h>

int ss__fail(ss_error *err, int code, const char *fmt, ...)
{
    if (err != NULL) {
        va_list ap;
        va_start(ap, fmt);
        err->code = code;
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

int64_t ss__now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t ss__deadline(double seconds)
{
    if (seconds < 0)
        return -1;
    return ss__now_ms() + (int64_t)(seconds * 1000.0 + 0.5);
}

int ss__remaining_ms(int64_t deadline)
{
    if (deadline < 0)
        return -1;
    int64_t left = deadline - ss__now_ms();
    if (left <= 0)
        return 0;
    return left > INT32_MAX ? INT32_MAX : (int)left;
}

_Thread_local const ss__wait_hooks *ss__wait_hook;

int ss__wait_fd(int fd, short events, int64_t deadline)
{
    /* Inside a coroutine the wait is the loop's (coro_sched.c); one
     * thread-local load is all the other models pay for it. */
    const ss__wait_hooks *hook = ss__wait_hook;
    if (__builtin_expect(hook != NULL, 0))
        return hook->wait_fd(fd, events, deadline);
    for (;;) {
        struct pollfd p = {.fd = fd, .events = events};
        int ms = ss__remaining_ms(deadline);
        int n = poll(&p, 1, ms);
        if (n > 0)
            return 0;
        if (n == 0) {
            /* poll() may wake a little early; only a passed deadline counts */
            if (deadline >= 0 && ss__remaining_ms(deadline) == 0)
                return SS_ETIMEOUT;
            continue;
        }
        if (errno != EINTR)
            return -errno;
    }
}

int ss__set_nonblocking(int fd, int on)
{
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0)
        return -errno;
    int want = on ? (flags | O_NONBLOCK) : (flags & ~O_NONBLOCK);
    if (want != flags && fcntl(fd, F_SETFL, want) < 0)
        return -errno;
    return 0;
}

int ss_sleep(double seconds)
{
    if (isnan(seconds))
        return SS_EUSAGE;
    if (seconds <= 0)
        return 0;
    if (seconds > 1e9)
        seconds = 1e9; /* ~31 years: far enough, and no overflow below */
    const ss__wait_hooks *hook = ss__wait_hook;
    if (hook != NULL)
        return hook->sleep_ms((int64_t)(seconds * 1000.0 + 0.5));
    struct timespec ts;
    ts.tv_sec = (time_t)seconds;
    ts.tv_nsec = (long)((seconds - (double)ts.tv_sec) * 1e9);
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
    return 0;
}

bool ss_in_coroutine(void)
{
    return ss__wait_hook != NULL;
}

int ss_poll(struct pollfd *fds, nfds_t nfds, int timeout_ms)
{
    const ss__wait_hooks *hook = ss__wait_hook;
    int n = hook != NULL ? hook->poll(fds, nfds, timeout_ms) : poll(fds, nfds, timeout_ms);
    if (hook == NULL)
        return n < 0 ? -errno : n;
    if (n < 0)
        errno = -n;
    return n;
}
