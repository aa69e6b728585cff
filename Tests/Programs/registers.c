// registers.c: every general register the ABI says survives a syscall (all but rax,
// rcx, r11), the flags, the vector registers and a leaf function's red zone hold their
// values across system calls made with the raw instruction; leaf calls from rewritten
// sites (getpid, clock_gettime) answer as Linux does, also in a forked child.
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

// check_gprs_NAME(rdi, rsi): call NR from a `mov $NR, %eax; syscall` site (rewritten
// after its first call), every other register, CF and DF compared after it.
#define CHECK_GPRS(name, nr) \
static int check_gprs_##name(uint64_t rdi, uint64_t rsi) { \
    uint64_t in[12] = {0x1111111111111111, 0x2222222222222222, 0x3333333333333333, 0x4444444444444444, \
                       0x5555555555555555, 0x6666666666666666, 0x7777777777777777, 0x8888888888888888, \
                       0x9999999999999999, 0xaaaaaaaaaaaaaaaa, 0xbbbbbbbbbbbbbbbb, 0xcccccccccccccccc}; \
    in[2] = rsi; \
    in[3] = rdi; \
    uint64_t out[12]; \
    uint64_t flags[2];  /* in, out (stored through a register: the asm moves rsp) */ \
    __asm__ volatile( \
        "pushq %%rbx\n pushq %%rbp\n pushq %%r12\n pushq %%r13\n pushq %%r14\n pushq %%r15\n" \
        "pushq %[flagp]\n pushq %[inp]\n pushq %[outp]\n" \
        "movq %[inp], %%rax\n" \
        "movq 0(%%rax), %%rbx\n movq 8(%%rax), %%rdx\n movq 16(%%rax), %%rsi\n movq 24(%%rax), %%rdi\n" \
        "movq 32(%%rax), %%rbp\n movq 40(%%rax), %%r8\n movq 48(%%rax), %%r9\n movq 56(%%rax), %%r10\n" \
        "movq 64(%%rax), %%r12\n movq 72(%%rax), %%r13\n movq 80(%%rax), %%r14\n movq 88(%%rax), %%r15\n" \
        "stc\n std\n pushfq\n popq %%rax\n movq %%rax, %%xmm15\n" \
        "movl $" #nr ", %%eax\n syscall\n" \
        "pushfq\n cld\n" \
        "movq 8(%%rsp), %%rax\n"         /* out pointer (after the pushfq) */ \
        "movq %%rbx, 0(%%rax)\n movq %%rdx, 8(%%rax)\n movq %%rsi, 16(%%rax)\n movq %%rdi, 24(%%rax)\n" \
        "movq %%rbp, 32(%%rax)\n movq %%r8, 40(%%rax)\n movq %%r9, 48(%%rax)\n movq %%r10, 56(%%rax)\n" \
        "movq %%r12, 64(%%rax)\n movq %%r13, 72(%%rax)\n movq %%r14, 80(%%rax)\n movq %%r15, 88(%%rax)\n" \
        "popq %%rbx\n"                  /* the flags after the call; the flags pointer is at 16(%%rsp) */ \
        "movq 16(%%rsp), %%rcx\n" \
        "movq %%rbx, 8(%%rcx)\n movq %%xmm15, %%rbx\n movq %%rbx, 0(%%rcx)\n" \
        "addq $24, %%rsp\n" \
        "popq %%r15\n popq %%r14\n popq %%r13\n popq %%r12\n popq %%rbp\n popq %%rbx\n" \
        : \
        : [inp] "r"(in), [outp] "r"(out), [flagp] "r"(flags) \
        : "rax", "rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10", "r11", "xmm15", "memory", "cc"); \
    int bad = memcmp(in, out, sizeof in) != 0; \
    /* CF (bit 0) and DF (bit 10) must survive; the kernel clears RF/TF only. */ \
    if ((flags[0] & 0x401) != (flags[1] & 0x401)) bad |= 2; \
    return bad; \
}

