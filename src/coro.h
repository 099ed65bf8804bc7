/* SPDX-License-Identifier: MIT */
/*
 * coro.h — coroutines (coro.c, coro_switch.S) and the scheduler that runs
 * them on an ss_loop (coro_sched.c): what the coroutine model is made of.
 * Private.
 *
 * A coroutine is a function running on a stack of its own (mmap'd, with a
 * PROT_NONE guard page below it), resumed by its thread's loop and giving
 * the thread back when it would block. It never moves to another thread.
 * Blocking calls of the library (ss__wait_fd, ss_sleep) check
 * ss__coro_current(): outside a coroutine they poll() as before; inside,
 * they wait on the loop and the thread serves other coroutines meanwhile.
 */
#ifndef SS_CORO_H
#define SS_CORO_H

#include "internal.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <poll.h>

typedef struct ss__coro ss__coro;
typedef struct ss__sched ss__sched;
typedef void (*ss__coro_fn)(void *arg);

/* Stack sizes: the default, and the bounds ss_server_opts.coro_stack_size
 * is held to (rounded up to whole pages). */
#define SS__CORO_STACK_DEFAULT (64 * 1024)
#define SS__CORO_STACK_MIN (16 * 1024)
#define SS__CORO_STACK_MAX (64 * 1024 * 1024)

/* ---- coro.c: the coroutine itself ---------------------------------------- */

/*
 * Make this thread able to run coroutines: an alternate signal stack, so a
 * coroutine that overflows into its guard page gets a clear report instead
 * of a silent crash, and (once per process) the SIGSEGV handler that writes
 * it. Call on the thread, before its first resume; ss__coro_thread_fini
 * before it exits. Returns 0 or a negative errno.
 */
int ss__coro_thread_init(void);
void ss__coro_thread_fini(void);

/* A coroutine that will run fn(arg) at its first resume, on a stack of
 * `stack_size` usable bytes (0 = the default) plus the guard page. `fn`
 * returning ends it. Returns 0 or -ENOMEM. */
int ss__coro_new(ss__coro **out, size_t stack_size, ss__coro_fn fn, void *arg);
/* Run `co` until it yields or ends; true when it has ended (free it then).
 * From the thread's own stack only (not from inside a coroutine). */
bool ss__coro_resume(ss__coro *co);
/* From inside a coroutine: give the thread back to whoever resumed it. */
void ss__coro_yield(void);
/* The coroutine running on this thread, or NULL. */
ss__coro *ss__coro_current(void);
/* Start an ended coroutine again on the same stack with a new fn(arg):
 * a stack cache without munmap/mmap. 0 or SS_EUSAGE (it has not ended). */
int ss__coro_reuse(ss__coro *co, ss__coro_fn fn, void *arg);
/* Free an ended coroutine (or one that will never be resumed again). */
void ss__coro_free(ss__coro *co);
size_t ss__coro_stack_size(const ss__coro *co);
/* Bytes of the coroutine's own for its scheduler, in its mapping next to
 * its record (the page its stack's first frames use): the wait state lives
 * there instead of on the heap, so a switch touches one page fewer. Zeroed
 * by ss__coro_new; what a reused coroutine had there stays. */
#define SS__CORO_EXTRA 256
void *ss__coro_extra(ss__coro *co);
/* The scheduler's slot in the coroutine (coro_sched.c's wait state). */
void ss__coro_set_data(ss__coro *co, void *data);
void *ss__coro_data(const ss__coro *co);

/* ---- coro_sched.c: coroutines on an ss_loop -------------------------------- */

/* Make the scheduler of `loop` on the loop's own thread (calls
 * ss__coro_thread_init). Coroutines spawned on it run on that thread. */
int ss__sched_new(ss__sched **out, ss_loop *loop, size_t stack_size);
/* Free it: coroutines still suspended are freed without running further
 * (what they held is lost: call it once none is left). Loop thread. */
void ss__sched_free(ss__sched *s);
/* Start fn(arg) as a coroutine now, until its first wait. Returns 0 or
 * -ENOMEM (fn was not called). Loop thread, outside any coroutine. */
int ss__sched_spawn(ss__sched *s, ss__coro_fn fn, void *arg);
/* Coroutines alive on this scheduler. */
size_t ss__sched_live(const ss__sched *s);

/* The running coroutine's own connection: waits on `fd` leave their
 * (edge-triggered) registration on the loop for the next wait instead of
 * one per wait, until readiness nobody waits for comes or
 * ss__coro_home_fd(-1) (which removes it: call that while the fd is still
 * open, before closing it). Inside a coroutine only. */
void ss__coro_home_fd(int fd);

/* ss__wait_fd, ss_sleep and ss_poll inside a coroutine: wait on the loop. */
int ss__coro_wait_fd(int fd, short events, int64_t deadline);
int ss__coro_sleep_ms(int64_t ms);
int ss__coro_poll(struct pollfd *fds, nfds_t nfds, int timeout_ms);

#endif
