// kthread_area.c: the %gs-based per-kthread area, first-entry stacks, the stack-overflow
// reporter, and thin futex/clock wrappers.
#include "cuthreads.h"

#include <asm/prctl.h>
#include <errno.h>
#include <linux/futex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifndef HWCAP2_FSGSBASE
#define HWCAP2_FSGSBASE (1 << 1)
#endif

// Signal-handler sized altstack: enough for the reporter and a chained handler.
#define CJ_ALTSTACK_SIZE (64 * 1024)

__thread cj_kthread_area *cj_tls_area __attribute__((tls_model("initial-exec")));

extern void cj_uthread_trampoline(void);

bool cj_have_fsgsbase(void) {
    static int cached = -1;
    if (cached < 0) cached = (getauxval(AT_HWCAP2) & HWCAP2_FSGSBASE) ? 1 : 0;
    return cached == 1;
}

static int set_gs_base(uintptr_t base) {
    if (cj_have_fsgsbase()) {
        __asm__ volatile("wrgsbase %0" ::"r"(base) : "memory");
        return 0;
    }
    if (syscall(SYS_arch_prctl, ARCH_SET_GS, base) != 0) return -errno;
    return 0;
}

uintptr_t cj_read_gs_base(void) {
    uintptr_t base = 0;
    if (cj_have_fsgsbase()) {
        __asm__ volatile("rdgsbase %0" : "=r"(base));
    } else {
        syscall(SYS_arch_prctl, ARCH_GET_GS, &base);
    }
    return base;
}

int cj_area_install(cj_kthread_area *area) {
    area->self = area;
    area->tid = (int32_t)syscall(SYS_gettid);
    int rc = set_gs_base((uintptr_t)area);
    if (rc != 0) return rc;
    void *alt = mmap(NULL, CJ_ALTSTACK_SIZE, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (alt == MAP_FAILED) return -errno;
    stack_t ss = {.ss_sp = alt, .ss_size = CJ_ALTSTACK_SIZE, .ss_flags = 0};
    if (sigaltstack(&ss, NULL) != 0) {
        int e = errno;
        munmap(alt, CJ_ALTSTACK_SIZE);
        return -e;
    }
    area->altstack = alt;
    area->altstack_size = CJ_ALTSTACK_SIZE;
    cj_tls_area = area;
    return 0;
}

void cj_area_uninstall(void) {
    cj_kthread_area *area = cj_tls_area;
    if (!area) return;
    stack_t ss = {.ss_sp = NULL, .ss_size = 0, .ss_flags = SS_DISABLE};
    sigaltstack(&ss, NULL);
    if (area->altstack) munmap(area->altstack, area->altstack_size);
    area->altstack = NULL;
    cj_tls_area = NULL;
    set_gs_base(0);
}


void *cj_prepare_stack(void *stack_top, void (*entry)(void *), void *arg) {
    uintptr_t top = (uintptr_t)stack_top & ~(uintptr_t)15;
    uint64_t *frame = (uint64_t *)(top - 64);
    uint32_t mxcsr = 0x1f80;     // Linux's initial MXCSR: all exceptions masked, round to nearest
    uint16_t fpucw = 0x037f;     // x87 default control word
    memcpy((char *)frame, &mxcsr, 4);
    memcpy((char *)frame + 4, &fpucw, 2);
    memset((char *)frame + 6, 0, 2);
    frame[1] = 0;                          // r15
    frame[2] = 0;                          // r14
    frame[3] = (uint64_t)arg;              // r13
    frame[4] = (uint64_t)entry;            // r12
    frame[5] = 0;                          // rbx
    frame[6] = 0;                          // rbp
    frame[7] = (uint64_t)&cj_uthread_trampoline;
    return frame;
}

// MARK: - Stack overflow reporting

static struct sigaction old_segv, old_bus;

static void write_str(const char *s) {
    ssize_t r = write(2, s, strlen(s));
    (void)r;
}

static void write_hex(uintptr_t v) {
    char buf[19] = "0x";
    for (int i = 0; i < 16; i++) {
        int nib = (int)((v >> ((15 - i) * 4)) & 0xf);
        buf[2 + i] = (char)(nib < 10 ? '0' + nib : 'a' + nib - 10);
    }
    buf[18] = 0;
    write_str(buf);
}

static void write_dec(uint64_t v) {
    char buf[21];
    int i = 20;
    buf[i] = 0;
    do { buf[--i] = (char)('0' + v % 10); v /= 10; } while (v && i > 0);
    write_str(buf + i);
}

static void chain(int sig, siginfo_t *info, void *uc, const struct sigaction *old) {
    if (old->sa_flags & SA_SIGINFO) {
        if (old->sa_sigaction) { old->sa_sigaction(sig, info, uc); return; }
    } else if (old->sa_handler != SIG_DFL && old->sa_handler != SIG_IGN) {
        old->sa_handler(sig);
        return;
    }
    // Default action: reinstall it and return, so the faulting access repeats and kills us.
    signal(sig, SIG_DFL);
}

static void overflow_handler(int sig, siginfo_t *info, void *uc) {
    // The fault may come from application code: %fs is then the application's, so find
    // the area through %gs, and let system calls through before making any.
    cj_kthread_area *area = NULL;
    if (cj_have_fsgsbase()) {
        uintptr_t gs;
        __asm__ volatile("rdgsbase %0" : "=r"(gs));
        if (gs) area = cj_area_gs();
    } else {
        area = cj_tls_area;
    }
    if (area && area->self == area) area->sud_selector = 0;
    else area = NULL;
    uintptr_t addr = (uintptr_t)info->si_addr;
    if (area && area->current) {
        cj_uthread *t = area->current;
        uintptr_t guard_lo = t->map_lo, guard_hi = t->map_lo + t->guard_size;
        // A fault in the guard page, or just below the mapping (a large frame skipped it).
        if (addr >= guard_lo - 65536 && addr < guard_hi) {
            write_str("UThreads: stack overflow in uthread ");
            write_dec(t->id);
            write_str(" on kthread ");
            write_dec((uint64_t)area->index);
            write_str(": fault at ");
            write_hex(addr);
            write_str(", stack ");
            write_hex(guard_hi);
            write_str("-");
            write_hex((uintptr_t)t);
            write_str(" (");
            write_dec((uint64_t)((uintptr_t)t - guard_hi) / 1024);
            write_str(" KiB; raise RuntimeConfiguration.stackSize)\n");
            signal(SIGSEGV, SIG_DFL);
            signal(SIGBUS, SIG_DFL);
            abort();
        }
    }
    chain(sig, info, uc, sig == SIGSEGV ? &old_segv : &old_bus);
}

void cj_install_overflow_reporter(void) {
    static int installed = 0;
    if (__atomic_exchange_n(&installed, 1, __ATOMIC_SEQ_CST)) return;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = overflow_handler;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &old_segv);
    sigaction(SIGBUS, &sa, &old_bus);
}

