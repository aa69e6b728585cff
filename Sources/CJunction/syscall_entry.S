// syscall_entry.S: the code that runs between application code and the libOS. It lives
// in section "cj_libos_text", the range given to Syscall User Dispatch as always
// allowed, so its own system calls (rt_sigreturn, arch_prctl) never trap.
//
// Trap path: the SIGSYS handler (sud.c) copies the application's registers into a
// cj_syscall_frame on the uthread's libOS stack and returns from the signal into
// cj_syscall_entry with rsp = that frame. cj_syscall_entry saves the vector state, loads
// the libOS %fs, calls the dispatcher, and returns to the application by restoring
// every register itself (no sigreturn, nothing pushed on the application's stack).

#define FRAME_RAX 0
#define FRAME_RBX 8
#define FRAME_RCX 16
#define FRAME_RDX 24
#define FRAME_RSI 32
#define FRAME_RDI 40
#define FRAME_RBP 48
#define FRAME_RSP 56
#define FRAME_R8 64
#define FRAME_R9 72
#define FRAME_R10 80
#define FRAME_R11 88
#define FRAME_R12 96
#define FRAME_R13 104
#define FRAME_R14 112
#define FRAME_R15 120
#define FRAME_RIP 128
#define FRAME_RFLAGS 136
#define FRAME_FS 144
#define FRAME_XSAVE 192

#define AREA_CURRENT 16
#define AREA_LIBOS_FS 72
#define AREA_JUMP 80
#define AREA_SELECTOR 88
#define AREA_FSGSBASE 89
#define AREA_KICKED 90
#define FRAME_KIND 160
#define ENTRY_SIGNAL 3
#define UT_SYSCALL_STACK 160

#define SYS_rt_sigreturn 15
#define SYS_arch_prctl 158
#define ARCH_SET_FS 0x1002
#define ARCH_GET_FS 0x1003

    .section cj_libos_text, "ax", @progbits

// The signal restorer: must be inside the allowed range, since the selector may be
// BLOCK when a signal returns.
    .globl cj_sigreturn_restorer
    .type cj_sigreturn_restorer,@function
    .p2align 4
cj_sigreturn_restorer:
    movl $SYS_rt_sigreturn, %eax
    syscall
    ud2
    .size cj_sigreturn_restorer, .-cj_sigreturn_restorer

// Entered with rsp = cj_syscall_frame (64-byte aligned), the application's vector
// state live, the application's %fs, selector ALLOW.
    .globl cj_syscall_entry
    .type cj_syscall_entry,@function
    .p2align 4
cj_syscall_entry:
    .cfi_startproc
    .cfi_undefined rip
    cld                                  // sigreturn restored the application's DF; C needs it clear
    movq %rsp, %rbx                      // rbx: the frame (callee-saved across the call)
    // Save the application's %fs base and load the libOS's.
    cmpb $0, %gs:AREA_FSGSBASE
    je 1f
    rdfsbase %rax
    movq %rax, FRAME_FS(%rbx)
    movq %gs:AREA_LIBOS_FS, %rax
    wrfsbase %rax
    jmp 2f
1:  movl $SYS_arch_prctl, %eax
    movl $ARCH_GET_FS, %edi
    leaq FRAME_FS(%rbx), %rsi
    syscall
    movl $SYS_arch_prctl, %eax
    movl $ARCH_SET_FS, %edi
    movq %gs:AREA_LIBOS_FS, %rsi
    syscall
2:  // Save every extended state component the kernel enabled: XSAVEC where the CPU
    // has it (components in their initial state, often all of AVX-512, are skipped).
.Lsave_vector_state:
    movl $-1, %eax
    movl $-1, %edx
    cmpb $0, cj_use_xsavec(%rip)
    je 5f
    xsavec64 FRAME_XSAVE(%rbx)
    jmp 6f
