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

// The vector state of a call from a rewritten site is saved by plain moves (see
// cj_vector_mode) in this part of the frame's XSAVE region, after the XSAVE image.
#define MANUAL 4288                      // FRAME_XSAVE + 4096
#define MANUAL_K 2048
#define MANUAL_VALID 2120

#define SYS_rt_sigreturn 15
#define SYS_arch_prctl 158
#define SYS_getpid 39
#define SYS_clock_gettime 228
#define ARCH_SET_FS 0x1002
#define ARCH_GET_FS 0x1003

// XRSTOR raises #GP unless bytes 8-63 of the XSAVE header are valid (XCOMP_BV as XSAVEC
// wrote it, the reserved bytes 16-63 zero), and XSAVE and XSAVEC write only XSTATE_BV
// (and XCOMP_BV): a frame lies on stack memory whose earlier contents stay, so whatever
// libOS code left there would make the restore fault (seen as a crash in the first
// call's xrstor whenever start-up code happened to leave non-zero bytes there). Cleared
// before every save into a frame.
.macro CLEAR_XSAVE_HEADER base
    movq $0, FRAME_XSAVE+520(\base)
    movq $0, FRAME_XSAVE+528(\base)
    movq $0, FRAME_XSAVE+536(\base)
    movq $0, FRAME_XSAVE+544(\base)
    movq $0, FRAME_XSAVE+552(\base)
    movq $0, FRAME_XSAVE+560(\base)
    movq $0, FRAME_XSAVE+568(\base)
.endm

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
    // A call from a rewritten site (kind FAST) saves its registers with moves, which
    // costs a few nanoseconds where XSAVE and XRSTOR cost over a hundred here; every
    // other entry saves an XSAVE image.
    cmpq $0, FRAME_KIND(%rbx)
    jne 7f
    movzbl cj_vector_mode(%rip), %eax
    testl %eax, %eax
    jz 7f
    // MXCSR and the x87 control word need no copy: libOS code leaves them alone, and
    // cj_switch keeps them per uthread when another thread runs meanwhile.
    leaq MANUAL(%rbx), %rdx
    movq $1, MANUAL_VALID(%rdx)
    cmpl $3, %eax
    je 13f
    cmpl $2, %eax
    je 12f
    movdqu %xmm0, 0(%rdx); movdqu %xmm1, 16(%rdx); movdqu %xmm2, 32(%rdx); movdqu %xmm3, 48(%rdx)
    movdqu %xmm4, 64(%rdx); movdqu %xmm5, 80(%rdx); movdqu %xmm6, 96(%rdx); movdqu %xmm7, 112(%rdx)
    movdqu %xmm8, 128(%rdx); movdqu %xmm9, 144(%rdx); movdqu %xmm10, 160(%rdx); movdqu %xmm11, 176(%rdx)
    movdqu %xmm12, 192(%rdx); movdqu %xmm13, 208(%rdx); movdqu %xmm14, 224(%rdx); movdqu %xmm15, 240(%rdx)
    jmp 6f
12: vmovdqu %ymm0, 0(%rdx); vmovdqu %ymm1, 32(%rdx); vmovdqu %ymm2, 64(%rdx); vmovdqu %ymm3, 96(%rdx)
    vmovdqu %ymm4, 128(%rdx); vmovdqu %ymm5, 160(%rdx); vmovdqu %ymm6, 192(%rdx); vmovdqu %ymm7, 224(%rdx)
    vmovdqu %ymm8, 256(%rdx); vmovdqu %ymm9, 288(%rdx); vmovdqu %ymm10, 320(%rdx); vmovdqu %ymm11, 352(%rdx)
    vmovdqu %ymm12, 384(%rdx); vmovdqu %ymm13, 416(%rdx); vmovdqu %ymm14, 448(%rdx); vmovdqu %ymm15, 480(%rdx)
    vzeroupper
    jmp 6f