CHECK_GPRS(getpid, 39)          // a leaf call from a rewritten site
CHECK_GPRS(clock_gettime, 228)  // a leaf call (clocks the vDSO keeps) or the ordinary path
CHECK_GPRS(getppid, 110)        // the ordinary path

static struct timespec gprs_ts;

static int check_gprs(void) {
    return check_gprs_getpid(0x4444444444444444, 0x3333333333333333) |
           check_gprs_getppid(0x4444444444444444, 0x3333333333333333) |
           check_gprs_clock_gettime(CLOCK_MONOTONIC, (uint64_t)(uintptr_t)&gprs_ts) |
           check_gprs_clock_gettime(CLOCK_REALTIME_COARSE, (uint64_t)(uintptr_t)&gprs_ts) |
           check_gprs_clock_gettime(CLOCK_PROCESS_CPUTIME_ID, (uint64_t)(uintptr_t)&gprs_ts) |
           check_gprs_clock_gettime(0x4444444444444444, 0x3333333333333333);  // EINVAL
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

// clock_gettime from a leaf function keeps its red zone too (the clock leaf calls the
// vDSO below it).
__attribute__((noinline)) static int check_red_zone_clock(void) {
    int ok;
    static struct timespec ts;  // not on the stack: a leaf function may keep it in its red zone
    __asm__ volatile(
        "movq $0x0123456789abcdef, %%rax\n"
        "movq %%rax, -8(%%rsp)\n movq %%rax, -64(%%rsp)\n movq %%rax, -128(%%rsp)\n"
        "movl $1, %%edi\n"
        "movl $228, %%eax\n syscall\n"
        "movq $0x0123456789abcdef, %%rax\n"
        "xorl %[ok], %[ok]\n"
        "cmpq %%rax, -8(%%rsp)\n jne 1f\n cmpq %%rax, -64(%%rsp)\n jne 1f\n cmpq %%rax, -128(%%rsp)\n jne 1f\n"
        "movl $1, %[ok]\n1:\n"
        : [ok] "=r"(ok)
        : "S"(&ts)
        : "rax", "rcx", "rdi", "r11", "memory");
    return !ok;
}

// ymm0-15 (AVX2 without AVX-512) survive a leaf call, an ordinary one and a 64 KiB read:
// loaded, the call made and stored in one asm statement (a compiler may put vzeroupper
// at the end of any function that uses ymm registers).
#define YMM_ALL(op) op(0) op(1) op(2) op(3) op(4) op(5) op(6) op(7) op(8) op(9) op(10) op(11) op(12) op(13) op(14) op(15)
#define YMM_LOAD(n) "vmovdqu (%%r12), %%ymm" #n "\n"
#define YMM_STORE(n) "vmovdqu %%ymm" #n ", " #n "*32(%%r13)\n"
#define YMM_CALL(name, nr)                                                                                   \
    static int ymm_##name(long a0, long a1, long a2, uint8_t seed) {                                          \
        uint8_t in[32], out[16][32];                                                                         \
        memset(in, seed, sizeof in);                                                                         \
        register long r12 __asm__("r12") = (long)in;                                                          \
        register long r13 __asm__("r13") = (long)out;                                                         \
        __asm__ volatile(YMM_ALL(YMM_LOAD) "movl $" #nr ", %%eax\n syscall\n" YMM_ALL(YMM_STORE)              \
                         : "+D"(a0), "+S"(a1), "+d"(a2)                                                      \
                         : "r"(r12), "r"(r13)                                                                \
                         : "rax", "rcx", "r11", "memory", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5",      \
                           "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15"); \
        for (int r = 0; r < 16; r++)                                                                         \
            for (int b = 0; b < 32; b++)                                                                     \
                if (out[r][b] != seed) return 1;                                                             \
        return 0;                                                                                            \
    }
YMM_CALL(getpid, 39)
YMM_CALL(clock_gettime, 228)
YMM_CALL(getppid, 110)
YMM_CALL(read, 0)

static int check_ymm(void) {
    static char big[65536];
    struct timespec ts;
    int fd = open("/dev/zero", O_RDONLY);
    int bad = ymm_getpid(0, 0, 0, 0x6b) | ymm_clock_gettime(CLOCK_MONOTONIC, (long)&ts, 0, 0x7c) |
              ymm_getppid(0, 0, 0, 0x8d) | ymm_read(fd, (long)big, sizeof big, 0x9e);
    close(fd);
    return bad;
}

// clock_gettime's answers from a rewritten site: a time between two readings of glibc's
// own, EFAULT for a bad pointer and EINVAL for an unknown clock, as Linux returns them.
__attribute__((noinline)) static long raw_clock_gettime(long clock, void *ts) {
    long r;
    __asm__ volatile("movl $228, %%eax\n syscall" : "=a"(r) : "D"(clock), "S"(ts) : "rcx", "r11", "memory");
    return r;
}

static int check_clock_answers(void) {
    int bad = 0;
    static const clockid_t clocks[] = {CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_MONOTONIC_RAW, CLOCK_BOOTTIME};
    for (unsigned i = 0; i < sizeof clocks / sizeof clocks[0]; i++) {
        struct timespec a, b, c;
        clock_gettime(clocks[i], &a);
        if (raw_clock_gettime(clocks[i], &b) != 0) bad = 1;
        clock_gettime(clocks[i], &c);
        long long ta = a.tv_sec * 1000000000LL + a.tv_nsec, tb = b.tv_sec * 1000000000LL + b.tv_nsec,
                  tc = c.tv_sec * 1000000000LL + c.tv_nsec;
        if (tb < ta || tb > tc || b.tv_nsec < 0 || b.tv_nsec >= 1000000000) bad = 1;
    }
    if (raw_clock_gettime(CLOCK_MONOTONIC, (void *)16) != -14) bad = 1;           // EFAULT
    if (raw_clock_gettime(CLOCK_MONOTONIC_COARSE, (void *)-4096L) != -14) bad = 1;  // EFAULT
    if (raw_clock_gettime(1000, (void *)16) != -22) bad = 1;                       // EINVAL first
    return bad;
}

// getpid from a rewritten site in a forked child answers the child's pid.
__attribute__((noinline)) static long raw_getpid(void) {
    long r;
    __asm__ volatile("movl $39, %%eax\n syscall" : "=a"(r) :: "rcx", "r11", "memory");
    return r;
}

static int check_fork_pid(void) {
    long parent = raw_getpid();
    raw_getpid();
    int fds[2];
    if (pipe(fds) != 0) return 1;
    pid_t child = fork();
    if (child == 0) {
        long mine[2] = {raw_getpid(), raw_getpid()};
        _exit(write(fds[1], mine, sizeof mine) == sizeof mine ? 0 : 1);
    }
    long got[2] = {0, 0};
    ssize_t n = read(fds[0], got, sizeof got);
    int status;
    waitpid(child, &status, 0);
    close(fds[0]);
    close(fds[1]);
    return n != sizeof got || got[0] != child || got[1] != child || parent != getpid() || raw_getpid() != parent;
}

int main(void) {
    int bad = 0;
    for (int i = 0; i < 100; i++)
        bad |= check_gprs() | check_vectors() << 2 | check_red_zone() << 3 | check_red_zone_clock() << 3;
    if (__builtin_cpu_supports("avx512f"))
        for (int i = 0; i < 20; i++) bad |= check_wide_vectors() << 4;
    else if (__builtin_cpu_supports("avx2"))
        for (int i = 0; i < 20; i++) bad |= check_ymm() << 4;
    for (int i = 0; i < 20; i++) bad |= check_clock_answers() << 5;
    bad |= check_fork_pid() << 6;
    printf("registers %s (code %d)\n", bad ? "CLOBBERED" : "preserved", bad);
    return bad;
}