5:  xsave64 FRAME_XSAVE(%rbx)
6:
    // Call the dispatcher below the frame (16-byte aligned).
    leaq -64(%rbx), %rsp
    andq $-16, %rsp
    movq %rbx, %rdi
    call cj_dispatch_syscall
    movq %rax, FRAME_RAX(%rbx)
    // The uthread may have moved to another kthread while it was parked: every %gs
    // access below is to the kthread it runs on now.
    movl $-1, %eax
    movl $-1, %edx
    xrstor64 FRAME_XSAVE(%rbx)
.Lexit_to_application:
    // Restore the application's %fs.
    cmpb $0, %gs:AREA_FSGSBASE
    je 3f
    movq FRAME_FS(%rbx), %rax
    wrfsbase %rax
    jmp 4f
3:  movl $SYS_arch_prctl, %eax
    movl $ARCH_SET_FS, %edi
    movq FRAME_FS(%rbx), %rsi
    syscall
4:  movq %rbx, %rsp
    movq FRAME_RIP(%rbx), %rax
    movq %rax, %gs:AREA_JUMP
    movb $1, %gs:AREA_SELECTOR           // BLOCK: application code traps again
    // From here to the jump, the application's state is all in the frame (and its
    // vector state and %fs are live): a kick landing here re-enters at
    // cj_reenter_from_exit (sud.c checks this window); one that landed before left the
    // kicked flag.
    .globl cj_exit_window_start
cj_exit_window_start:
    cmpb $0, %gs:AREA_KICKED
    jne .Lkicked
    // Flags (popfq needs a stack: the libOS one, below the frame), then the rest.
    pushq FRAME_RFLAGS(%rbx)
    popfq
    movq FRAME_RAX(%rbx), %rax
    movq FRAME_RCX(%rbx), %rcx
    movq FRAME_RDX(%rbx), %rdx
    movq FRAME_RSI(%rbx), %rsi
    movq FRAME_RDI(%rbx), %rdi
    movq FRAME_RBP(%rbx), %rbp
    movq FRAME_R8(%rbx), %r8
    movq FRAME_R9(%rbx), %r9
    movq FRAME_R10(%rbx), %r10
    movq FRAME_R11(%rbx), %r11
    movq FRAME_R12(%rbx), %r12
    movq FRAME_R13(%rbx), %r13
    movq FRAME_R14(%rbx), %r14
    movq FRAME_R15(%rbx), %r15
    movq FRAME_RSP(%rbx), %rsp
    movq FRAME_RBX(%rbx), %rbx
    .globl cj_exit_window_end
cj_exit_window_end:
    jmp *%gs:AREA_JUMP
.Lkicked:
    movb $0, %gs:AREA_KICKED
    movb $0, %gs:AREA_SELECTOR
    movq %rbx, %rsp
    jmp cj_reenter_from_exit
    .cfi_endproc
    .size cj_syscall_entry, .-cj_syscall_entry

// Re-entry from the exit path with rsp = the frame, which holds the application's
// registers and %fs; its vector state is live; selector ALLOW. The frame becomes a
// signal arrival (pending signals are delivered) and leaves through the exit path.
    .globl cj_reenter_from_exit
    .type cj_reenter_from_exit,@function
    .p2align 4
cj_reenter_from_exit:
    .cfi_startproc
    .cfi_undefined rip
    cld
    movq %rsp, %rbx
    movq $ENTRY_SIGNAL, FRAME_KIND(%rbx)
    cmpb $0, %gs:AREA_FSGSBASE
    je 1f
    movq %gs:AREA_LIBOS_FS, %rax
    wrfsbase %rax
    jmp .Lsave_vector_state
1:  movl $SYS_arch_prctl, %eax
    movl $ARCH_SET_FS, %edi
    movq %gs:AREA_LIBOS_FS, %rsi
    syscall
    jmp .Lsave_vector_state
    .cfi_endproc
    .size cj_reenter_from_exit, .-cj_reenter_from_exit

// Fast path: a rewritten call site jumps to its stub, which does
//     mov $N, %eax; lea -128(%rsp), %rsp; call *slot(%rip); <resume address>; <slot>
// so here (%rsp) points at the resume address and the application's rsp is rsp + 136.
// rcx and r11 are free: the syscall instruction clobbers them anyway.
    .globl cj_fast_entry
    .type cj_fast_entry,@function
    .p2align 4