13: vmovdqu64 %zmm0, 0(%rdx); vmovdqu64 %zmm1, 64(%rdx); vmovdqu64 %zmm2, 128(%rdx); vmovdqu64 %zmm3, 192(%rdx)
    vmovdqu64 %zmm4, 256(%rdx); vmovdqu64 %zmm5, 320(%rdx); vmovdqu64 %zmm6, 384(%rdx); vmovdqu64 %zmm7, 448(%rdx)
    vmovdqu64 %zmm8, 512(%rdx); vmovdqu64 %zmm9, 576(%rdx); vmovdqu64 %zmm10, 640(%rdx); vmovdqu64 %zmm11, 704(%rdx)
    vmovdqu64 %zmm12, 768(%rdx); vmovdqu64 %zmm13, 832(%rdx); vmovdqu64 %zmm14, 896(%rdx); vmovdqu64 %zmm15, 960(%rdx)
    vmovdqu64 %zmm16, 1024(%rdx); vmovdqu64 %zmm17, 1088(%rdx); vmovdqu64 %zmm18, 1152(%rdx); vmovdqu64 %zmm19, 1216(%rdx)
    vmovdqu64 %zmm20, 1280(%rdx); vmovdqu64 %zmm21, 1344(%rdx); vmovdqu64 %zmm22, 1408(%rdx); vmovdqu64 %zmm23, 1472(%rdx)
    vmovdqu64 %zmm24, 1536(%rdx); vmovdqu64 %zmm25, 1600(%rdx); vmovdqu64 %zmm26, 1664(%rdx); vmovdqu64 %zmm27, 1728(%rdx)
    vmovdqu64 %zmm28, 1792(%rdx); vmovdqu64 %zmm29, 1856(%rdx); vmovdqu64 %zmm30, 1920(%rdx); vmovdqu64 %zmm31, 1984(%rdx)
    kmovq %k0, 2048(%rdx); kmovq %k1, 2056(%rdx); kmovq %k2, 2064(%rdx); kmovq %k3, 2072(%rdx)
    kmovq %k4, 2080(%rdx); kmovq %k5, 2088(%rdx); kmovq %k6, 2096(%rdx); kmovq %k7, 2104(%rdx)
    vzeroupper
    jmp 6f
7:  cmpb $0, cj_vector_mode(%rip)
    je 8f
    movq $0, MANUAL+MANUAL_VALID(%rbx)
8:  CLEAR_XSAVE_HEADER %rbx
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
    call cj_restore_vector_state
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

// Loads the application's vector state from the frame in %rbx: the moves' copy when
// it is valid, else the XSAVE image. Clobbers rax, rdx and every vector register.
    .type cj_restore_vector_state,@function
    .p2align 4
cj_restore_vector_state:
    movzbl cj_vector_mode(%rip), %eax
    testl %eax, %eax
    jz 7f                                // no moves' copy: the image may fill the region
    leaq MANUAL(%rbx), %rdx
    cmpq $0, MANUAL_VALID(%rdx)
    je 7f
    cmpl $3, %eax
    je 13f
    cmpl $2, %eax
    je 12f
    movdqu 0(%rdx), %xmm0; movdqu 16(%rdx), %xmm1; movdqu 32(%rdx), %xmm2; movdqu 48(%rdx), %xmm3
    movdqu 64(%rdx), %xmm4; movdqu 80(%rdx), %xmm5; movdqu 96(%rdx), %xmm6; movdqu 112(%rdx), %xmm7
    movdqu 128(%rdx), %xmm8; movdqu 144(%rdx), %xmm9; movdqu 160(%rdx), %xmm10; movdqu 176(%rdx), %xmm11
    movdqu 192(%rdx), %xmm12; movdqu 208(%rdx), %xmm13; movdqu 224(%rdx), %xmm14; movdqu 240(%rdx), %xmm15
    ret
12: vmovdqu 0(%rdx), %ymm0; vmovdqu 32(%rdx), %ymm1; vmovdqu 64(%rdx), %ymm2; vmovdqu 96(%rdx), %ymm3
    vmovdqu 128(%rdx), %ymm4; vmovdqu 160(%rdx), %ymm5; vmovdqu 192(%rdx), %ymm6; vmovdqu 224(%rdx), %ymm7
    vmovdqu 256(%rdx), %ymm8; vmovdqu 288(%rdx), %ymm9; vmovdqu 320(%rdx), %ymm10; vmovdqu 352(%rdx), %ymm11
    vmovdqu 384(%rdx), %ymm12; vmovdqu 416(%rdx), %ymm13; vmovdqu 448(%rdx), %ymm14; vmovdqu 480(%rdx), %ymm15
    ret
