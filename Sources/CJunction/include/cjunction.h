// cjunction.h: the system-call interception side of the C/assembly shim (the entry,
// Syscall User Dispatch, seccomp, user-memory access, entering a loaded program). The
// thread runtime's side (switch, per-kthread area, uthread control block) is CUThreads.
#ifndef CJUNCTION_H
#define CJUNCTION_H

#include "cuthreads.h"

#ifdef __cplusplus
extern "C" {
#endif

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

/// For the preemption watchdog (another OS thread): the uthread running application code
/// on the kthread whose area this is (its control block's address), or 0 when the kthread
/// is in the libOS, its scheduler or asleep. Relaxed loads: a stale answer costs one
/// needless kick or one slice's delay.
uintptr_t cj_area_running_application(void *area);
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

/// The application changed its mappings (mmap, mprotect, munmap, mremap): the rewriter
/// reads /proc/self/maps again before its next patch.
void cj_mappings_changed(void);
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
/// system call, with the context it was installed with; returns the result (or -errno),
/// which becomes the application's rax.
typedef int64_t (*cj_syscall_handler_t)(void *context, cj_syscall_frame *frame);

/// Sets the handler for every intercepted system call and the context passed to it
/// (the libOS's dispatcher: the per-call path needs no global of its own).
void cj_set_syscall_handler(cj_syscall_handler_t handler, void *context);

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

/// Leaf calls: from rewritten sites, getpid (when `pid` is nonzero: the answer) and
/// clock_gettime of the clocks the vDSO answers (when `clock`) are answered by the entry
/// code itself, with no %fs switch, no vector state saved and no dispatcher: set only
/// while the installed dispatcher's handlers for them are the default ones and nothing
/// traces calls.
void cj_set_leaf_calls(int32_t pid, bool clock);
/// Whether the host's vDSO has clock_gettime (the clock leaf needs it).
bool cj_leaf_clock_available(void);

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
