/* SPDX-License-Identifier: MIT */
/*
 * stream.c — buffered reading and writing over a transport (Python's
 * rfile/wfile), with a timeout on every wait.
 *
 * The transport never blocks; this file does the waiting, in poll(), for
 * the events the transport names (TLS may need POLLOUT to read). The
 * timeout bounds each wait for the peer, as a socket timeout bounds each
 * recv under Python's makefile(): a peer that keeps sending keeps a long
 * read alive, a peer that stalls for `timeout` ends it with SS_ETIMEOUT.
 * Every result keeps end of file (0 or SS_EEOF), errors (negative errno)
 * and SS_ETIMEOUT apart.
 *
 * A buffer is held only while it holds bytes: the read buffer from the read
 * that fills it to the one that empties it, the write buffer from a write
 * to the flush that sends it. An idle connection of the coroutine model
 * (thousands on one thread) then costs no buffer at all, and a waiting
 * read gives its empty buffer back before it waits. Buffers of the default
 * size come from a few free ones cached per thread, so a request/response
 * loop does not call malloc per message.
 */
#include "internal.h"

#include <errno.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_BUFFER (16 * 1024)
/* Free default-size buffers kept per thread: enough for the streams one
 * loop thread fills in a turn, little for a thread that goes away. */
#define CACHE_MAX 8

struct ss_stream {
    ss_transport *t;
    double timeout; /* SS_TIMEOUT_NONE, 0 (never wait: -EAGAIN) or > 0 */
    double write_timeout; /* > 0: a bound on write waits on top of timeout */

    unsigned char *rbuf; /* unread bytes are rbuf[rpos, rlen); NULL when none */
    size_t rcap, rpos, rlen;
    size_t rsize; /* rcap when not grown by a long readline */

    unsigned char *wbuf; /* bytes not yet written are wbuf[0, wlen); NULL when none */
    size_t wcap, wlen;

    uint64_t bytes_in, bytes_out; /* through the transport, for the log */
};

/* ---- buffers: held while they hold bytes ------------------------------------ */

typedef struct buffer_cache {
    unsigned char *free[CACHE_MAX];
    size_t n;
} buffer_cache;

static _Thread_local buffer_cache cache;
static _Thread_local bool cache_keyed; /* this thread's exit frees the cache */
static pthread_key_t cache_key;
static pthread_once_t cache_once = PTHREAD_ONCE_INIT;
static bool cache_key_made;

/* At the exit of a thread that cached buffers. */
static void cache_drain(void *arg)
{
    buffer_cache *c = arg;
    while (c->n > 0)
        free(c->free[--c->n]);
    cache_keyed = false; /* a buffer put after this sets the key again */
}

static void make_cache_key(void)
{
    cache_key_made = pthread_key_create(&cache_key, cache_drain) == 0;
}

static unsigned char *buffer_get(size_t cap)
{
    if (cap == DEFAULT_BUFFER && cache.n > 0)
        return cache.free[--cache.n];
    return malloc(cap);
}

static void buffer_put(unsigned char *b, size_t cap)
{
    if (b == NULL)
        return;
    if (cap == DEFAULT_BUFFER && cache.n < CACHE_MAX) {
        if (!cache_keyed) {
            /* the thread's exit frees what it cached (no key: plain free);
             * once a thread: a request/response loop empties and refills
             * the cache every message */
            pthread_once(&cache_once, make_cache_key);
            if (!cache_key_made || pthread_setspecific(cache_key, &cache) != 0) {
                free(b);
                return;
            }
            cache_keyed = true;
        }
        cache.free[cache.n++] = b;
        return;
    }
    free(b);
}

/* The read buffer holds nothing: give it back (a grown one shrinks). */
static void release_rbuf(ss_stream *s)
{
    buffer_put(s->rbuf, s->rcap);
    s->rbuf = NULL;
    s->rcap = s->rsize;
    s->rpos = s->rlen = 0;
}

static void release_wbuf(ss_stream *s)
{
    buffer_put(s->wbuf, s->wcap);
    s->wbuf = NULL;
    s->wlen = 0;
}

/* ---- the stream ---------------------------------------------------------------- */

int ss_stream_new(ss_stream **out, ss_transport *t, const ss_stream_opts *o)
{
    *out = NULL;
    ss_stream *s = calloc(1, sizeof *s);
    if (s == NULL)
        return -ENOMEM;
    s->t = t;
    s->rcap = s->rsize = o != NULL && o->read_buffer > 0 ? o->read_buffer : DEFAULT_BUFFER;
    s->wcap = o != NULL && o->write_buffer > 0 ? o->write_buffer : DEFAULT_BUFFER;
    /* zero-initialised options mean "defaults", so a 0 timeout there is none */
    s->timeout = o != NULL && o->timeout > 0 ? o->timeout : SS_TIMEOUT_NONE;
    s->write_timeout = o != NULL && o->write_timeout > 0 ? o->write_timeout : 0;
    *out = s;
    return 0;
}

