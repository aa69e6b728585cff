// user_access.S: touching application memory from the libOS without faulting the
// instance. Each routine is a leaf that pushes nothing; a fault inside the range
// cj_user_access_start..end is turned by the fault handler (sud.c) into a return of
// -EFAULT from the routine, as Linux's exception tables do for copy_from_user.

    .text
    .globl cj_user_access_start
cj_user_access_start:

// int64_t cj_probe_user(uintptr_t address, size_t length, int write): touches one byte
// of every page of [address, address + length) (a locked add of zero to test writes:
// atomic, so it loses no concurrent store) and returns 0, or -EFAULT.
    .globl cj_probe_user
    .type cj_probe_user,@function
    .p2align 4
cj_probe_user:
    testq %rsi, %rsi
    jz 3f
    leaq -1(%rdi,%rsi), %rcx             // the last byte
    andq $-4096, %rcx                    // its page
1:  testl %edx, %edx
    jnz 4f
    movb (%rdi), %al
    jmp 5f
4:  lock addb $0, (%rdi)
5:  andq $-4096, %rdi
    cmpq %rcx, %rdi
    jae 3f
    addq $4096, %rdi
    jmp 1b
3:  xorl %eax, %eax
    ret
    .size cj_probe_user, .-cj_probe_user

// int64_t cj_user_strnlen(const char *s, size_t max): the length of a NUL-terminated
// string of at most max bytes (max if no NUL comes first), or -EFAULT.
    .globl cj_user_strnlen
    .type cj_user_strnlen,@function
    .p2align 4
cj_user_strnlen:
    xorl %eax, %eax
1:  cmpq %rsi, %rax
    jae 2f
    cmpb $0, (%rdi,%rax)
    je 2f
    incq %rax
    jmp 1b
2:  ret
    .size cj_user_strnlen, .-cj_user_strnlen

// int64_t cj_user_store16(void *dst, const void *src): copies 16 bytes (a timespec) to
// application memory; 0 or -EFAULT. Uses rax only (the leaf calls rely on it).
    .globl cj_user_store16
    .type cj_user_store16,@function
    .p2align 4
cj_user_store16:
    movq 0(%rsi), %rax
    movq %rax, 0(%rdi)
    movq 8(%rsi), %rax
    movq %rax, 8(%rdi)
    xorl %eax, %eax
    ret
    .size cj_user_store16, .-cj_user_store16

    .globl cj_user_access_end
cj_user_access_end:

// Where a faulting access above continues: the routine returns -EFAULT.
    .globl cj_user_access_fault
    .type cj_user_access_fault,@function
cj_user_access_fault:
    movq $-14, %rax
    ret
    .size cj_user_access_fault, .-cj_user_access_fault

    .section .note.GNU-stack,"",@progbits
