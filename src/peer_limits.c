/* SPDX-License-Identifier: MIT */
/*
 * peer_limits.c — per-client bookkeeping of the accept path: keys,
 * connections counted per key, token buckets per key.
 *
 * Both tables are chained hash tables over SipHash-2-4 with a key drawn
 * from getrandom() when the table is made: peers choose their addresses
 * (and spoofed datagrams choose them freely), so with a fixed hash they
 * could aim every entry at one chain and turn each accept into a long
 * scan. One mutex per table: the critical sections are a hash and a short
 * chain walk, far shorter than the accept or recvfrom around them.
 */
#include "peer_limits.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

/* ---- SipHash-2-4 -------------------------------------------------------- */

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))

typedef struct sip {
    uint64_t v0, v1, v2, v3;
} sip;

static void sip_round(sip *s)
{
    s->v0 += s->v1;
    s->v1 = ROTL(s->v1, 13);
    s->v1 ^= s->v0;
    s->v0 = ROTL(s->v0, 32);
    s->v2 += s->v3;
    s->v3 = ROTL(s->v3, 16);
    s->v3 ^= s->v2;
    s->v0 += s->v3;
    s->v3 = ROTL(s->v3, 21);
    s->v3 ^= s->v0;
    s->v2 += s->v1;
    s->v1 = ROTL(s->v1, 17);
    s->v1 ^= s->v2;
    s->v2 = ROTL(s->v2, 32);
}

static uint64_t load_le64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* SipHash-2-4 of `n` bytes; with `out128` set, the 128-bit variant (both
 * halves). Returns the (first) 64 bits. */
static uint64_t siphash(const uint64_t k[2], const unsigned char *p, size_t n, uint64_t *out128)
{
    sip s = {0x736f6d6570736575ULL ^ k[0], 0x646f72616e646f6dULL ^ k[1],
             0x6c7967656e657261ULL ^ k[0], 0x7465646279746573ULL ^ k[1]};
    if (out128 != NULL)
        s.v1 ^= 0xee;
    size_t whole = n & ~(size_t)7;
    for (size_t i = 0; i < whole; i += 8) {
        uint64_t m = load_le64(p + i);
        s.v3 ^= m;
        sip_round(&s);
        sip_round(&s);
        s.v0 ^= m;
    }
    uint64_t last = (uint64_t)n << 56;
    for (size_t i = 0; i < (n & 7); i++)
        last |= (uint64_t)p[whole + i] << (8 * i);
    s.v3 ^= last;
    sip_round(&s);
    sip_round(&s);
    s.v0 ^= last;
    s.v2 ^= out128 != NULL ? 0xee : 0xff;
    for (int i = 0; i < 4; i++)
        sip_round(&s);
    uint64_t h = s.v0 ^ s.v1 ^ s.v2 ^ s.v3;
    if (out128 != NULL) {
        s.v1 ^= 0xdd;
        for (int i = 0; i < 4; i++)
            sip_round(&s);
        *out128 = s.v0 ^ s.v1 ^ s.v2 ^ s.v3;
    }
    return h;
}