void ss_stream_free(ss_stream *s)
{
    if (s == NULL)
        return;
    release_rbuf(s);
    release_wbuf(s);
    free(s);
}

void ss_stream_settimeout(ss_stream *s, double seconds)
{
    s->timeout = (isnan(seconds) || seconds < 0) ? SS_TIMEOUT_NONE : seconds;
}

ss_transport *ss_stream_transport(ss_stream *s)
{
    return s->t;
}

void ss__stream_counts(const ss_stream *s, uint64_t *in, uint64_t *out)
{
    *in = s->bytes_in;
    *out = s->bytes_out;
}

size_t ss_stream_buffered(const ss_stream *s)
{
    return s->rlen - s->rpos;
}

/* The transport would block: wait (per the timeout) for what it needs. */
static int wait_transport(ss_stream *s, short wanted)
{
    if (s->timeout == 0)
        return -EAGAIN;
    short events = s->t->ops->wait_events(s->t, wanted);
    double t = s->timeout;
    /* a peer that stops reading must not hold the writer forever, whatever
     * the read timeout says (the server sets write_timeout by default) */
    if (wanted == POLLOUT && s->write_timeout > 0 && (t < 0 || s->write_timeout < t))
        t = s->write_timeout;
    return ss__wait_fd(s->t->fd, events, ss__deadline(t));
}

/* One successful transport read into `buf`, waiting if need be. Returns
 * bytes (> 0), 0 at end of file, SS_ETIMEOUT or a code. */
static ssize_t read_some(ss_stream *s, void *buf, size_t len)
{
    for (;;) {
        ssize_t n = s->t->ops->read(s->t, buf, len);
        if (n > 0)
            s->bytes_in += (uint64_t)n;
        if (n != -EAGAIN)
            return n;
        int rc = wait_transport(s, POLLIN);
        if (rc < 0)
            return rc;
    }
}

/* Read more into the buffer (after what is there). `want` is the room the
 * caller needs in all; the buffer grows up to it. An empty buffer is given
 * back while the stream waits. */
static ssize_t fill(ss_stream *s, size_t want)
{
    if (s->rpos > 0 && s->rpos == s->rlen) {
        s->rpos = s->rlen = 0;
    } else if (s->rpos > 0 && s->rlen == s->rcap) {
        memmove(s->rbuf, s->rbuf + s->rpos, s->rlen - s->rpos);
        s->rlen -= s->rpos;
        s->rpos = 0;
    }
    if (s->rlen == s->rcap) {
        if (want <= s->rcap)
            return SS_ETOOLONG; /* caller's bound reached; cannot happen by design */
        unsigned char *grown = realloc(s->rbuf, want);
        if (grown == NULL)
            return -ENOMEM;
        s->rbuf = grown;
        s->rcap = want;
    }
    for (;;) {
        if (s->rbuf == NULL && (s->rbuf = buffer_get(s->rcap)) == NULL)
            return -ENOMEM;
        ssize_t n = s->t->ops->read(s->t, s->rbuf + s->rlen, s->rcap - s->rlen);
        if (n > 0) {
            s->bytes_in += (uint64_t)n;
            s->rlen += (size_t)n;
        }
        if (s->rlen == 0)
            release_rbuf(s); /* nothing came: held by no one while we wait */
        if (n != -EAGAIN)
            return n;
        int rc = wait_transport(s, POLLIN);
        if (rc < 0)
            return rc;
    }
}

static size_t take(ss_stream *s, void *buf, size_t len)
{
    size_t have = s->rlen - s->rpos;
    size_t n = len < have ? len : have;
    if (n == 0)
        return 0;
    memcpy(buf, s->rbuf + s->rpos, n);
    s->rpos += n;
    if (s->rpos == s->rlen)
        release_rbuf(s);
    return n;
}

ssize_t ss_stream_read(ss_stream *s, void *buf, size_t len)
{
    if (len == 0)
        return 0;
    if (s->rlen > s->rpos)
        return (ssize_t)take(s, buf, len);
    /* nothing buffered: a big read goes straight to the caller's memory */
    if (len >= s->rcap)
        return read_some(s, buf, len);
    ssize_t n = fill(s, s->rcap);
    if (n <= 0)
        return n;
    return (ssize_t)take(s, buf, len);
}