13: vmovdqu64 0(%rdx), %zmm0; vmovdqu64 64(%rdx), %zmm1; vmovdqu64 128(%rdx), %zmm2; vmovdqu64 192(%rdx), %zmm3
    vmovdqu64 256(%rdx), %zmm4; vmovdqu64 320(%rdx), %zmm5; vmovdqu64 384(%rdx), %zmm6; vmovdqu64 448(%rdx), %zmm7
    vmovdqu64 512(%rdx), %zmm8; vmovdqu64 576(%rdx), %zmm9; vmovdqu64 640(%rdx), %zmm10; vmovdqu64 704(%rdx), %zmm11
    vmovdqu64 768(%rdx), %zmm12; vmovdqu64 832(%rdx), %zmm13; vmovdqu64 896(%rdx), %zmm14; vmovdqu64 960(%rdx), %zmm15
    vmovdqu64 1024(%rdx), %zmm16; vmovdqu64 1088(%rdx), %zmm17; vmovdqu64 1152(%rdx), %zmm18; vmovdqu64 1216(%rdx), %zmm19
    vmovdqu64 1280(%rdx), %zmm20; vmovdqu64 1344(%rdx), %zmm21; vmovdqu64 1408(%rdx), %zmm22; vmovdqu64 1472(%rdx), %zmm23
    vmovdqu64 1536(%rdx), %zmm24; vmovdqu64 1600(%rdx), %zmm25; vmovdqu64 1664(%rdx), %zmm26; vmovdqu64 1728(%rdx), %zmm27
    vmovdqu64 1792(%rdx), %zmm28; vmovdqu64 1856(%rdx), %zmm29; vmovdqu64 1920(%rdx), %zmm30; vmovdqu64 1984(%rdx), %zmm31
    kmovq 2048(%rdx), %k0; kmovq 2056(%rdx), %k1; kmovq 2064(%rdx), %k2; kmovq 2072(%rdx), %k3
    kmovq 2080(%rdx), %k4; kmovq 2088(%rdx), %k5; kmovq 2096(%rdx), %k6; kmovq 2104(%rdx), %k7
    ret
7:  movl $-1, %eax
    movl $-1, %edx
    xrstor64 FRAME_XSAVE(%rbx)
    ret
    .size cj_restore_vector_state, .-cj_restore_vector_state

// void cj_materialize_vector_state(cj_syscall_frame *frame): turns the moves' copy of a
// frame's vector state into its XSAVE image (for a signal frame), keeping the caller's
// MXCSR and x87 control word.
    .globl cj_materialize_vector_state
    .type cj_materialize_vector_state,@function
    .p2align 4
cj_materialize_vector_state:
    cmpb $0, cj_vector_mode(%rip)
    je 1f
    leaq MANUAL(%rdi), %rdx
    cmpq $0, MANUAL_VALID(%rdx)
    je 1f
    pushq %rbx
    subq $16, %rsp
    stmxcsr 0(%rsp)
    fnstcw 4(%rsp)
    movq %rdi, %rbx
    call cj_restore_vector_state
    CLEAR_XSAVE_HEADER %rbx
    movl $-1, %eax
    movl $-1, %edx
    cmpb $0, cj_use_xsavec(%rip)
    je 2f
    xsavec64 FRAME_XSAVE(%rbx)
    jmp 3f
2:  xsave64 FRAME_XSAVE(%rbx)
3:  movq $0, MANUAL+MANUAL_VALID(%rbx)
    ldmxcsr 0(%rsp)
    fldcw 4(%rsp)
    addq $16, %rsp
    popq %rbx
1:  ret
    .size cj_materialize_vector_state, .-cj_materialize_vector_state

