/* SPDX-License-Identifier: MIT */
/*
 * coro.c — coroutines: their stacks, the switch around coro_switch.S (or
 * ucontext on architectures without one), the sanitizers' fiber hooks and
 * the stack-overflow report.
 *
 * Stack layout (one mmap):   [guard page, PROT_NONE][usable stack ....][extra][ss__coro]
 *                            ^ map                   ^ lo            hi ^
 * The coroutine's own record sits at the top of its mapping, in the page
 * the stack's first frames touch anyway: one allocation (and for an idle
 * connection of the coroutine model, one piece of heap) fewer per
 * coroutine; so does the scheduler's wait state (SS__CORO_EXTRA bytes).
 * The stack grows down from hi towards the guard page; a handler that
 * recurses too deep faults there, and the SIGSEGV handler (running on the
 * thread's alternate signal stack, since the faulting one is full) sees
 * that the fault address or the stack pointer lies in the running
 * coroutine's guard, writes one line and aborts. Any other SIGSEGV goes on
 * to whoever handled it before us (or kills the process as it would have).
 */
#include "coro.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#if (defined(__x86_64__) || defined(__aarch64__)) && !defined(SS_CORO_UCONTEXT)
#define CORO_ASM 1
void ss__coro_switch(void **save_sp, void *next_sp);
void ss__coro_trampoline(void);
#else
#define CORO_ASM 0
#endif

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CORO_ASAN 1
#endif
#if __has_feature(thread_sanitizer)
#define CORO_TSAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) && !defined(CORO_ASAN)
#define CORO_ASAN 1
#endif
#if defined(__SANITIZE_THREAD__) && !defined(CORO_TSAN)
#define CORO_TSAN 1
#endif
#ifdef CORO_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif
#ifdef CORO_TSAN
#include <sanitizer/tsan_interface.h>
#endif

struct ss__coro {
    void *sp;        /* saved stack pointer while switched away (asm) */
    void *caller_sp; /* the resumer's, while the coroutine runs */
    unsigned char *map;
    size_t map_len, guard;
    unsigned char *lo; /* usable stack [lo, hi) */
    unsigned char *hi; /* 16-aligned, just below this record */
    ss__coro_fn fn;
    void *arg;
    void *data;
    bool done;
#if !CORO_ASM
    ucontext_t ctx, caller_ctx;
#endif
#ifdef CORO_ASAN
    void *fake_stack;          /* the coroutine's, while switched away */
    void *caller_fake_stack;   /* the resumer's, while the coroutine runs */
    const void *caller_bottom; /* the resumer's stack, for switching back */
    size_t caller_size;
#endif
#ifdef CORO_TSAN
    void *fiber, *caller_fiber;
#endif
};

static _Thread_local ss__coro *current;

ss__coro *ss__coro_current(void) { return current; }
size_t ss__coro_stack_size(const ss__coro *co) { return co->map_len - co->guard; }
void ss__coro_set_data(ss__coro *co, void *data) { co->data = data; }
void *ss__coro_data(const ss__coro *co) { return co->data; }
void *ss__coro_extra(ss__coro *co) { return co->hi; }

static size_t page_size(void)
{
    /* loops on several threads ask at once: the same value, but say so */
    static atomic_size_t page;
    size_t p = atomic_load_explicit(&page, memory_order_relaxed);
    if (p == 0) {
        long v = sysconf(_SC_PAGESIZE);
        p = v > 0 ? (size_t)v : 4096;
        atomic_store_explicit(&page, p, memory_order_relaxed);
    }
    return p;
}

/* ---- the overflow report --------------------------------------------------- */

static struct sigaction previous_segv;
static pthread_once_t segv_once = PTHREAD_ONCE_INIT;
static int segv_install_error;
static size_t altstack_size;

/* Decimal and hex without stdio: we are in a signal handler. */
static size_t put_text(char *buf, size_t at, size_t cap, const char *s)
{
    while (*s != '\0' && at < cap)
        buf[at++] = *s++;
    return at;
}

static size_t put_number(char *buf, size_t at, size_t cap, uintptr_t v, unsigned base)
{
    char digits[32];
    size_t n = 0;
    do {
        digits[n++] = "0123456789abcdef"[v % base];
        v /= base;
    } while (v != 0 && n < sizeof digits);
    while (n > 0 && at < cap)
        buf[at++] = digits[--n];
    return at;
}

static uintptr_t stack_pointer_of(void *context)
{
    ucontext_t *uc = context;
#if defined(__x86_64__)
    return (uintptr_t)uc->uc_mcontext.gregs[REG_RSP];
#elif defined(__aarch64__)
    return (uintptr_t)uc->uc_mcontext.sp;
#else
    (void)uc;
    return 0;
#endif
}