static int random_key(uint64_t k[2])
{
    unsigned char b[16];
    size_t got = 0;
    while (got < sizeof b) {
        ssize_t n = getrandom(b + got, sizeof b - got, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        got += (size_t)n;
    }
    k[0] = load_le64(b);
    k[1] = load_le64(b + 8);
    return 0;
}

/* ---- keys ---------------------------------------------------------------- */

enum { TAG_OTHER = 0, TAG_V4 = 4, TAG_V6 = 6, TAG_UNIX = 'u', TAG_UNIX_UNNAMED = 'U' };

bool ss__peer_key_of(const ss_addr *peer, ss__peer_key *out)
{
    memset(out, 0, sizeof *out);
    int family = ss_addr_family(peer);
    if (family == AF_INET) {
        out->b[0] = TAG_V4;
        memcpy(out->b + 1, &peer->u.in.sin_addr, 4);
        return true;
    }
    if (family == AF_INET6) {
        const unsigned char *ip = peer->u.in6.sin6_addr.s6_addr;
        if (IN6_IS_ADDR_V4MAPPED(&peer->u.in6.sin6_addr)) {
            out->b[0] = TAG_V4;
            memcpy(out->b + 1, ip + 12, 4);
        } else {
            /* one host usually holds a whole /64, so a finer key would let
             * it open max_per_ip connections per address it picks */
            out->b[0] = TAG_V6;
            memcpy(out->b + 1, ip, 8);
        }
        return true;
    }
    if (family == AF_UNIX) {
        size_t off = offsetof(struct sockaddr_un, sun_path);
        size_t n = peer->len > off ? peer->len - off : 0;
        if (n > sizeof peer->u.un.sun_path)
            n = sizeof peer->u.un.sun_path;
        const char *path = peer->u.un.sun_path;
        /* a path name ends at its NUL (the kernel may count it or not); an
         * abstract one (leading NUL) is exactly its bytes */
        if (n > 0 && path[0] != '\0')
            n = strnlen(path, n);
        if (n == 0) {
            out->b[0] = TAG_UNIX_UNNAMED;
            return false;
        }
        /* The key must be the same for the same path in every table and
         * process, so this hash has a fixed key; the tables rehash keys with
         * their random one. */
        static const uint64_t fixed[2] = {0x7061746873206f66ULL, 0x20756e6978207065ULL};
        uint64_t h2;
        uint64_t h1 = siphash(fixed, (const unsigned char *)path, n, &h2);
        out->b[0] = TAG_UNIX;
        memcpy(out->b + 1, &h1, 8);
        memcpy(out->b + 9, &h2, 8);
        return false;
    }
    out->b[0] = TAG_OTHER;
    return false;
}

/* ---- a chained hash table of keys ------------------------------------------ */

typedef struct node {
    struct node *next; /* in its chain */
    uint64_t hash;
    ss__peer_key key;
} node;

typedef struct table {
    node **b;  /* nb chains, nb a power of two */
    size_t nb; /* 0 until the first insert */
    size_t n;
    uint64_t k[2];
} table;

#define TABLE_MIN 16

static uint64_t table_hash(const table *t, const ss__peer_key *k)
{
    return siphash(t->k, k->b, sizeof k->b, NULL);
}

/* The node for `k`; `*link` (if given) is the pointer that points at it, or
 * at the end of its chain when there is none. */
static node *table_find(const table *t, const ss__peer_key *k, uint64_t h, node ***link)
{
    if (t->nb == 0)
        return NULL;
    node **l = &t->b[h & (t->nb - 1)];
    for (; *l != NULL; l = &(*l)->next)
        if ((*l)->hash == h && memcmp((*l)->key.b, k->b, sizeof k->b) == 0)
            break;
    if (link != NULL)
        *link = l;
    return *l;
}

/* Move every node to `nb` chains. A failed allocation leaves the table as
 * it was: longer chains, still correct. */
static void table_resize(table *t, size_t nb)
{
    node **b = calloc(nb, sizeof *b);
    if (b == NULL)
        return;
    for (size_t i = 0; i < t->nb; i++) {
        node *e = t->b[i];
        while (e != NULL) {
            node *next = e->next;
            node **head = &b[e->hash & (nb - 1)];
            e->next = *head;
            *head = e;
            e = next;
        }
    }
    free(t->b);
    t->b = b;
    t->nb = nb;
}

/* Link `e` (hash and key set, not in the table) in; false on ENOMEM. */
static bool table_insert(table *t, node *e)
{
    if (t->nb == 0) {
        table_resize(t, TABLE_MIN);
        if (t->nb == 0)
            return false;
    } else if (t->n >= t->nb && t->nb <= SIZE_MAX / 2 / sizeof(node *)) {
        table_resize(t, t->nb * 2); /* load factor at most 1 */
    }
    node **head = &t->b[e->hash & (t->nb - 1)];
    e->next = *head;
    *head = e;
    t->n++;
    return true;
}

/* Unlink the node `*link` points at (from table_find). */
static void table_unlink(table *t, node **link)
{
    *link = (*link)->next;
    t->n--;
}

/* Free the chains and every node (each the first member of its entry). */
static void table_free_nodes(table *t)
{
    for (size_t i = 0; i < t->nb; i++) {
        node *e = t->b[i];
        while (e != NULL) {
            node *next = e->next;
            free(e);
            e = next;
        }
    }
    free(t->b);
}

/* ---- connections per key --------------------------------------------------- */

typedef struct count_entry {
    node n; /* first: a node * is a count_entry * */
    int count;
} count_entry;

struct ss__peer_count {
    pthread_mutex_t lock;
    table t;
    int max;
};

int ss__peer_count_new(ss__peer_count **out, int max_per_key)
{
    *out = NULL;
    if (max_per_key < 1)
        return -EINVAL;
    ss__peer_count *c = calloc(1, sizeof *c);
    if (c == NULL)
        return -ENOMEM;
    int rc = random_key(c->t.k);
    if (rc == 0)
        rc = -pthread_mutex_init(&c->lock, NULL);
    if (rc != 0) {
        free(c);
        return rc;
    }
    c->max = max_per_key;
    *out = c;
    return 0;
}

void ss__peer_count_free(ss__peer_count *c)
{
    if (c == NULL)
        return;
    table_free_nodes(&c->t);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

bool ss__peer_count_acquire(ss__peer_count *c, const ss__peer_key *k)
{
    uint64_t h = table_hash(&c->t, k);
    bool ok = false;
    pthread_mutex_lock(&c->lock);
    count_entry *e = (count_entry *)table_find(&c->t, k, h, NULL);
    if (e != NULL) {
        if (e->count < c->max) {
            e->count++;
            ok = true;
        }
    } else if ((e = malloc(sizeof *e)) != NULL) {
        e->n.hash = h;
        e->n.key = *k;
        e->count = 1;
        ok = table_insert(&c->t, &e->n);
        if (!ok)
            free(e);
    }
    pthread_mutex_unlock(&c->lock);
    return ok;
}

void ss__peer_count_release(ss__peer_count *c, const ss__peer_key *k)
{
    uint64_t h = table_hash(&c->t, k);
    node **link;
    count_entry *freed = NULL;
    pthread_mutex_lock(&c->lock);
    count_entry *e = (count_entry *)table_find(&c->t, k, h, &link);
    if (e != NULL && --e->count <= 0) {
        table_unlink(&c->t, link);
        freed = e;
        /* give the chains back too once most connections are gone */
        if (c->t.nb > TABLE_MIN && c->t.n < c->t.nb / 8)
            table_resize(&c->t, c->t.nb / 2);
    }
    pthread_mutex_unlock(&c->lock);
    free(freed);
}

int ss__peer_count_of(ss__peer_count *c, const ss__peer_key *k)
{
    uint64_t h = table_hash(&c->t, k);
    pthread_mutex_lock(&c->lock);
    count_entry *e = (count_entry *)table_find(&c->t, k, h, NULL);
    int n = e != NULL ? e->count : 0;
    pthread_mutex_unlock(&c->lock);
    return n;
}

/* ---- token buckets per key ------------------------------------------------- */

/*
 * Tokens are counted in thousandths, so `rate` tokens a second is exactly
 * `rate` thousandths a millisecond: integer refills, no drift. A bucket
 * idle for a second or more is full, which also bounds the product.
 */
#define MILLI 1000

typedef struct rate_entry {
    node n;                           /* first */
    struct rate_entry *newer, *older; /* the LRU list */
    int64_t tokens;                   /* thousandths */
    int64_t last_ms;
} rate_entry;

struct ss__rate {
    pthread_mutex_t lock;
    table t;
    rate_entry *newest, *oldest;
    int64_t rate;
    size_t max_keys;
};

int ss__rate_new(ss__rate **out, unsigned rate, size_t max_keys)
{
    *out = NULL;
    if (rate == 0 || max_keys == 0) /* callers make one only for a limit */
        return -EINVAL;
    ss__rate *r = calloc(1, sizeof *r);
    if (r == NULL)
        return -ENOMEM;
    int rc = random_key(r->t.k);
    if (rc == 0)
        rc = -pthread_mutex_init(&r->lock, NULL);
    if (rc != 0) {
        free(r);
        return rc;
    }
    r->rate = rate;
    r->max_keys = max_keys;
    *out = r;
    return 0;
}

void ss__rate_free(ss__rate *r)
{
    if (r == NULL)
        return;
    table_free_nodes(&r->t);
    pthread_mutex_destroy(&r->lock);
    free(r);
}

static void lru_unlink(ss__rate *r, rate_entry *e)
{
    if (e->newer != NULL)
        e->newer->older = e->older;
    else
        r->newest = e->older;
    if (e->older != NULL)
        e->older->newer = e->newer;
    else
        r->oldest = e->newer;
}

static void lru_push(ss__rate *r, rate_entry *e)
{
    e->newer = NULL;
    e->older = r->newest;
    if (r->newest != NULL)
        r->newest->newer = e;
    else
        r->oldest = e;
    r->newest = e;
}

/* A bucket for a key not in the table: a fresh one while there is room,
 * else the one idle longest, taken out of the table and the list. */
static rate_entry *rate_bucket(ss__rate *r)
{
    if (r->t.n < r->max_keys) {
        rate_entry *e = malloc(sizeof *e);
        if (e != NULL)
            return e;
        if (r->oldest == NULL)
            return NULL;
    }
    rate_entry *e = r->oldest;
    node **link = NULL; /* table_find sets it: e is in the table */
    table_find(&r->t, &e->n.key, e->n.hash, &link);
    table_unlink(&r->t, link);
    lru_unlink(r, e);
    return e;
}

bool ss__rate_take(ss__rate *r, const ss__peer_key *k, int64_t now_ms)
{
    const int64_t full = r->rate * MILLI;
    uint64_t h = table_hash(&r->t, k);
    bool ok = false;
    pthread_mutex_lock(&r->lock);
    rate_entry *e = (rate_entry *)table_find(&r->t, k, h, NULL);
    if (e != NULL) {
        lru_unlink(r, e);
        int64_t idle = now_ms - e->last_ms;
        if (idle >= MILLI)
            e->tokens = full;
        else if (idle > 0)
            e->tokens = e->tokens + idle * r->rate > full ? full : e->tokens + idle * r->rate;
        if (idle > 0) /* a clock that goes back refills nothing */
            e->last_ms = now_ms;
    } else if ((e = rate_bucket(r)) != NULL) {
        e->n.hash = h;
        e->n.key = *k;
        e->tokens = full; /* a new source starts with its burst */
        e->last_ms = now_ms;
        if (!table_insert(&r->t, &e->n)) {
            free(e);
            e = NULL;
        }
    }
    if (e != NULL) {
        lru_push(r, e);
        if (e->tokens >= MILLI) {
            e->tokens -= MILLI;
            ok = true;
        }
    }
    pthread_mutex_unlock(&r->lock);
    return ok;
}
