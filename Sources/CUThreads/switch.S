// switch.S: the uthread context switch and the first-entry trampoline (x86-64 SysV).
//
// Saved frame, from the saved stack pointer upward (64 bytes, 16-byte aligned):
//   0: MXCSR (4 bytes), x87 control word (2 bytes), 2 bytes pad
//   8: r15  16: r14  24: r13  32: r12  40: rbx  48: rbp  56: return address
// Only callee-saved state is saved: cj_switch is an ordinary call, so the compiler has
// already spilled everything else.

    .text

// void cj_switch(void **save_sp, void *new_sp, uint8_t *busy_flag)
    .globl cj_switch
    .type cj_switch,@function
    .p2align 4
cj_switch:
    .cfi_startproc
    pushq %rbp
    .cfi_adjust_cfa_offset 8
    pushq %rbx
    .cfi_adjust_cfa_offset 8
    pushq %r12
    .cfi_adjust_cfa_offset 8
    pushq %r13
    .cfi_adjust_cfa_offset 8
    pushq %r14
    .cfi_adjust_cfa_offset 8
    pushq %r15
    .cfi_adjust_cfa_offset 8
    subq $8, %rsp
    .cfi_adjust_cfa_offset 8
    stmxcsr (%rsp)
    fnstcw 4(%rsp)
    movq %rsp, (%rdi)
    // Release the old context: from here another kthread may resume it. x86 keeps the
    // store of the stack pointer ahead of this one.
    movb $0, (%rdx)
    movq %rsi, %rsp
    ldmxcsr (%rsp)
    fldcw 4(%rsp)
    addq $8, %rsp
    .cfi_adjust_cfa_offset -8
    popq %r15
    .cfi_adjust_cfa_offset -8
    popq %r14
    .cfi_adjust_cfa_offset -8
    popq %r13
    .cfi_adjust_cfa_offset -8
    popq %r12
    .cfi_adjust_cfa_offset -8
    popq %rbx
    .cfi_adjust_cfa_offset -8
    popq %rbp
    .cfi_adjust_cfa_offset -8
    ret
    .cfi_endproc
    .size cj_switch, .-cj_switch

// First instructions of every uthread: cj_switch "returns" here with r12 = entry and
// r13 = argument, and rsp 16-byte aligned.
    .globl cj_uthread_trampoline
    .type cj_uthread_trampoline,@function
    .p2align 4
cj_uthread_trampoline:
    .cfi_startproc
    .cfi_undefined rip
    xorl %ebp, %ebp
    movq %r13, %rdi
    callq *%r12
    ud2
    .cfi_endproc
    .size cj_uthread_trampoline, .-cj_uthread_trampoline

    .section .note.GNU-stack,"",@progbits
