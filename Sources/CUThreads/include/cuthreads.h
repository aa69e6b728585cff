// cuthreads.h: the thread runtime's C/assembly side (context switch, per-kthread %gs
// area, uthread control block, stack-overflow reporting, atomics on C fields, futex).
#ifndef CUTHREADS_H
#define CUTHREADS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <malloc.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/random.h>

#ifdef __cplusplus
extern "C" {
#endif

// MARK: - Uthread control block

/// Park states of a uthread (see UThreads/Park.swift for the protocol).
enum {
    CJ_PARK_EMPTY = 0,    // running, no pending wake-up
    CJ_PARK_PARKED = 1,   // switched out, waiting for unpark
    CJ_PARK_NOTIFIED = 2, // an unpark arrived before the park
};

/// The control block of one uthread. It lives at the top of the uthread's stack
/// mapping, so a stack and its control block are cached and reused together. The
/// assembly switch writes `saved_sp` and clears `busy`; every other field belongs to
/// UThreads, and fields touched by more than one kthread go through the cj_atomic_*
/// helpers below.
typedef struct cj_uthread {
    void *saved_sp;                 // 0: stack pointer of the switched-out context
    uint8_t busy;                   // 8: 1 while its registers are live on some CPU
    uint8_t timed_out;              // 9: the last timed park ended by its timer
    uint8_t granted;                // 10: a sync primitive handed this waiter what it waits for
    uint8_t interrupted;            // 11: interrupt() asked a sleep to end early
    uint32_t park_state;            // 12: CJ_PARK_*
    uint32_t refs;                  // 16: references: the running thread + its join handle
    uint32_t done;                  // 20: 0 running, 1 exited, 2 exited-awaited by an OS thread
    uint64_t id;                    // 24
    struct cj_uthread *link;        // 32: run-queue linkage (inbox, global queue)
    struct cj_uthread *wait_next;   // 40: wait-queue linkage
    struct cj_uthread *wait_prev;   // 48
    void *box;                      // 56: retained entry box (Swift object)
    struct cj_uthread *joiner;      // 64: uthread waiting in join; CJ_JOINER_CLOSED after exit
    uintptr_t map_lo;               // 72: start of the mapping (the guard page)
    uintptr_t map_size;             // 80: whole mapping, guard page included
    uintptr_t guard_size;           // 88
    void *home;                     // 96: KThread it last ran on
    void *runtime;                  // 104: the runtime it belongs to
    int64_t deadline;               // 112: timer deadline, CLOCK_MONOTONIC ns
    int64_t timer_index;            // 120: index in its kthread's timer heap, -1 if none
    void *timer_owner;              // 128: KThread whose heap holds the timer
    const void *wait_key;           // 136: wait-table key (address) while waiting there
    uint32_t wait_bitset;           // 144
    uint32_t in_wait_queue;         // 148: 1 while linked in some wait queue
    uint64_t user_word;             // 152: free for the owner of a wait (e.g. RWLock mode)
    uint64_t syscall_stack;         // 160: top of the libOS stack for system calls of the
                                    //      application code this uthread runs (0: none)
    void *app_thread;               // 168: SyscallEmu's per-thread state (unretained)
} cj_uthread;

_Static_assert(offsetof(cj_uthread, saved_sp) == 0, "switch.S writes saved_sp at 0");
_Static_assert(offsetof(cj_uthread, busy) == 8, "switch.S clears busy at 8");
_Static_assert(offsetof(cj_uthread, syscall_stack) == 160, "syscall_entry.S reads syscall_stack at 160");

/// Value of `joiner` once the uthread has exited: a late joiner sees it and does not wait.
#define CJ_JOINER_CLOSED ((struct cj_uthread *)1)

// MARK: - Context switch (switch.S)

/// Saves the callee-saved registers, MXCSR and the x87 control word on the current stack,
/// stores the stack pointer to `*save_sp`, clears `*busy_flag` (after which another
/// kthread may resume the saved context), and resumes the context saved at `new_sp`.
void cj_switch(void **save_sp, void *new_sp, uint8_t *busy_flag);

/// Prepares a fresh stack whose top (exclusive, 16-byte aligned) is `stack_top` so that
/// switching to the returned stack pointer calls `entry(arg)` on it. `entry` must never
/// return.
void *cj_prepare_stack(void *stack_top, void (*entry)(void *), void *arg);

// MARK: - Per-kthread area, reached through the %gs base

/// The per-kthread area. `%gs:0` holds `self`, so code running with an application's
/// `%fs` (later: the syscall entry) still finds its kthread with one load.
typedef struct cj_kthread_area {
    struct cj_kthread_area *self;   // %gs:0
    void *kthread;                  // %gs:8   the Swift KThread state
    cj_uthread *current;            // %gs:16  the running uthread, NULL in the scheduler
    void *scheduler_sp;             // %gs:24  saved stack pointer of the scheduler context
    uint8_t scheduler_busy;         // %gs:32  dummy busy flag for the scheduler context
    uint8_t pad[7];
    void *exit_sp;                  // %gs:40  scratch save slot used when a uthread exits
    int32_t index;                  // %gs:48  kthread index in its runtime
    int32_t tid;                    // %gs:52
    void *altstack;                 // %gs:56  sigaltstack for overflow reports and SIGSYS
    size_t altstack_size;           // %gs:64
    uint64_t libos_fs;              // %gs:72  this kthread's own %fs base (its libc TLS)
    uint64_t jump_slot;             // %gs:80  scratch: where the syscall exit jumps
    uint8_t sud_selector;           // %gs:88  Syscall User Dispatch selector byte
    uint8_t has_fsgsbase;           // %gs:89
    uint8_t kicked;                 // %gs:90  a kick arrived while in the libOS: the
                                    //         exit path re-enters to deliver signals
    uint8_t in_scheduler;           // %gs:91  1 while the kthread runs its scheduler (no
                                    //         uthread): a patch need not stop it
    uint8_t pad2[4];
    uint64_t patch_ack;             // %gs:96  the last rewrite epoch this kthread's kick
                                    //         handler has seen (sud.c)
} cj_kthread_area;

_Static_assert(offsetof(cj_kthread_area, libos_fs) == 72, "syscall_entry.S reads %gs:72");
_Static_assert(offsetof(cj_kthread_area, jump_slot) == 80, "syscall_entry.S uses %gs:80");
_Static_assert(offsetof(cj_kthread_area, sud_selector) == 88, "syscall_entry.S writes %gs:88");
_Static_assert(offsetof(cj_kthread_area, has_fsgsbase) == 89, "syscall_entry.S reads %gs:89");

_Static_assert(offsetof(cj_kthread_area, current) == 16, "entry code reads %gs:16");

// MARK: - Code patching and the scheduler (patching.c)

/// The call-site rewriter's stop-the-world state (sud.c writes them): the epoch of the
/// latest patch and the area of the kthread writing one (NULL when none is).
extern uint64_t cj_patch_epoch;
extern cj_kthread_area *cj_patch_stopper;

/// Called by a kthread's scheduler before it switches to a uthread. A patch writer does
/// not kick a kthread in its scheduler (`in_scheduler`): such a kthread runs no
/// application code, and this waits out a patch in progress and serializes the CPU
/// (cpuid) after any patch written meanwhile, before application code may run.
void cj_scheduler_leave(cj_kthread_area *area);

/// Called by a kthread's scheduler when a uthread switched back to it.
static inline void cj_scheduler_enter(cj_kthread_area *area) {
    __atomic_store_n(&area->in_scheduler, 1, __ATOMIC_RELEASE);
}

/// True where the CPU and kernel let user code use rd/wrgsbase (AT_HWCAP2 & HWCAP2_FSGSBASE).
bool cj_have_fsgsbase(void);

/// Makes `area` this OS thread's per-kthread area: sets the %gs base (wrgsbase where
/// available, arch_prctl(ARCH_SET_GS) otherwise), marks the thread as a kthread and
/// installs a sigaltstack for overflow reports. Returns 0 or -errno.
int cj_area_install(cj_kthread_area *area);

/// Undoes cj_area_install for this OS thread (gs base 0, altstack removed).
void cj_area_uninstall(void);

/// This OS thread's area pointer (NULL on threads that are not kthreads).
extern __thread cj_kthread_area *cj_tls_area __attribute__((tls_model("initial-exec")));

/// The per-kthread area of the calling OS thread, or NULL when it is not a kthread.
/// The flag lives in initial-exec TLS: one %fs-relative load.
static inline cj_kthread_area *cj_area_or_null(void) { return cj_tls_area; }

/// The area through %gs directly; only valid on a kthread.
static inline cj_kthread_area *cj_area_gs(void) {
    cj_kthread_area *a;
    __asm__ volatile("movq %%gs:0, %0" : "=r"(a));
    return a;
}

/// Reads the gs base (rdgsbase or arch_prctl), for tests.
uintptr_t cj_read_gs_base(void);

/// Installs (once per process) the SIGSEGV/SIGBUS handler that reports a uthread stack
/// overflow by name and stack range before the process dies; other faults go to the
/// previously installed handler or the default action.
void cj_install_overflow_reporter(void);

// MARK: - Atomics on C fields (sequentially consistent unless named otherwise)

static inline uint32_t cj_load_acquire_u32(const uint32_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static inline void cj_store_release_u32(uint32_t *p, uint32_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
static inline uint32_t cj_exchange_u32(uint32_t *p, uint32_t v) { return __atomic_exchange_n(p, v, __ATOMIC_SEQ_CST); }
static inline bool cj_cas_u32(uint32_t *p, uint32_t expected, uint32_t desired) {
    return __atomic_compare_exchange_n(p, &expected, desired, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
}
static inline uint32_t cj_fetch_add_u32(uint32_t *p, uint32_t v) { return __atomic_fetch_add(p, v, __ATOMIC_ACQ_REL); }
static inline uint32_t cj_fetch_sub_u32(uint32_t *p, uint32_t v) { return __atomic_fetch_sub(p, v, __ATOMIC_ACQ_REL); }
static inline uint8_t cj_load_acquire_u8(const uint8_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static inline void cj_store_release_u8(uint8_t *p, uint8_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
static inline void *cj_load_acquire_ptr(void *const *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static inline void cj_store_release_ptr(void **p, void *v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
static inline void *cj_exchange_ptr(void **p, void *v) { return __atomic_exchange_n(p, v, __ATOMIC_SEQ_CST); }
static inline bool cj_cas_ptr(void **p, void *expected, void *desired) {
    return __atomic_compare_exchange_n(p, &expected, desired, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
}
static inline uint8_t cj_exchange_u8(uint8_t *p, uint8_t v) { return __atomic_exchange_n(p, v, __ATOMIC_SEQ_CST); }
static inline void cj_cpu_relax(void) { __builtin_ia32_pause(); }
/// Gives free malloc memory of every arena back to the host (glibc's malloc_trim(0);
/// <malloc.h> is not in Swift's Glibc module).
static inline int cj_malloc_trim(void) { return malloc_trim(0); }

/// MXCSR of the calling context (tests check that it is per uthread).
static inline uint32_t cj_get_mxcsr(void) { uint32_t v; __asm__ volatile("stmxcsr %0" : "=m"(v)); return v; }
static inline void cj_set_mxcsr(uint32_t v) { __asm__ volatile("ldmxcsr %0" ::"m"(v)); }

// MARK: - Futex on a 32-bit word, for OS threads waiting on uthreads

/// futex(FUTEX_WAIT_PRIVATE) with an optional relative timeout in ns (<0: none).
/// Returns 0 or -errno.
int cj_futex_wait(uint32_t *word, uint32_t expected, int64_t timeout_ns);
/// futex(FUTEX_WAKE_PRIVATE). Returns the number woken or -errno.
int cj_futex_wake(uint32_t *word, int count);

/// CLOCK_MONOTONIC in nanoseconds (vDSO).
int64_t cj_monotonic_ns(void);

/// Number of CPUs in the calling thread's affinity mask.
int cj_allowed_cpu_count(void);
/// Pins the calling thread to the `nth` CPU of the process's affinity mask (mod count).
/// Returns the CPU number or -errno.
int cj_pin_to_nth_allowed_cpu(int nth);

/// Asks the kernel to SIGKILL the calling process when its parent exits (a benchmark's or
/// test's helper child must not outlive a parent that crashed). Returns 0 or -errno.
int cj_die_with_parent(void);

/// The calling OS thread's kernel thread id.
int32_t cj_gettid(void);

#ifdef __cplusplus
}
#endif

#endif
