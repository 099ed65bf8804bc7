/* SPDX-License-Identifier: MIT */
/*
 * coro_switch.S — the coroutine context switch (src/coro.c), x86-64 and
 * aarch64. Everything the C calling convention says a callee must keep is
 * pushed on the current stack, the stack pointer is stored through the first
 * argument, the second argument becomes the stack pointer, and the same
 * registers are popped from there: a switch is a function call that returns
 * on another stack.
 *
 *   void ss__coro_switch(void **save_sp, void *next_sp);
 *
 * A new stack is prepared by coro.c to look like one that was switched away
 * from, with ss__coro_trampoline as the return address and the entry point
 * and its argument in two callee-saved registers (x86-64 r12/r13, aarch64
 * x19/x20). The trampoline calls entry(arg), which never returns.
 *
 * Other architectures use ucontext (coro.c), and this file is empty there.
 */
#if defined(__x86_64__) && !defined(SS_CORO_UCONTEXT)

    .text
    .globl  ss__coro_switch
    .hidden ss__coro_switch
    .type   ss__coro_switch, @function
    .p2align 4
ss__coro_switch:
    .cfi_startproc
    pushq   %rbp
    pushq   %rbx
    pushq   %r12
    pushq   %r13
    pushq   %r14
    pushq   %r15
    subq    $8, %rsp            /* MXCSR and the x87 control word are     */
    stmxcsr (%rsp)              /* callee-saved too (SysV ABI 3.2.1)      */
    fnstcw  4(%rsp)
    movq    %rsp, (%rdi)
    movq    %rsi, %rsp
    ldmxcsr (%rsp)
    fldcw   4(%rsp)
    addq    $8, %rsp
    popq    %r15
    popq    %r14
    popq    %r13
    popq    %r12
    popq    %rbx
    popq    %rbp
    ret
    .cfi_endproc
    .size   ss__coro_switch, .-ss__coro_switch

    .globl  ss__coro_trampoline
    .hidden ss__coro_trampoline
    .type   ss__coro_trampoline, @function
    .p2align 4
ss__coro_trampoline:
    .cfi_startproc
    .cfi_undefined rip          /* the outermost frame: unwinders stop here */
    movq    %r13, %rdi
    callq   *%r12
    ud2                         /* entry never returns */
    .cfi_endproc
    .size   ss__coro_trampoline, .-ss__coro_trampoline

#elif defined(__aarch64__) && !defined(SS_CORO_UCONTEXT)

    .text
    .globl  ss__coro_switch
    .hidden ss__coro_switch
    .type   ss__coro_switch, %function
    .p2align 4
ss__coro_switch:
    .cfi_startproc
    sub     sp, sp, #160
    stp     x19, x20, [sp, #0]
    stp     x21, x22, [sp, #16]
    stp     x23, x24, [sp, #32]
    stp     x25, x26, [sp, #48]
    stp     x27, x28, [sp, #64]
    stp     x29, x30, [sp, #80]
    stp     d8, d9, [sp, #96]   /* the low halves of v8-v15 (AAPCS64) */
    stp     d10, d11, [sp, #112]
    stp     d12, d13, [sp, #128]
    stp     d14, d15, [sp, #144]
    mov     x2, sp
    str     x2, [x0]
    mov     sp, x1
    ldp     x19, x20, [sp, #0]
    ldp     x21, x22, [sp, #16]
    ldp     x23, x24, [sp, #32]
    ldp     x25, x26, [sp, #48]
    ldp     x27, x28, [sp, #64]
    ldp     x29, x30, [sp, #80]
    ldp     d8, d9, [sp, #96]
    ldp     d10, d11, [sp, #112]
    ldp     d12, d13, [sp, #128]
    ldp     d14, d15, [sp, #144]
    add     sp, sp, #160
    ret                         /* to x30 */
    .cfi_endproc
    .size   ss__coro_switch, .-ss__coro_switch

    .globl  ss__coro_trampoline
    .hidden ss__coro_trampoline
    .type   ss__coro_trampoline, %function
    .p2align 4
ss__coro_trampoline:
    .cfi_startproc
    .cfi_undefined x30
    mov     x0, x20
    blr     x19
    brk     #0                  /* entry never returns */
    .cfi_endproc
    .size   ss__coro_trampoline, .-ss__coro_trampoline

#endif

/* no executable stack for the objects this file is linked with */
#if defined(__linux__) && defined(__ELF__)
    .section .note.GNU-stack, "", %progbits
#endif
