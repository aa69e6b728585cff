// cjunction.h: the one public header of the C/assembly shim (context switch, per-kthread
// %gs area, uthread control block, stack-overflow reporting, atomics on C fields).
#ifndef CJUNCTION_H
#define CJUNCTION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
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
    uint8_t pad2[5];
    uint64_t patch_ack;             // %gs:96  the last rewrite epoch this kthread's kick
                                    //         handler has seen (sud.c)
} cj_kthread_area;

_Static_assert(offsetof(cj_kthread_area, libos_fs) == 72, "syscall_entry.S reads %gs:72");
_Static_assert(offsetof(cj_kthread_area, jump_slot) == 80, "syscall_entry.S uses %gs:80");
_Static_assert(offsetof(cj_kthread_area, sud_selector) == 88, "syscall_entry.S writes %gs:88");
_Static_assert(offsetof(cj_kthread_area, has_fsgsbase) == 89, "syscall_entry.S reads %gs:89");

_Static_assert(offsetof(cj_kthread_area, current) == 16, "entry code reads %gs:16");

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

// MARK: - System-call interception (syscall_entry.S, sud.c)

/// The application registers of one intercepted system call, on the uthread's libOS
/// stack. The entry code saves the vector state after it (XSAVE, 64-byte aligned).
typedef struct cj_syscall_frame {
    uint64_t rax, rbx, rcx, rdx, rsi, rdi, rbp, rsp;     // 0..56
    uint64_t r8, r9, r10, r11, r12, r13, r14, r15;       // 64..120
    uint64_t rip;                                        // 128: where the application resumes
    uint64_t rflags;                                     // 136
    uint64_t fs_base;                                    // 144: the application's %fs base
    uint64_t nr;                                         // 152: the system call number
    uint64_t pad[4];                                     // 160..191
} cj_syscall_frame;

_Static_assert(sizeof(cj_syscall_frame) == 192, "syscall_entry.S puts XSAVE state at 192");

/// How a frame reached the libOS (frame.pad[0]).
#define CJ_ENTRY_FAST 0    // a rewritten call site
#define CJ_ENTRY_TRAP 1    // Syscall User Dispatch (or seccomp) trap
#define CJ_ENTRY_FAULT 2   // a fault in application code: nr = the signal; pad[1] = address,
                           // pad[2] = si_code, pad[3] = err | trapno << 32
#define CJ_ENTRY_SIGNAL 3  // the kick signal interrupted application code: nr = 0

/// The host signal that makes a kthread running application code enter the libOS, so
/// that a signal pending for the application is delivered without waiting for a call.
#define CJ_KICK_SIGNAL 63

/// Installs the host handlers that turn faults in application code (SIGSEGV, SIGBUS,
/// SIGFPE, SIGILL, SIGTRAP) into CJ_ENTRY_FAULT entries, and the kick handler. Faults in
/// libOS code go to the handler installed before. Returns 0 or -errno.
int cj_install_signal_forwarding(int kick);
/// The thread that takes the application's signals from outside (with sigwaitinfo); a
/// fault signal sent from outside (si_code <= 0) is passed to it.
void cj_set_signal_thread(int32_t tid);

/// Frames from rewritten sites may hold their vector state as plain moves' copy
/// (cj_vector_mode); this writes the XSAVE image from it, for a signal frame.
void cj_materialize_vector_state(cj_syscall_frame *frame);
/// Where a frame resumes once call sites may have been rewritten: a return address just
/// after a `syscall` whose following instruction was moved into a stub becomes the
/// stub's copy of it. The dispatcher applies it after every call; signal delivery and
/// clone apply it before they copy the frame's rip.
void cj_fixup_resume(cj_syscall_frame *frame);
/// execve: the old program's rewritten sites are gone; forget their redirects.
void cj_rewrite_forget_redirects(void);
/// execve: the frame returns into the new program with every vector register in its
/// initial state.
void cj_frame_reset_vector_state(cj_syscall_frame *frame);
/// After the XSAVE image of a frame was replaced (rt_sigreturn): use the image.
void cj_clear_manual_vector_state(cj_syscall_frame *frame);
/// Bytes of an XSAVE image of every state component the kernel enabled (what a signal
/// frame's fpstate needs), a multiple of 64.
size_t cj_xsave_size(void);
/// XCR0: the state components the kernel enabled.
uint64_t cj_xcr0(void);
/// 0 XSAVE, 1 SSE, 2 AVX, 3 AVX-512: how rewritten sites save the vector state.
uint8_t cj_get_vector_mode(void);

