// registers.c: every general register the ABI says survives a syscall (all but rax,
// rcx, r11), the flags, the vector registers and a leaf function's red zone hold their
// values across system calls made with the raw instruction.
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int check_gprs(void) {
    uint64_t in[12] = {0x1111111111111111, 0x2222222222222222, 0x3333333333333333, 0x4444444444444444,
                       0x5555555555555555, 0x6666666666666666, 0x7777777777777777, 0x8888888888888888,
                       0x9999999999999999, 0xaaaaaaaaaaaaaaaa, 0xbbbbbbbbbbbbbbbb, 0xcccccccccccccccc};
    uint64_t out[12];
    uint64_t flags[2];  // in, out (stored through a register: the asm moves rsp)
    __asm__ volatile(
        "pushq %%rbx\n pushq %%rbp\n pushq %%r12\n pushq %%r13\n pushq %%r14\n pushq %%r15\n"
        "pushq %[flagp]\n pushq %[inp]\n pushq %[outp]\n"
        "movq %[inp], %%rax\n"
        "movq 0(%%rax), %%rbx\n movq 8(%%rax), %%rdx\n movq 16(%%rax), %%rsi\n movq 24(%%rax), %%rdi\n"
        "movq 32(%%rax), %%rbp\n movq 40(%%rax), %%r8\n movq 48(%%rax), %%r9\n movq 56(%%rax), %%r10\n"
        "movq 64(%%rax), %%r12\n movq 72(%%rax), %%r13\n movq 80(%%rax), %%r14\n movq 88(%%rax), %%r15\n"
        "stc\n std\n pushfq\n popq %%rax\n movq %%rax, %%xmm15\n"
        "movl $39, %%eax\n syscall\n"  // getpid
        "pushfq\n cld\n"
        "movq 8(%%rsp), %%rax\n"         // out pointer (after the pushfq)
        "movq %%rbx, 0(%%rax)\n movq %%rdx, 8(%%rax)\n movq %%rsi, 16(%%rax)\n movq %%rdi, 24(%%rax)\n"
        "movq %%rbp, 32(%%rax)\n movq %%r8, 40(%%rax)\n movq %%r9, 48(%%rax)\n movq %%r10, 56(%%rax)\n"
        "movq %%r12, 64(%%rax)\n movq %%r13, 72(%%rax)\n movq %%r14, 80(%%rax)\n movq %%r15, 88(%%rax)\n"
        "popq %%rbx\n"                  // the flags after the call; the flags pointer is at 16(%%rsp)
        "movq 16(%%rsp), %%rcx\n"
        "movq %%rbx, 8(%%rcx)\n movq %%xmm15, %%rbx\n movq %%rbx, 0(%%rcx)\n"
        "addq $24, %%rsp\n"
        "popq %%r15\n popq %%r14\n popq %%r13\n popq %%r12\n popq %%rbp\n popq %%rbx\n"
        :
        : [inp] "r"(in), [outp] "r"(out), [flagp] "r"(flags)
        : "rax", "rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10", "r11", "xmm15", "memory", "cc");
    int bad = memcmp(in, out, sizeof in) != 0;
    // CF (bit 0) and DF (bit 10) must survive; the kernel clears RF/TF only.
    if ((flags[0] & 0x401) != (flags[1] & 0x401)) bad |= 2;
    return bad;
}

static int check_vectors(void) {
    double d[4] = {1.5, -2.25, 3.125, 1e300};
    double r[4];
    __asm__ volatile(
        "movupd 0(%[d]), %%xmm0\n movupd 16(%[d]), %%xmm1\n"
        "movl $39, %%eax\n syscall\n"
        "movupd %%xmm0, 0(%[r])\n movupd %%xmm1, 16(%[r])\n"
        :
        : [d] "r"(d), [r] "r"(r)
        : "rax", "rcx", "r11", "xmm0", "xmm1", "memory");
    return memcmp(d, r, sizeof d) != 0;
}

// A leaf function keeps data in the red zone below its stack pointer across a syscall.
__attribute__((noinline)) static int check_red_zone(void) {
    int ok;
    __asm__ volatile(
        "movq $0x0123456789abcdef, %%rax\n"
        "movq %%rax, -8(%%rsp)\n movq %%rax, -64(%%rsp)\n movq %%rax, -128(%%rsp)\n"
        "movl $39, %%eax\n syscall\n"
        "movq $0x0123456789abcdef, %%rax\n"
        "xorl %[ok], %[ok]\n"
        "cmpq %%rax, -8(%%rsp)\n jne 1f\n cmpq %%rax, -64(%%rsp)\n jne 1f\n cmpq %%rax, -128(%%rsp)\n jne 1f\n"
        "movl $1, %[ok]\n1:\n"
        : [ok] "=r"(ok)
        :
        : "rax", "rcx", "r11", "memory");
    return !ok;
}

int main(void) {
    int bad = 0;
    for (int i = 0; i < 100; i++) bad |= check_gprs() | check_vectors() << 2 | check_red_zone() << 3;
    printf("registers %s (code %d)\n", bad ? "CLOBBERED" : "preserved", bad);
    return bad;
}