// Fast path: a rewritten call site jumps to its stub, which does
//     mov $N, %eax; lea -128(%rsp), %rsp; call *slot(%rip); <resume address>; <slot>
// so here (%rsp) points at the resume address and the application's rsp is rsp + 136.
// rcx and r11 are free: the syscall instruction clobbers them anyway.
//
// Leaf calls (cj_set_leaf_calls in sud.c) are answered here, before anything is saved:
// getpid from cj_leaf_pid, clock_gettime of the clocks the vDSO keeps through the
// host's vDSO, whose code uses no TLS and no vector register, so neither %fs nor the
// vector state changes. The selector stays BLOCK (ALLOW only across the vDSO call, for
// its fallback system call) and nothing waits, so the uthread stays on this kthread.
// A kick seen before the return goes the ordinary way (the call is repeated there:
// both are idempotent); one landing in the return's last instructions (the leaf window)
// is finished by the kick handler, which then finds application code.
// rax: the result of call `nr`, (%rsp) the application's flags, 8(%rsp) the stub's
// return address. Back to the resume address with rcx = it and r11 = the flags, as after
// a syscall instruction. From the check of the kicked flag to the jump (the leaf window,
// `which` = 0 for getpid, 1 for clock_gettime) a kick finishes the return itself; one
// that came before it sends the call the ordinary way, whose exit sees the flag.
.macro LEAF_RETURN nr, which
    movq 8(%rsp), %rcx
    movq (%rcx), %rcx
    movq (%rsp), %r11
    .globl cj_leaf_window_start\which
cj_leaf_window_start\which:
    cmpb $0, %gs:AREA_KICKED
    jne 9f
    popfq
    .globl cj_leaf_window_lea\which
cj_leaf_window_lea\which:
    leaq 136(%rsp), %rsp
    .globl cj_leaf_window_end\which
cj_leaf_window_end\which:
    jmp *%rcx
9:  movl $\nr, %eax
    jmp .Lordinary_entry
.endm

    .globl cj_fast_entry
    .type cj_fast_entry,@function
    .p2align 4
cj_fast_entry:
    .cfi_startproc
    .cfi_undefined rip
    pushfq                               // first: the arithmetic below changes the flags
    cmpl $SYS_getpid, %eax
    je .Lleaf_getpid
    cmpl $SYS_clock_gettime, %eax
    je .Lleaf_clock_gettime
.Lordinary_entry:
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

// Here (%rsp) holds the application's flags and 8(%rsp) the stub's return address.
.Lleaf_getpid:
    movl cj_leaf_pid(%rip), %eax
    testl %eax, %eax
    jz 1f
    LEAF_RETURN SYS_getpid, 0
1:  movl $SYS_getpid, %eax
    jmp .Lordinary_entry

// rdi: the clock, rsi: the application's timespec. Clocks 0, 1, 4, 5, 6, 7 (REALTIME,
// MONOTONIC, MONOTONIC_RAW, the coarse ones, BOOTTIME): the per-process and per-thread
// CPU clocks are the libOS's to answer.
.Lleaf_clock_gettime:
    cmpq $7, %rdi
    ja .Lclock_ordinary
    movl $0xf3, %ecx
    btl %edi, %ecx
    jnc .Lclock_ordinary
    movq cj_leaf_clock_gettime(%rip), %rax
    testq %rax, %rax
    jz .Lclock_ordinary
    // The registers a system call keeps and a C call may not: rdi, rsi, rdx, r8-r10.
    movq %rsp, %rcx
    subq $80, %rsp
    andq $-16, %rsp
    movq %rcx, 64(%rsp)
    movq %rdi, 0(%rsp)
    movq %rsi, 8(%rsp)
    movq %rdx, 16(%rsp)
    movq %r8, 24(%rsp)
    movq %r9, 32(%rsp)
    movq %r10, 40(%rsp)
    leaq 48(%rsp), %rsi                  // the vDSO writes here, not to the application
    movb $0, %gs:AREA_SELECTOR           // its fallback system call goes to the kernel
    call *%rax
    movb $1, %gs:AREA_SELECTOR
    testq %rax, %rax
    jnz 1f
    movq 8(%rsp), %rdi
    leaq 48(%rsp), %rsi
    call cj_user_store16                 // 0, or -EFAULT for a bad pointer (as Linux)
    movq 0(%rsp), %rdi
    movq 8(%rsp), %rsi
    movq 16(%rsp), %rdx
    movq 24(%rsp), %r8
    movq 32(%rsp), %r9
    movq 40(%rsp), %r10
    movq 64(%rsp), %rsp
    LEAF_RETURN SYS_clock_gettime, 1
1:  movq 0(%rsp), %rdi
    movq 8(%rsp), %rsi
    movq 16(%rsp), %rdx
    movq 24(%rsp), %r8
    movq 32(%rsp), %r9
    movq 40(%rsp), %r10
    movq 64(%rsp), %rsp
.Lclock_ordinary:
    movl $SYS_clock_gettime, %eax
    jmp .Lordinary_entry

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
    call cj_restore_vector_state
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