cj_fast_entry:
    .cfi_startproc
    .cfi_undefined rip
    pushfq                               // first: the arithmetic below changes the flags
    movb $0, %gs:AREA_SELECTOR           // ALLOW: the libOS's own calls go to the kernel
    movq %gs:AREA_CURRENT, %rcx
    movq UT_SYSCALL_STACK(%rcx), %rcx
    subq $(192 + 8192), %rcx
    andq $-64, %rcx
    movq %rax, FRAME_RAX(%rcx)
    movq %rax, 152(%rcx)                 // nr
    movq %rbx, FRAME_RBX(%rcx)
    movq %rdx, FRAME_RDX(%rcx)
    movq %rsi, FRAME_RSI(%rcx)
    movq %rdi, FRAME_RDI(%rcx)
    movq %rbp, FRAME_RBP(%rcx)
    movq %r8, FRAME_R8(%rcx)
    movq %r9, FRAME_R9(%rcx)
    movq %r10, FRAME_R10(%rcx)
    movq %r12, FRAME_R12(%rcx)
    movq %r13, FRAME_R13(%rcx)
    movq %r14, FRAME_R14(%rcx)
    movq %r15, FRAME_R15(%rcx)
    popq %r11
    movq %r11, FRAME_RFLAGS(%rcx)
    movq %r11, FRAME_R11(%rcx)           // as after a real syscall: r11 = rflags
    movq (%rsp), %r11
    movq (%r11), %r11
    movq %r11, FRAME_RIP(%rcx)
    movq %r11, FRAME_RCX(%rcx)           // and rcx = the return address
    leaq 136(%rsp), %r11
    movq %r11, FRAME_RSP(%rcx)
    movq $0, 160(%rcx)                   // not from a trap
    movq %rcx, %rsp
    jmp cj_syscall_entry
    .cfi_endproc
    .size cj_fast_entry, .-cj_fast_entry

// void cj_resume_application(cj_syscall_frame *source): a new application thread
// (clone) starts here on its uthread: the frame (with its XSAVE area) is copied below
// the current stack, the source buffer is freed, and the thread returns to application
// code as if from the system call.
    .globl cj_resume_application
    .type cj_resume_application,@function
    .p2align 4
cj_resume_application:
    .cfi_startproc
    .cfi_undefined rip
    movq %gs:AREA_CURRENT, %rax
    leaq -128(%rsp), %rcx
    andq $-64, %rcx
    movq %rcx, UT_SYSCALL_STACK(%rax)
    // The frame goes where the SIGSYS handler would put it.
    subq $(192 + 8192), %rcx
    andq $-64, %rcx
    movq %rcx, %rbx
    movq %rdi, %r12                      // source, freed after the copy
    movq %rdi, %rsi
    movq %rbx, %rdi
    movq $(192 + 8192), %rcx
    rep movsb
    leaq -64(%rbx), %rsp
    andq $-16, %rsp
    movq %r12, %rdi
    call free
    movl $-1, %eax
    movl $-1, %edx
    xrstor64 FRAME_XSAVE(%rbx)
    jmp .Lexit_to_application
    .cfi_endproc
    .size cj_resume_application, .-cj_resume_application

// void cj_enter_application(uintptr_t entry, uintptr_t stack_pointer)
    .globl cj_enter_application
    .type cj_enter_application,@function
    .p2align 4
cj_enter_application:
    .cfi_startproc
    .cfi_undefined rip
    // Everything below the current stack pointer is free for system calls from now on.
    movq %gs:AREA_CURRENT, %rax
    leaq -128(%rsp), %rcx
    andq $-64, %rcx
    movq %rcx, UT_SYSCALL_STACK(%rax)
    // From here application code traps; cj_enter (outside this section) makes no
    // system call before it jumps.
    movb $1, %gs:AREA_SELECTOR
    jmp cj_enter
    .cfi_endproc
    .size cj_enter_application, .-cj_enter_application

    .section .note.GNU-stack,"",@progbits