static void on_segv(int sig, siginfo_t *si, void *context)
{
    ss__coro *co = current;
    uintptr_t addr = (uintptr_t)si->si_addr;
    uintptr_t sp = stack_pointer_of(context);
    if (co != NULL) {
        uintptr_t guard_lo = (uintptr_t)co->map, guard_hi = (uintptr_t)co->lo;
        /* the address in the guard page, or the stack pointer below the
         * usable stack (a frame larger than the guard jumped over it) */
        if ((addr >= guard_lo && addr < guard_hi) || (sp != 0 && sp < guard_hi && sp + (1u << 20) > guard_lo)) {
            char line[200];
            size_t n = put_text(line, 0, sizeof line, "sockserve: coroutine stack overflow (");
            n = put_number(line, n, sizeof line, ss__coro_stack_size(co) / 1024, 10);
            n = put_text(line, n, sizeof line, " KiB stack) at 0x");
            n = put_number(line, n, sizeof line, addr, 16);
            n = put_text(line, n, sizeof line,
                         ": a handler used more stack than it has; raise "
                         "ss_server_opts.coro_stack_size. Aborting.\n");
            (void)!write(STDERR_FILENO, line, n);
            abort();
        }
    }
    /* Not ours: as if we had never been installed. */
    if (previous_segv.sa_flags & SA_SIGINFO) {
        if (previous_segv.sa_sigaction != NULL) {
            previous_segv.sa_sigaction(sig, si, context);
            return;
        }
    } else if (previous_segv.sa_handler != SIG_DFL && previous_segv.sa_handler != SIG_IGN) {
        previous_segv.sa_handler(sig);
        return;
    }
    /* default action: returning re-runs the faulting access, which now kills */
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    sigaction(SIGSEGV, &dfl, NULL);
}

static void install_segv_handler(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGSEGV, &sa, &previous_segv) < 0)
        segv_install_error = -errno;
    /* glibc 2.34+ makes SIGSTKSZ a sysconf; 32 KiB covers it and the
     * handler's few hundred bytes with room for a sanitizer's own */
    long min = sysconf(_SC_SIGSTKSZ);
    altstack_size = min > 32768 ? (size_t)min : 32768;
}

static _Thread_local void *thread_altstack;

int ss__coro_thread_init(void)
{
    pthread_once(&segv_once, install_segv_handler);
    if (segv_install_error < 0)
        return segv_install_error;
    if (thread_altstack != NULL)
        return 0;
    void *mem = mmap(NULL, altstack_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
                     0);
    if (mem == MAP_FAILED)
        return -errno;
    stack_t ss = {.ss_sp = mem, .ss_size = altstack_size, .ss_flags = 0};
    if (sigaltstack(&ss, NULL) < 0) {
        int e = errno;
        munmap(mem, altstack_size);
        return -e;
    }
    thread_altstack = mem;
    return 0;
}

void ss__coro_thread_fini(void)
{
    if (thread_altstack == NULL)
        return;
    stack_t off = {.ss_flags = SS_DISABLE};
    sigaltstack(&off, NULL);
    munmap(thread_altstack, altstack_size);
    thread_altstack = NULL;
}

/* ---- the switch ------------------------------------------------------------ */

/* Both directions go through here so the sanitizers hear of every switch. */
static void enter(ss__coro *co)
{
#ifdef CORO_ASAN
    __sanitizer_start_switch_fiber(&co->caller_fake_stack, co->lo, (size_t)(co->hi - co->lo));
#endif
#ifdef CORO_TSAN
    co->caller_fiber = __tsan_get_current_fiber();
    __tsan_switch_to_fiber(co->fiber, 0);
#endif
#if CORO_ASM
    ss__coro_switch(&co->caller_sp, co->sp);
#else
    swapcontext(&co->caller_ctx, &co->ctx);
#endif
#ifdef CORO_ASAN
    __sanitizer_finish_switch_fiber(co->caller_fake_stack, NULL, NULL);
#endif
}

static void leave(ss__coro *co)
{
#ifdef CORO_ASAN
    /* an ended coroutine's fake stack goes with it (NULL) */
    __sanitizer_start_switch_fiber(co->done ? NULL : &co->fake_stack, co->caller_bottom,
                                   co->caller_size);
#endif
#ifdef CORO_TSAN
    __tsan_switch_to_fiber(co->caller_fiber, 0);
#endif
#if CORO_ASM
    ss__coro_switch(&co->sp, co->caller_sp);
#else
    swapcontext(&co->ctx, &co->caller_ctx);
#endif
#ifdef CORO_ASAN
    __sanitizer_finish_switch_fiber(co->fake_stack, &co->caller_bottom, &co->caller_size);
#endif
}

static void coro_main(void *arg)
{
    ss__coro *co = arg;
#ifdef CORO_ASAN
    __sanitizer_finish_switch_fiber(NULL, &co->caller_bottom, &co->caller_size);
#endif
    co->fn(co->arg);
    co->done = true;
    leave(co);
    abort(); /* an ended coroutine is never resumed */
}

#if !CORO_ASM
/* makecontext passes ints: the pointer travels in two halves */
static void coro_main_ucontext(unsigned hi, unsigned lo)
{
    coro_main((void *)(((uintptr_t)hi << 16 << 16) | (uintptr_t)lo));
}
#endif

