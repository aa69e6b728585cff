// sud.c: Syscall User Dispatch: the SIGSYS handler that turns a trapped system call into
// a call of the libOS dispatcher on the uthread's own stack (see syscall_entry.S).
#include "cjunction.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#ifndef PR_SET_SYSCALL_USER_DISPATCH
#define PR_SET_SYSCALL_USER_DISPATCH 59
#define PR_SYS_DISPATCH_ON 1
#endif
#define CJ_SA_RESTORER 0x04000000

extern char __start_cj_libos_text[], __stop_cj_libos_text[];
extern void cj_sigreturn_restorer(void);
extern void cj_syscall_entry(void);

static cj_syscall_handler_t handler;
static uint64_t traps;

void cj_set_syscall_handler(cj_syscall_handler_t h) { handler = h; }
uint64_t cj_trap_count(void) { return __atomic_load_n(&traps, __ATOMIC_RELAXED); }

/// Called by cj_syscall_entry on the libOS stack with the libOS %fs.
int64_t cj_dispatch_syscall(cj_syscall_frame *frame) {
    if (!handler) return -ENOSYS;
    return handler(frame);
}

// Runs on the kthread's altstack with the application's %fs: touches no TLS and makes
// no system call before the selector allows it.
static void sigsys_handler(int sig, siginfo_t *info, void *ucv) {
    (void)sig;
    cj_kthread_area *a = cj_area_gs();
    a->sud_selector = 0;  // ALLOW: from here the libOS may make system calls
    __atomic_fetch_add(&traps, 1, __ATOMIC_RELAXED);
    ucontext_t *uc = ucv;
    greg_t *g = uc->uc_mcontext.gregs;
    cj_uthread *t = a->current;
    if (!t || !t->syscall_stack) {
        // A trap from code that is not application code on a uthread: a libOS bug.
        static const char msg[] = "junction: system call trapped outside application code\n";
        ssize_t r = write(2, msg, sizeof msg - 1);
        (void)r;
        abort();
    }
    uintptr_t top = (uintptr_t)t->syscall_stack;
    cj_syscall_frame *f = (cj_syscall_frame *)((top - sizeof(cj_syscall_frame) - CJ_XSAVE_AREA) & ~(uintptr_t)63);
    memset(f, 0, sizeof *f);
    f->rax = (uint64_t)g[REG_RAX];
    f->nr = (uint64_t)info->si_syscall;
    f->rbx = (uint64_t)g[REG_RBX];
    f->rcx = (uint64_t)g[REG_RCX];
    f->rdx = (uint64_t)g[REG_RDX];
    f->rsi = (uint64_t)g[REG_RSI];
    f->rdi = (uint64_t)g[REG_RDI];
    f->rbp = (uint64_t)g[REG_RBP];
    f->rsp = (uint64_t)g[REG_RSP];
    f->r8 = (uint64_t)g[REG_R8];
    f->r9 = (uint64_t)g[REG_R9];
    f->r10 = (uint64_t)g[REG_R10];
    f->r11 = (uint64_t)g[REG_R11];
    f->r12 = (uint64_t)g[REG_R12];
    f->r13 = (uint64_t)g[REG_R13];
    f->r14 = (uint64_t)g[REG_R14];
    f->r15 = (uint64_t)g[REG_R15];
    f->rip = (uint64_t)g[REG_RIP];
    f->rflags = (uint64_t)g[REG_EFL];
    // Leave the signal at once: resume in the entry code on the libOS stack. The
    // kernel's sigreturn restores the application's vector state for it to save.
    g[REG_RIP] = (greg_t)(uintptr_t)cj_syscall_entry;
    g[REG_RSP] = (greg_t)(uintptr_t)f;
}

struct kernel_sigaction {
    void *handler;
    unsigned long flags;
    void *restorer;
    uint64_t mask;
};

int cj_interception_init(void) {
    // The frame's XSAVE area must hold every state component the kernel enabled.
    unsigned eax, ebx, ecx, edx;
    __asm__ volatile("cpuid" : "=a"(eax), "=b"(ebx), "=c"(ecx), "=d"(edx) : "a"(0xd), "c"(0));
    if (ebx > CJ_XSAVE_AREA) return -EINVAL;
    struct kernel_sigaction sa = {
        .handler = (void *)sigsys_handler,
        .flags = SA_SIGINFO | SA_ONSTACK | CJ_SA_RESTORER,
        .restorer = (void *)cj_sigreturn_restorer,
        .mask = 0,
    };
    // Through the raw call: glibc's sigaction would install its own restorer, outside
    // the allowed range.
    if (syscall(SYS_rt_sigaction, SIGSYS, &sa, NULL, 8) != 0) return -errno;
    return 0;
}

int cj_sud_enable(cj_kthread_area *area) {
    uint64_t fs = 0;
    if (cj_have_fsgsbase()) {
        __asm__ volatile("rdfsbase %0" : "=r"(fs));
    } else {
        syscall(SYS_arch_prctl, 0x1003 /* ARCH_GET_FS */, &fs);
    }
    area->libos_fs = fs;
    area->has_fsgsbase = cj_have_fsgsbase() ? 1 : 0;
    area->sud_selector = 0;
    uintptr_t start = (uintptr_t)__start_cj_libos_text;
    uintptr_t len = (uintptr_t)__stop_cj_libos_text - start;
    if (prctl(PR_SET_SYSCALL_USER_DISPATCH, PR_SYS_DISPATCH_ON, start, len, &area->sud_selector) != 0) return -errno;
    return 0;
}

int64_t cj_host_syscall(int64_t nr, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5, uint64_t a6) {
    long r = syscall(nr, a1, a2, a3, a4, a5, a6);
    return r == -1 ? -errno : r;
}