/// Touches every page of [address, address + length) for reading or (write != 0)
/// writing; 0, or -EFAULT if some page is not accessible (the fault is caught, with
/// the handlers LibOS installs).
int64_t cj_probe_user(uintptr_t address, size_t length, int write);
/// The length of a NUL-terminated string of at most max bytes, or -EFAULT.
int64_t cj_user_strnlen(uintptr_t s, size_t max);

/// Bytes reserved for XSAVE state after a frame.
#define CJ_XSAVE_AREA 8192

/// Called (on the uthread's libOS stack, with the libOS %fs) for every intercepted
/// system call; returns the result (or -errno), which becomes the application's rax.
typedef int64_t (*cj_syscall_handler_t)(cj_syscall_frame *frame);

/// Sets the handler for every intercepted system call.
void cj_set_syscall_handler(cj_syscall_handler_t handler);

/// Prepares interception for the process: the SIGSYS handler (on each kthread's
/// altstack, with a restorer inside the always-allowed range). Returns 0 or -errno
/// (e.g. -EINVAL when the CPU state is too large for the frame).
int cj_interception_init(void);

/// Turns Syscall User Dispatch on for the calling kthread: system calls outside the
/// libOS's entry code trap while the area's selector says BLOCK. 0 or -errno
/// (-EINVAL on kernels without SUD).
int cj_sud_enable(cj_kthread_area *area);

/// Turns Syscall User Dispatch off for the calling thread (a forked child's surviving
/// kthread, which becomes its signal thread). 0 or -errno.
int cj_sud_disable(void);

/// Around a host fork of the instance: the parent holds the rewriter's lock across the
/// fork (prepare, then parent), the child resets it and forgets the parent's kthreads.
void cj_fork_prepare(void);
void cj_fork_parent(void);
void cj_fork_child(void);

/// Records the libOS's %fs for the entry code (part of cj_sud_enable; alone for the
/// seccomp trap path).
void cj_libos_area_init(cj_kthread_area *area);

/// Enters application code at `entry` with `stack_pointer`, from the current uthread:
/// records the current stack as that uthread's libOS syscall stack, sets the selector to
/// BLOCK and jumps with registers as execve leaves them. Never returns.
__attribute__((noreturn)) void cj_enter_application(uintptr_t entry, uintptr_t stack_pointer);

/// A system call made directly to the host kernel: the result or -errno.
int64_t cj_host_syscall(int64_t nr, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5, uint64_t a6);

/// Starts a new application thread on the current uthread from a copy of a system-call
/// frame (and its XSAVE area) in `frame_and_xsave`, a malloc'ed block of
/// sizeof(cj_syscall_frame) + CJ_XSAVE_AREA bytes that this frees. Never returns.
__attribute__((noreturn)) void cj_resume_application(void *frame_and_xsave);

/// Turns call-site rewriting on: a trapped `mov $N, %eax; syscall` is patched (one
/// aligned 16-byte compare-and-swap) into a jump to a stub within ±2 GiB that calls the
/// entry code without touching the red zone; the `syscall` bytes stay for code that
/// jumps to them directly.
void cj_set_rewriting(bool enabled);

/// Call sites rewritten so far, and calls that arrived through rewritten sites.
uint64_t cj_rewritten_sites(void);
uint64_t cj_fast_calls(void);

/// Number of intercepted calls that arrived through SIGSYS (the trap path).
uint64_t cj_trap_count(void);

// MARK: - Entering a loaded program (exec.S, exec.c)

/// Makes the calling process look freshly exec'ed before jumping into a loaded program,
/// the way execve(2) leaves it: handled signals reset to SIG_DFL (ignored ones stay
/// ignored), the sigaltstack disabled, this thread's rseq area unregistered (so the
/// program's libc can register its own), close-on-exec descriptors closed, and the
/// thread named `comm` (may be NULL).
void cj_exec_reset(const char *comm);

/// Switches to `stack_pointer` (which points at argc), clears the general registers
/// (rdx = 0: no rtld_fini), resets MXCSR and the x87 control word, and jumps to `entry`.
__attribute__((noreturn)) void cj_enter(uintptr_t entry, uintptr_t stack_pointer);

/// Installs a seccomp filter (on every thread) under which `syscall_nr` fails with
/// `error`. Irreversible for the process. Returns 0 or -errno.
int cj_seccomp_deny(int syscall_nr, int error);

/// The seccomp trap path (--intercept seccomp): a filter on every thread under which
/// system calls from code outside this process's current mappings (junction, its
/// libraries, the vDSO) trap with SIGSYS, which enters the libOS as Syscall User
/// Dispatch does. Returns 0 or -errno.
int cj_seccomp_trap_outside_host(void);
/// Whether the seccomp trap path is on.
bool cj_seccomp_trapping(void);

/// getauxval() of the host process (0 when absent).
unsigned long cj_getauxval(unsigned long type);

#ifdef __cplusplus
}
#endif
#endif
