// patching.c: how a kthread's scheduler takes part in the call-site rewriter's
// stop-the-world (sud.c) without being kicked: it runs no application code there.
#include "cuthreads.h"

#include <sys/syscall.h>
#include <unistd.h>

uint64_t cj_patch_epoch;
cj_kthread_area *cj_patch_stopper;

void cj_scheduler_leave(cj_kthread_area *a) {
    // Dekker with write_jump: it stores the stopper, advances the epoch, then reads
    // in_scheduler; here in_scheduler is cleared, then the epoch read (all sequentially
    // consistent). Either the writer sees 0 and kicks this thread, or this thread sees the
    // new epoch (and then the stopper) and waits here.
    __atomic_store_n(&a->in_scheduler, 0, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&cj_patch_epoch, __ATOMIC_SEQ_CST) == __atomic_load_n(&a->patch_ack, __ATOMIC_RELAXED)) return;
    for (int spins = 0;; spins++) {
        uint64_t e = __atomic_load_n(&cj_patch_epoch, __ATOMIC_SEQ_CST);
        cj_kthread_area *s = __atomic_load_n(&cj_patch_stopper, __ATOMIC_SEQ_CST);
        __atomic_store_n(&a->patch_ack, e, __ATOMIC_SEQ_CST);
        if (!s || s == a) break;
        if (spins < 64) __builtin_ia32_pause();
        else syscall(SYS_sched_yield);
    }
    // Code was patched while this CPU may have held the old bytes: cross-modifying code
    // needs a serializing instruction before the new bytes run here.
    unsigned eax = 0, ebx, ecx = 0, edx;
    __asm__ volatile("cpuid" : "+a"(eax), "=b"(ebx), "+c"(ecx), "=d"(edx)::"memory");
}
