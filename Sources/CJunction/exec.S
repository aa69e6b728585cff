// exec.S: the jump into a loaded program, with registers as the kernel leaves them
// after execve (everything zero; rdx = 0 means no rtld_fini for libc to register).

    .text
    .globl cj_enter
    .type cj_enter,@function
    .p2align 4
// void cj_enter(uintptr_t entry /* rdi */, uintptr_t stack_pointer /* rsi */)
cj_enter:
    .cfi_startproc
    .cfi_undefined rip
    movq %rsi, %rsp
    movq %rdi, %r11
    // Default floating-point control state.
    subq $16, %rsp
    movl $0x1f80, (%rsp)
    ldmxcsr (%rsp)
    movw $0x037f, 4(%rsp)
    fldcw 4(%rsp)
    addq $16, %rsp
    cld
    xorl %eax, %eax
    xorl %ebx, %ebx
    xorl %ecx, %ecx
    xorl %edx, %edx
    xorl %esi, %esi
    xorl %edi, %edi
    xorl %ebp, %ebp
    xorl %r8d, %r8d
    xorl %r9d, %r9d
    xorl %r10d, %r10d
    xorl %r12d, %r12d
    xorl %r13d, %r13d
    xorl %r14d, %r14d
    xorl %r15d, %r15d
    jmp *%r11
    .cfi_endproc
    .size cj_enter, .-cj_enter

    .section .note.GNU-stack,"",@progbits
