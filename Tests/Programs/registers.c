// registers.c: every general register the ABI says survives a syscall (all but rax,
// rcx, r11), the flags, the vector registers and a leaf function's red zone hold their
// values across system calls made with the raw instruction.
#include <fcntl.h>
#include <pthread.h>
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

// All of zmm0-31 (or ymm0-15 without AVX-512) and the mask registers survive a
// syscall: a cheap one, one whose handler copies 64 KiB (the libOS's memcpy may use
// vector registers), and a blocking read during which another thread (on the same
// kthread under `--kthreads 1`) fills every vector register with its own values.
static int pipe_fds[2];
static volatile int filler_ready;

__attribute__((target("avx512f"))) static void fill_zmm(uint8_t seed) {
    uint8_t buf[64];
    memset(buf, seed, sizeof buf);
#define LOAD(n) __asm__ volatile("vmovdqu64 %0, %%zmm" #n :: "m"(buf) : "xmm" #n);
    LOAD(0) LOAD(1) LOAD(2) LOAD(3) LOAD(4) LOAD(5) LOAD(6) LOAD(7) LOAD(8) LOAD(9) LOAD(10) LOAD(11) LOAD(12)
    LOAD(13) LOAD(14) LOAD(15) LOAD(16) LOAD(17) LOAD(18) LOAD(19) LOAD(20) LOAD(21) LOAD(22) LOAD(23) LOAD(24)
    LOAD(25) LOAD(26) LOAD(27) LOAD(28) LOAD(29) LOAD(30) LOAD(31)
#undef LOAD
    uint64_t k = 0x0101010101010101ull * seed;
    __asm__ volatile("kmovq %0, %%k1; kmovq %0, %%k2; kmovq %0, %%k7" :: "r"(k));
}

__attribute__((target("avx512f"))) static int zmm_hold(uint8_t seed) {
    uint8_t out[32][64];
#define STORE(n) __asm__ volatile("vmovdqu64 %%zmm" #n ", %0" : "=m"(out[n]));
    STORE(0) STORE(1) STORE(2) STORE(3) STORE(4) STORE(5) STORE(6) STORE(7) STORE(8) STORE(9) STORE(10) STORE(11)
    STORE(12) STORE(13) STORE(14) STORE(15) STORE(16) STORE(17) STORE(18) STORE(19) STORE(20) STORE(21) STORE(22)
    STORE(23) STORE(24) STORE(25) STORE(26) STORE(27) STORE(28) STORE(29) STORE(30) STORE(31)
#undef STORE
    uint64_t k1, k2, k7;
    __asm__ volatile("kmovq %%k1, %0; kmovq %%k2, %1; kmovq %%k7, %2" : "=r"(k1), "=r"(k2), "=r"(k7));
    for (int r = 0; r < 32; r++)
        for (int b = 0; b < 64; b++)
            if (out[r][b] != seed) return 1;
    uint64_t k = 0x0101010101010101ull * seed;
    return k1 != k || k2 != k || k7 != k;
}

static void *filler(void *arg) {
    (void)arg;
    fill_zmm(0x5a);
    filler_ready = 1;
    for (volatile int i = 0; i < 100000; i++) {}
    fill_zmm(0x5a);
    char c = 'x';
    if (write(pipe_fds[1], &c, 1) != 1) return NULL;
    return NULL;
}

__attribute__((target("avx512f"))) static int check_wide_vectors(void) {
    static char big[65536];
    int fd = open("/dev/zero", O_RDONLY);
    int bad = 0;
    fill_zmm(0xa5);
    __asm__ volatile("movl $39, %%eax\n syscall" ::: "rax", "rcx", "r11", "memory");
    bad |= zmm_hold(0xa5);
    fill_zmm(0x3c);
    long n;
    // `mov $0, %eax; syscall`: the form a rewritten site has (a compiler would use xor).
    __asm__ volatile("movl $0, %%eax\n syscall" : "=a"(n) : "D"(fd), "S"(big), "d"(sizeof big) : "rcx", "r11", "memory");
    bad |= zmm_hold(0x3c) | (n != (long)sizeof big);
    close(fd);
    // A blocking read while another thread fills the registers.
    if (pipe(pipe_fds) != 0) return 1;
    pthread_t t;
    pthread_create(&t, NULL, filler, NULL);
    char c;
    fill_zmm(0xc3);
    __asm__ volatile("movl $0, %%eax\n syscall" : "=a"(n) : "D"(pipe_fds[0]), "S"(&c), "d"(1) : "rcx", "r11", "memory");
    bad |= zmm_hold(0xc3) | (n != 1);
    pthread_join(t, NULL);
    close(pipe_fds[0]);
    close(pipe_fds[1]);
    return bad;
}

int main(void) {
    int bad = 0;
    for (int i = 0; i < 100; i++) bad |= check_gprs() | check_vectors() << 2 | check_red_zone() << 3;
    if (__builtin_cpu_supports("avx512f"))
        for (int i = 0; i < 20; i++) bad |= check_wide_vectors() << 4;
    printf("registers %s (code %d)\n", bad ? "CLOBBERED" : "preserved", bad);
    return bad;
}