ssize_t ss_stream_readline(ss_stream *s, void *buf, size_t max)
{
    if (max == 0)
        return SS_EUSAGE;
    size_t scanned = 0; /* bytes after rpos already known to hold no '\n' */
    for (;;) {
        size_t have = s->rlen - s->rpos;
        size_t limit = have < max ? have : max;
        unsigned char *start = have > 0 ? s->rbuf + s->rpos : NULL;
        unsigned char *nl = limit > scanned ? memchr(start + scanned, '\n', limit - scanned) : NULL;
        if (nl != NULL)
            return (ssize_t)take(s, buf, (size_t)(nl - start) + 1);
        if (have >= max)
            return SS_ETOOLONG; /* the bytes stay buffered for the caller */
        scanned = limit;
        ssize_t n = fill(s, max);
        if (n == 0) {
            /* end of file: the last line, without its '\n', then 0 */
            return (ssize_t)take(s, buf, have);
        }
        if (n < 0)
            return n;
    }
}

int ss_stream_read_exact(ss_stream *s, void *buf, size_t len, size_t *got)
{
    unsigned char *p = buf;
    size_t done = take(s, p, len);
    int rc = 0;
    while (done < len) {
        size_t left = len - done;
        ssize_t n;
        if (left >= s->rcap) {
            n = read_some(s, p + done, left);
            if (n > 0)
                done += (size_t)n;
        } else {
            n = fill(s, s->rcap);
            if (n > 0)
                done += take(s, p + done, left);
        }
        if (n == 0) {
            rc = SS_EEOF;
            break;
        }
        if (n < 0) {
            rc = (int)n;
            break;
        }
    }
    if (got != NULL)
        *got = done;
    return rc;
}

/* Write `len` bytes of `buf` out; *done says how many went, even on error. */
static int write_out(ss_stream *s, const unsigned char *buf, size_t len, size_t *done)
{
    *done = 0;
    while (*done < len) {
        ssize_t n = s->t->ops->write(s->t, buf + *done, len - *done);
        if (n > 0) {
            *done += (size_t)n;
            s->bytes_out += (uint64_t)n;
            continue;
        }
        if (n == 0)
            return SS_ECLOSED; /* a transport that accepts nothing and says nothing */
        if (n != -EAGAIN)
            return (int)n;
        int rc = wait_transport(s, POLLOUT);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int ss_stream_flush(ss_stream *s)
{
    if (s->wlen == 0)
        return 0;
    size_t done;
    int rc = write_out(s, s->wbuf, s->wlen, &done);
    if (done == s->wlen) {
        release_wbuf(s);
        return rc;
    }
    /* keep what did not go, so a flush after a timeout can finish the job */
    memmove(s->wbuf, s->wbuf + done, s->wlen - done);
    s->wlen -= done;
    return rc;
}

int ss__stream_write_flush(ss_stream *s, const void *buf, size_t len)
{
    if (s->wlen == 0 && len > 0) {
        /* the common reply: one write takes it all, and the stream never
         * holds (or copies into) a buffer for it */
        ssize_t n = s->t->ops->write(s->t, buf, len);
        if (n > 0) {
            s->bytes_out += (uint64_t)n;
            if ((size_t)n == len)
                return 0;
            buf = (const unsigned char *)buf + n;
            len -= (size_t)n;
        }
        /* a short write, EAGAIN or an error: the rest as before (an error
         * comes again from the flush, with the bytes kept buffered) */
    }
    int rc = ss_stream_write(s, buf, len);
    return rc < 0 ? rc : ss_stream_flush(s);
}

int ss_stream_write(ss_stream *s, const void *buf, size_t len)
{
    if (len == 0)
        return 0;
    /* what fits is copied at once, never after a wait: the caller's buffer
     * is free again when this returns (sockserve.h says so) */
    if (len <= s->wcap - s->wlen) {
        if (s->wbuf == NULL && (s->wbuf = buffer_get(s->wcap)) == NULL)
            return -ENOMEM;
        memcpy(s->wbuf + s->wlen, buf, len);
        s->wlen += len;
        return 0;
    }
    int rc = ss_stream_flush(s);
    if (rc < 0)
        return rc;
    if (len < s->wcap) {
        if (s->wbuf == NULL && (s->wbuf = buffer_get(s->wcap)) == NULL)
            return -ENOMEM;
        memcpy(s->wbuf, buf, len);
        s->wlen = len;
        return 0;
    }
    /* larger than the buffer: copying it through would only cost time */
    size_t done;
    return write_out(s, buf, len, &done);
}