// MARK: - Futex and clock

int cj_futex_wait(uint32_t *word, uint32_t expected, int64_t timeout_ns) {
    struct timespec ts, *tsp = NULL;
    if (timeout_ns >= 0) {
        ts.tv_sec = timeout_ns / 1000000000;
        ts.tv_nsec = timeout_ns % 1000000000;
        tsp = &ts;
    }
    long r = syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, expected, tsp, NULL, 0);
    return r == 0 ? 0 : -errno;
}

int cj_futex_wake(uint32_t *word, int count) {
    long r = syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, count, NULL, NULL, 0);
    return r >= 0 ? (int)r : -errno;
}

int64_t cj_monotonic_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int32_t cj_gettid(void) { return (int32_t)syscall(SYS_gettid); }

// MARK: - CPU affinity (CPU_* are macros, so they live here)

#include <sched.h>

int cj_allowed_cpu_count(void) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) != 0) return 1;
    int n = CPU_COUNT(&set);
    return n > 0 ? n : 1;
}

int cj_pin_to_nth_allowed_cpu(int nth) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) != 0) return -errno;
    int count = CPU_COUNT(&set);
    if (count <= 0) return -EINVAL;
    int want = nth % count, seen = 0;
    for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
        if (!CPU_ISSET(cpu, &set)) continue;
        if (seen++ == want) {
            cpu_set_t one;
            CPU_ZERO(&one);
            CPU_SET(cpu, &one);
            if (sched_setaffinity(0, sizeof one, &one) != 0) return -errno;
            return cpu;
        }
    }
    return -EINVAL;
}

int cj_die_with_parent(void) {
    pid_t parent = getppid();
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) return -errno;
    // The parent may have gone before the call: then nobody would send the signal.
    if (getppid() != parent || parent == 1) _exit(1);
    return 0;
}