bool ss__coro_resume(ss__coro *co)
{
    ss__coro *outer = current;
    current = co;
    enter(co);
    current = outer;
    return co->done;
}

void ss__coro_yield(void)
{
    ss__coro *co = current;
    if (co != NULL)
        leave(co);
}

/* ---- making and freeing ---------------------------------------------------------- */

/* Lay out a fresh start on co's stack: fn(arg) at the next resume. */
static int prepare(ss__coro *co, ss__coro_fn fn, void *arg)
{
    co->done = false;
    co->fn = fn;
    co->arg = arg;
#if CORO_ASM
    /* A stack that looks switched away from: the switch pops the saved
     * registers and returns into the trampoline, which calls
     * coro_main(co). */
    uintptr_t top = (uintptr_t)co->hi;
#if defined(__x86_64__)
    /* from the top: [ret = trampoline][rbp rbx r12 r13 r14 r15][mxcsr|fpucw].
     * After `ret` rsp is `top`, 16-aligned, so the trampoline's call enters
     * coro_main with rsp 8 mod 16, as every function entry expects. */
    uint64_t *s = (uint64_t *)top;
    *--s = (uint64_t)(uintptr_t)ss__coro_trampoline;
    *--s = 0;                               /* rbp */
    *--s = 0;                               /* rbx */
    *--s = (uint64_t)(uintptr_t)coro_main;  /* r12 */
    *--s = (uint64_t)(uintptr_t)co;         /* r13 */
    *--s = 0;                               /* r14 */
    *--s = 0;                               /* r15 */
    *--s = (uint64_t)0x1F80 | ((uint64_t)0x037F << 32); /* MXCSR, x87 CW: defaults */
    co->sp = s;
#else
    /* aarch64: 160 bytes: x19..x30 then d8..d15 */
    uint64_t *s = (uint64_t *)(top - 160);
    memset(s, 0, 160);
    s[0] = (uint64_t)(uintptr_t)coro_main;           /* x19 */
    s[1] = (uint64_t)(uintptr_t)co;                  /* x20 */
    s[11] = (uint64_t)(uintptr_t)ss__coro_trampoline; /* x30 (lr) */
    co->sp = s;
#endif
#else
    if (getcontext(&co->ctx) < 0)
        return -ENOMEM;
    co->ctx.uc_stack.ss_sp = co->lo;
    co->ctx.uc_stack.ss_size = (size_t)(co->hi - co->lo);
    co->ctx.uc_link = NULL;
    uintptr_t p = (uintptr_t)co;
    makecontext(&co->ctx, (void (*)(void))coro_main_ucontext, 2, (unsigned)(p >> 16 >> 16),
                (unsigned)(p & 0xffffffffu));
#endif
    return 0;
}

int ss__coro_reuse(ss__coro *co, ss__coro_fn fn, void *arg)
{
    if (!co->done)
        return SS_EUSAGE;
#ifdef CORO_TSAN
    __tsan_destroy_fiber(co->fiber);
    co->fiber = __tsan_create_fiber(0);
#endif
    return prepare(co, fn, arg);
}

int ss__coro_new(ss__coro **out, size_t stack_size, ss__coro_fn fn, void *arg)
{
    *out = NULL;
    size_t page = page_size();
    if (stack_size == 0)
        stack_size = SS__CORO_STACK_DEFAULT;
    stack_size = (stack_size + page - 1) & ~(page - 1);
    size_t map_len = stack_size + page;
    /* MAP_NORESERVE: only the pages a handler touches cost memory;
     * MAP_STACK tells the kernel (and THP) what this is. Fresh anonymous
     * pages are zero: the record needs no memset. */
    unsigned char *map = mmap(NULL, map_len, PROT_READ | PROT_WRITE,
                              MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (map == MAP_FAILED)
        return -ENOMEM;
    if (mprotect(map, page, PROT_NONE) < 0) {
        munmap(map, map_len);
        return -ENOMEM;
    }
    uintptr_t rec = ((uintptr_t)(map + map_len) - sizeof(ss__coro)) & ~(uintptr_t)63;
    ss__coro *co = (ss__coro *)rec;
    co->guard = page;
    co->map_len = map_len;
    co->map = map;
    co->lo = map + page;
    co->hi = (unsigned char *)(rec - SS__CORO_EXTRA); /* 64-aligned */
    if (prepare(co, fn, arg) < 0) {
        munmap(map, map_len);
        return -ENOMEM;
    }
#ifdef CORO_TSAN
    co->fiber = __tsan_create_fiber(0);
#endif
    *out = co;
    return 0;
}

void ss__coro_free(ss__coro *co)
{
    if (co == NULL)
        return;
#ifdef CORO_TSAN
    __tsan_destroy_fiber(co->fiber);
#endif
#ifdef CORO_ASAN
    /* one that never ended leaves its frames' redzones poisoned */
    ASAN_UNPOISON_MEMORY_REGION(co->lo, (size_t)(co->hi - co->lo));
#endif
    /* the record goes with the mapping it sits in */
    munmap(co->map, co->map_len);
}
