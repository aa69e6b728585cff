// sud.c: Syscall User Dispatch: the SIGSYS handler that turns a trapped system call into
// a call of the libOS dispatcher on the uthread's own stack (see syscall_entry.S).
#include "cjunction.h"

#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
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
static void *handler_context;
static uint64_t traps;

void cj_set_syscall_handler(cj_syscall_handler_t h, void *context) {
    handler_context = context;
    handler = h;
}
uint64_t cj_trap_count(void) { return __atomic_load_n(&traps, __ATOMIC_RELAXED); }

static void try_rewrite(uintptr_t site, uint64_t nr);
static void rewrite_after(uintptr_t site);
static bool in_arena(uintptr_t p);
static bool write_jump(uintptr_t at, uint8_t *target, int prot);
static bool rewriting;
static uint64_t rewritten, fast_calls;

void cj_set_rewriting(bool enabled) { rewriting = enabled; }
uint64_t cj_rewritten_sites(void) { return __atomic_load_n(&rewritten, __ATOMIC_RELAXED); }
uint64_t cj_fast_calls(void) { return __atomic_load_n(&fast_calls, __ATOMIC_RELAXED); }

static unsigned xsave_image_size;
static void register_area(cj_kthread_area *a);

/// Called by cj_syscall_entry on the libOS stack with the libOS %fs.
static int trace_traps = -1;
static uintptr_t traced_sites[512];

// JUNCTION_TRACE_TRAPS=1: names each call site that stays on the trap path, once, with
// the bytes around it (to see which instruction forms the rewriter does not handle).
static void report_trap_site(cj_syscall_frame *frame) {
    uintptr_t site = (uintptr_t)frame->rip - 2;
    uint8_t *b = (uint8_t *)site;
    if (b[0] != 0x0f || b[1] != 0x05 || b[-5] == 0xe9) return;  // rewritten meanwhile
    for (int i = 0; i < 512; i++) {
        if (traced_sites[i] == site) return;
        if (traced_sites[i] == 0) { traced_sites[i] = site; break; }
    }
    fprintf(stderr, "junction: trap site %#lx (call %lu):", (unsigned long)site, (unsigned long)frame->nr);
    for (int i = -8; i < 10; i++) fprintf(stderr, i == 0 ? " [%02x" : i == 1 ? " %02x]" : " %02x", b[i]);
    fprintf(stderr, "\n");
}

// In a forked child until it execs, a site is patched on its second trap, not its first:
// a patch costs two mprotects, a copy of the text page and stopping the other kthreads,
// and most children make each call once (glibc's fork tail, then exec or _exit). The
// sites trapped once are remembered in a small table (a site that falls out of it just
// waits for another trap).
#define SEEN_ONCE 256
static bool patch_on_second_trap;
static uintptr_t seen_once[SEEN_ONCE];

static bool first_trap_in_child(uintptr_t site) {
    if (!__atomic_load_n(&patch_on_second_trap, __ATOMIC_RELAXED)) return false;
    size_t slot = (size_t)((site * 0x9E3779B97F4A7C15ull) >> 56) & (SEEN_ONCE - 1);
    if (__atomic_load_n(&seen_once[slot], __ATOMIC_RELAXED) == site) return false;
    __atomic_store_n(&seen_once[slot], site, __ATOMIC_RELAXED);
    return true;
}

int64_t cj_dispatch_syscall(cj_syscall_frame *frame) {
    if (frame->pad[0] == CJ_ENTRY_TRAP) {
        if (rewriting && !first_trap_in_child((uintptr_t)frame->rip - 2)) try_rewrite((uintptr_t)frame->rip - 2, frame->nr);
        if (trace_traps < 0) { const char *e = getenv("JUNCTION_TRACE_TRAPS"); trace_traps = e && *e == '1'; }
        if (trace_traps) report_trap_site(frame);
    } else if (frame->pad[0] == CJ_ENTRY_FAST) {
        __atomic_fetch_add(&fast_calls, 1, __ATOMIC_RELAXED);
    }
    if (!handler) return -ENOSYS;
    int64_t r = handler(handler_context, frame);
    cj_fixup_resume(frame);
    return r;
}

// MARK: - Leaf calls

// Calls from rewritten sites that cj_fast_entry answers itself, without the libOS's %fs,
// the vector state or the dispatcher (syscall_entry.S): read there, set by the installed
// dispatcher (Dispatcher.refreshLeafCalls) when its handlers are the default ones and
// nothing traces calls. 0 / NULL: the call takes the ordinary path.
int32_t cj_leaf_pid;
int64_t (*cj_leaf_clock_gettime)(int64_t clock, void *ts);
static int64_t (*vdso_clock_gettime)(int64_t clock, void *ts);
static bool vdso_looked_up;

// The host's vDSO clock_gettime, as glibc's own wrapper uses it: it touches no TLS and no
// vector register (the kernel builds it without SSE).
static void look_up_vdso(void) {
    if (vdso_looked_up) return;
    void *h = dlopen("linux-vdso.so.1", RTLD_LAZY | RTLD_NOLOAD);
    if (h) vdso_clock_gettime = (int64_t (*)(int64_t, void *))dlvsym(h, "__vdso_clock_gettime", "LINUX_2.6");
    vdso_looked_up = true;
}

void cj_set_leaf_calls(int32_t pid, bool clock) {
    if (clock) look_up_vdso();
    __atomic_store_n(&cj_leaf_pid, pid, __ATOMIC_RELEASE);
    __atomic_store_n(&cj_leaf_clock_gettime, clock ? vdso_clock_gettime : NULL, __ATOMIC_RELEASE);
}

bool cj_leaf_clock_available(void) {
    look_up_vdso();
    return vdso_clock_gettime != NULL;
}

// MARK: - Call-site rewriting

#include <pthread.h>
#include <sys/mman.h>

extern void cj_fast_entry(void);

#define STUB_SIZE 64
#define ARENA_SIZE (64 * 1024)
#define MAX_ARENAS 64

static pthread_mutex_t rewrite_lock = PTHREAD_MUTEX_INITIALIZER;
static struct { uintptr_t base; size_t used; } arenas[MAX_ARENAS];
static int arena_count;

static bool within_rel32(uintptr_t from, uintptr_t to) {
    int64_t d = (int64_t)to - (int64_t)from;
    return d > -(1LL << 31) + 4096 && d < (1LL << 31) - 4096;
}

/// 32 bytes of executable memory within ±2 GiB of `near`.
static uint8_t *alloc_stub(uintptr_t near) {
    for (int i = 0; i < arena_count; i++) {
        if (arenas[i].used + STUB_SIZE <= ARENA_SIZE && within_rel32(near, arenas[i].base)) {
            uint8_t *s = (uint8_t *)arenas[i].base + arenas[i].used;
            arenas[i].used += STUB_SIZE;
            return s;
        }
    }
    if (arena_count == MAX_ARENAS) return NULL;
    // Where the kernel puts a mapping by itself (just below the libraries ld.so mapped
    // last) is within reach of most library sites: one call instead of a probe that
    // walked through the site's own library 64 KiB at a time (271 failed mmaps for
    // /bin/true).
    void *first = mmap(NULL, ARENA_SIZE, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (first != MAP_FAILED) {
        if (within_rel32(near, (uintptr_t)first) && within_rel32(near, (uintptr_t)first + ARENA_SIZE)) {
            arenas[arena_count].base = (uintptr_t)first;
            arenas[arena_count].used = STUB_SIZE;
            arena_count++;
            return first;
        }
        munmap(first, ARENA_SIZE);
    }
    // Probe downward, then upward, from the site in 64 KiB steps.
    for (int64_t step = 1; step < 16384; step++) {
        for (int dir = -1; dir <= 1; dir += 2) {
            uintptr_t hint = ((near & ~(uintptr_t)(ARENA_SIZE - 1)) + (uintptr_t)(dir * step * ARENA_SIZE));
            if (hint < 0x10000 || hint >= (1ULL << 47) - ARENA_SIZE || !within_rel32(near, hint)) continue;
            void *p = mmap((void *)hint, ARENA_SIZE, PROT_READ | PROT_WRITE | PROT_EXEC,
                           MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
            if (p == MAP_FAILED) continue;
            arenas[arena_count].base = (uintptr_t)p;
            arenas[arena_count].used = STUB_SIZE;
            arena_count++;
            return p;
        }
    }
    return NULL;
}

// The executable mappings as /proc/self/maps last listed them, read again only after the
// application changed its mappings (cj_mappings_changed: mmap, mprotect, munmap, mremap,
// execve): one read of the maps per burst of first calls instead of one per site.
#define MAX_EXEC_RANGES 1024
static struct { uintptr_t lo, hi; int prot; } exec_ranges[MAX_EXEC_RANGES];
static int exec_range_count;
static uint64_t maps_generation = 1, maps_read_generation;

void cj_mappings_changed(void) { __atomic_fetch_add(&maps_generation, 1, __ATOMIC_RELEASE); }

// Under rewrite_lock.
static bool read_exec_ranges(void) {
    uint64_t generation = __atomic_load_n(&maps_generation, __ATOMIC_ACQUIRE);
    FILE *f = fopen("/proc/self/maps", "re");
    if (!f) return false;
    char line[512];
    int n = 0;
    bool complete = true;
    while (fgets(line, sizeof line, f)) {
        size_t len = strlen(line);
        bool whole = len > 0 && line[len - 1] == '\n';
        unsigned long lo, hi;
        char perms[5];
        if (sscanf(line, "%lx-%lx %4s", &lo, &hi, perms) == 3 && perms[2] == 'x') {
            if (n == MAX_EXEC_RANGES) { complete = false; break; }
            exec_ranges[n].lo = lo;
            exec_ranges[n].hi = hi;
            exec_ranges[n].prot = (perms[0] == 'r' ? PROT_READ : 0) | (perms[1] == 'w' ? PROT_WRITE : 0) | PROT_EXEC;
            n++;
        }
        // A line longer than the buffer (a long path): skip the rest of it.
        while (!whole && fgets(line, sizeof line, f)) { len = strlen(line); whole = len > 0 && line[len - 1] == '\n'; }
    }
    fclose(f);
    exec_range_count = n;
    // A listing cut short is not kept: the next lookup reads the maps again.
    maps_read_generation = complete ? generation : 0;
    return true;
}

/// The protection of the mapping holding [addr, addr + len): -1 if unknown, not
/// executable, or not one mapping. Under rewrite_lock.
static int protection_of(uintptr_t addr, int len) {
    if (maps_read_generation != __atomic_load_n(&maps_generation, __ATOMIC_ACQUIRE) && !read_exec_ranges()) return -1;
    for (int i = 0; i < exec_range_count; i++) {
        if (addr >= exec_ranges[i].lo && addr < exec_ranges[i].hi)
            return addr + (uintptr_t)len <= exec_ranges[i].hi ? exec_ranges[i].prot : -1;
    }
    return -1;
}

// Patches within one page are written through /proc/self/mem, which writes a private
// mapping whatever its protection (as a debugger's breakpoints are): no mprotect pair
// and no read of /proc/self/maps to learn the protection to restore. The descriptor is
// bound to this process's memory: a forked child opens its own (cj_fork_child).
#define PROT_VIA_MEM 0x100
static int mem_fd = -1;
static bool mem_fd_failed;

// Under rewrite_lock.
static int patch_protection(uintptr_t addr, int len) {
    if ((addr & ~(uintptr_t)4095) == ((addr + (uintptr_t)len - 1) & ~(uintptr_t)4095)) {
        if (mem_fd < 0 && !mem_fd_failed) {
            mem_fd = open("/proc/self/mem", O_RDWR | O_CLOEXEC);
            mem_fd_failed = mem_fd < 0;
        }
        if (mem_fd >= 0) return PROT_VIA_MEM;
    }
    return protection_of(addr, len);
}

static bool is_prefix_byte(uint8_t b) {
    return (b >= 0x40 && b <= 0x4f) || b == 0x66 || b == 0x67 || b == 0xf0 || b == 0xf2 || b == 0xf3 ||
           b == 0x2e || b == 0x36 || b == 0x3e || b == 0x26 || b == 0x64 || b == 0x65;
}


// `site` is the address of a `syscall` instruction that just trapped with number `nr`.
// Sites whose patch failed (a kthread did not answer): not tried again.
static uintptr_t failed_sites[256];
static int failed_count;

static bool failed_before(uintptr_t site) {
    int n = __atomic_load_n(&failed_count, __ATOMIC_ACQUIRE);
    for (int i = 0; i < n && i < 256; i++)
        if (failed_sites[i] == site) return true;
    return false;
}

// Under rewrite_lock.
static void remember_failure(uintptr_t site) {
    if (failed_count < 256) {
        failed_sites[failed_count] = site;
        __atomic_store_n(&failed_count, failed_count + 1, __ATOMIC_RELEASE);
    }
}

// The host's vDSO is the libOS's as well as the application's (its fallback `syscall`
// traps when the application's clock_gettime of a CPU clock reaches it): a jump written
// there would send the libOS's own clock_gettime into cj_fast_entry, round and round.
// /proc/self/mem writes it where mprotect refused to, so it is skipped by address.
static bool in_vdso(uintptr_t site) {
    static uintptr_t lo = 1, hi;
    if (lo == 1) {
        uintptr_t base = (uintptr_t)getauxval(AT_SYSINFO_EHDR), end = base;
        if (base) {
            const Elf64_Ehdr *eh = (const Elf64_Ehdr *)base;
            const Elf64_Phdr *ph = (const Elf64_Phdr *)(base + eh->e_phoff);
            for (int i = 0; i < eh->e_phnum; i++)
                if (ph[i].p_type == PT_LOAD && base + ph[i].p_vaddr + ph[i].p_memsz > end) end = base + ph[i].p_vaddr + ph[i].p_memsz;
        }
        hi = (end + 4095) & ~(uintptr_t)4095;
        lo = base;
    }
    return site >= lo && site < hi;
}

static void try_rewrite(uintptr_t site, uint64_t nr) {
    if (in_vdso(site)) return;
    // The kick handler finds its kthread through rdgsbase: without FSGSBASE no patch
    // could stop the world, so sites stay on the trap path.
    if (!cj_have_fsgsbase() || failed_before(site)) return;
    uint8_t *mov = (uint8_t *)site - 5;
    // mov[-1] is read below: stay inside the page that holds the instruction.
    if (((uintptr_t)mov & 4095) == 0) return;
    // Only `mov $nr, %eax` directly before, not itself the tail of a prefixed instruction.
    if (mov[0] != 0xb8 || mov[5] != 0x0f || mov[6] != 0x05) { rewrite_after(site); return; }
    uint32_t imm;
    memcpy(&imm, mov + 1, 4);
    if (imm != nr || nr > 0xffff || is_prefix_byte(mov[-1])) { rewrite_after(site); return; }
    pthread_mutex_lock(&rewrite_lock);
    if (mov[0] != 0xb8 || in_arena(site)) { pthread_mutex_unlock(&rewrite_lock); return; }  // patched meanwhile
    int prot = patch_protection((uintptr_t)mov, 5);
    uint8_t *stub = prot >= 0 ? alloc_stub((uintptr_t)mov) : NULL;
    if (!stub) { pthread_mutex_unlock(&rewrite_lock); return; }
    // mov $nr, %eax; lea -128(%rsp), %rsp; call *8(%rip); .quad resume; .quad cj_fast_entry
    uint8_t code[STUB_SIZE] = {0xb8, 0, 0, 0, 0, 0x48, 0x8d, 0x64, 0x24, 0x80, 0xff, 0x15, 0x08, 0, 0, 0};
    memcpy(code + 1, &imm, 4);
    uint64_t resume = site + 2, entry = (uint64_t)(uintptr_t)cj_fast_entry;
    memcpy(code + 16, &resume, 8);
    memcpy(code + 24, &entry, 8);
    memcpy(stub, code, STUB_SIZE);
    __builtin___clear_cache((char *)stub, (char *)stub + STUB_SIZE);
    if (write_jump((uintptr_t)mov, stub, prot)) __atomic_fetch_add(&rewritten, 1, __ATOMIC_RELAXED);
    else remember_failure(site);
    pthread_mutex_unlock(&rewrite_lock);
}

// The second form: `syscall` followed by `cmp $imm32, %rax` (or %eax), what most glibc
// wrappers have, whatever loads %eax before. The jump to the stub covers the syscall and
// the start of the cmp; the stub makes the call, then runs its own copy of the cmp and
// jumps back after the original. A thread that trapped on the site earlier and returns
// to the cmp's old address after the patch would run the jump's displacement: the
// redirect table sends such returns to the stub's copy instead (cj_fixup_resume), and
// before patching, every other kthread is kicked and acknowledges, so none is on its way
// out with an address it looked up before the redirect existed.

#define REDIRECTS 4096
static struct { uintptr_t from, to; } redirects[REDIRECTS];
static int redirect_count;

static cj_kthread_area *areas[256];
static int area_count;

static void register_area(cj_kthread_area *a) {
    int i = __atomic_fetch_add(&area_count, 1, __ATOMIC_ACQ_REL);
    if (i < 256) __atomic_store_n(&areas[i], a, __ATOMIC_RELEASE);
}

static size_t redirect_slot(uintptr_t from) { return (size_t)((from * 0x9E3779B97F4A7C15ull) >> 52) & (REDIRECTS - 1); }

void cj_rewrite_forget_redirects(void) {
    __atomic_store_n(&patch_on_second_trap, false, __ATOMIC_RELAXED);  // exec: a new program patches as usual
    pthread_mutex_lock(&rewrite_lock);
    memset(redirects, 0, sizeof redirects);
    __atomic_store_n(&redirect_count, 0, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&rewrite_lock);
    cj_mappings_changed();
}

void cj_frame_reset_vector_state(cj_syscall_frame *frame) {
    // An XSAVE image with XSTATE_BV = 0 (every component in its initial state), the
    // default MXCSR and x87 control word, and no moves' copy.
    uint8_t *image = (uint8_t *)frame + 192;
    memset(image, 0, xsave_image_size);
    *(uint16_t *)(image + 0) = 0x37f;
    *(uint32_t *)(image + 24) = 0x1f80;
    cj_clear_manual_vector_state(frame);
}

void cj_fixup_resume(cj_syscall_frame *frame) {
    if (!__atomic_load_n(&redirect_count, __ATOMIC_ACQUIRE)) return;
    uintptr_t rip = frame->rip;
    for (size_t i = redirect_slot(rip), n = 0; n < REDIRECTS; i = (i + 1) & (REDIRECTS - 1), n++) {
        uintptr_t from = __atomic_load_n(&redirects[i].from, __ATOMIC_ACQUIRE);
        if (from == 0) return;
        if (from == rip) {
            uintptr_t to = __atomic_load_n(&redirects[i].to, __ATOMIC_ACQUIRE);
            if (to) frame->rip = to;  // 0: being cleared by an execve
            return;
        }
    }
}

// Under rewrite_lock.
static bool add_redirect(uintptr_t from, uintptr_t to) {
    if (redirect_count >= REDIRECTS / 2) return false;
    size_t i = redirect_slot(from);
    while (redirects[i].from != 0) i = (i + 1) & (REDIRECTS - 1);
    redirects[i].to = to;
    __atomic_store_n(&redirects[i].from, from, __ATOMIC_RELEASE);
    __atomic_fetch_add(&redirect_count, 1, __ATOMIC_RELEASE);
    return true;
}

// Patching stops the world: every other kthread is kicked, acknowledges in its kick
// handler and waits there until the jump is written, so no instruction being replaced
// runs meanwhile (and returning from the signal serializes each CPU, so it sees the new
// bytes). The patcher does only mprotect and stores while others wait: they may hold
// any lock. Afterwards each kicked thread goes on as after any kick: application code
// enters the libOS once, a thread on its way out re-enters (cj_fixup_resume applies).

// Under rewrite_lock. Returns false (nothing written) if some kthread did not answer
// within 200 ms.
static bool write_jump(uintptr_t at, uint8_t *target, int prot) {
    cj_kthread_area *self = cj_area_gs();
    // stopper first, then the epoch (both sequentially consistent): a handler that sees
    // the new epoch then sees stopper set, so it cannot acknowledge and leave early.
    __atomic_store_n(&cj_patch_stopper, self, __ATOMIC_SEQ_CST);
    uint64_t epoch = __atomic_add_fetch(&cj_patch_epoch, 1, __ATOMIC_SEQ_CST);
    int n = __atomic_load_n(&area_count, __ATOMIC_ACQUIRE);
    if (n > 256) n = 256;
    pid_t pid = getpid();
    bool skip[256];
    for (int i = 0; i < n; i++) {
        cj_kthread_area *a = __atomic_load_n(&areas[i], __ATOMIC_ACQUIRE);
        // A kthread in its scheduler runs no application code and waits for this patch
        // before it runs any (cj_scheduler_leave): no kick, no wait.
        skip[i] = !a || a == self || __atomic_load_n(&a->in_scheduler, __ATOMIC_SEQ_CST);
        if (!skip[i]) syscall(SYS_tgkill, pid, a->tid, CJ_KICK_SIGNAL);
    }
    uint64_t deadline = cj_monotonic_ns() + 200000000ull;
    bool all = true;
    for (int i = 0; i < n && all; i++) {
        cj_kthread_area *a = __atomic_load_n(&areas[i], __ATOMIC_ACQUIRE);
        if (skip[i]) continue;
        while (__atomic_load_n(&a->patch_ack, __ATOMIC_ACQUIRE) < epoch) {
            if (cj_monotonic_ns() > deadline) { all = false; break; }
            sched_yield();  // the kicked thread may need this CPU to run its handler
        }
    }
    bool done = false;
    if (all && prot == PROT_VIA_MEM) {
        uint8_t jump[5] = {0xe9};
        int32_t rel = (int32_t)((intptr_t)target - (intptr_t)(at + 5));
        memcpy(jump + 1, &rel, 4);
        if (pwrite(mem_fd, jump, 5, (off_t)at) == 5) done = true;
        else prot = protection_of(at, 5);  // refused (a shared mapping): the mprotect way
    }
    if (all && !done && prot >= 0 && prot != PROT_VIA_MEM) {
        uintptr_t lo = at & ~(uintptr_t)4095, hi = (at + 5 + 4095) & ~(uintptr_t)4095;
        if (mprotect((void *)lo, hi - lo, prot | PROT_WRITE) == 0) {
            uint8_t *p = (uint8_t *)at;
            int32_t rel = (int32_t)((intptr_t)target - (intptr_t)(at + 5));
            memcpy(p + 1, &rel, 4);
            __atomic_store_n(p, (uint8_t)0xe9, __ATOMIC_RELEASE);
            mprotect((void *)lo, hi - lo, prot);
            done = true;
        }
    }
    __atomic_store_n(&cj_patch_stopper, NULL, __ATOMIC_RELEASE);
    return done;
}

static bool in_arena(uintptr_t p) {
    for (int i = 0; i < arena_count; i++)
        if (p >= arenas[i].base && p < arenas[i].base + ARENA_SIZE) return true;
    return false;
}

static void rewrite_after(uintptr_t site) {
    if (in_vdso(site)) return;
    uint8_t *sc = (uint8_t *)site;
    if (sc[0] != 0x0f || sc[1] != 0x05) return;
    // The cmp must be on the same page (we read it).
    size_t cmp_len;
    if (((site + 2) & 4095) > 4096 - 8) return;  // the cmp and the branch after it are read
    if (sc[2] == 0x48 && sc[3] == 0x3d) cmp_len = 6;
    else if (sc[2] == 0x3d) cmp_len = 5;
    else return;
    // Only the wrapper shape `syscall; cmp $-4095/-4096, %rax; j<cc>`: the error check of
    // a libc wrapper, whose cmp nothing branches to. Other code that moved the cmp could
    // jump into the middle of the patch.
    int32_t imm;
    memcpy(&imm, sc + 2 + (cmp_len - 4), 4);
    uint8_t next = sc[2 + cmp_len];
    bool branch = (next >= 0x70 && next <= 0x7f) || (next == 0x0f && sc[3 + cmp_len] >= 0x80 && sc[3 + cmp_len] <= 0x8f);
    if ((imm != -4095 && imm != -4096) || !branch) return;
    pthread_mutex_lock(&rewrite_lock);
    if (sc[0] != 0x0f || in_arena(site)) { pthread_mutex_unlock(&rewrite_lock); return; }
    int prot = patch_protection(site, 2 + (int)cmp_len);
    uint8_t *stub = prot >= 0 ? alloc_stub(site) : NULL;
    if (!stub) { pthread_mutex_unlock(&rewrite_lock); return; }
    // lea -128(%rsp), %rsp; call *8(%rip); .quad resume; .quad cj_fast_entry;
    // syscall (what a restart re-executes); resume: cmp; jmp site + 2 + cmp_len
    uint8_t code[STUB_SIZE] = {0x48, 0x8d, 0x64, 0x24, 0x80, 0xff, 0x15, 0x08, 0, 0, 0};
    uint64_t resume = (uint64_t)(uintptr_t)(stub + 29), entry = (uint64_t)(uintptr_t)cj_fast_entry;
    memcpy(code + 11, &resume, 8);
    memcpy(code + 19, &entry, 8);
    code[27] = 0x0f;
    code[28] = 0x05;
    memcpy(code + 29, sc + 2, cmp_len);
    uint8_t *jmp = code + 29 + cmp_len;
    int32_t back = (int32_t)((intptr_t)(site + 2 + cmp_len) - (intptr_t)(stub + 29 + cmp_len + 5));
    jmp[0] = 0xe9;
    memcpy(jmp + 1, &back, 4);
    memcpy(stub, code, STUB_SIZE);
    __builtin___clear_cache((char *)stub, (char *)stub + STUB_SIZE);
    // Published before the jump exists: a return to site + 2 from now on goes to resume.
    if (add_redirect(site + 2, (uintptr_t)resume) && write_jump(site, stub, prot))
        __atomic_fetch_add(&rewritten, 1, __ATOMIC_RELAXED);
    else
        remember_failure(site);
    pthread_mutex_unlock(&rewrite_lock);
}

// Copies the interrupted application registers into a frame on the uthread's libOS
// stack and makes the signal return into cj_syscall_entry on that frame. The kernel's
// sigreturn restores the application's vector state first, for the entry to save.
static void enter_libos(cj_uthread *t, ucontext_t *uc, uint64_t nr, uint64_t kind) {
    greg_t *g = uc->uc_mcontext.gregs;
    uintptr_t top = (uintptr_t)t->syscall_stack;
    cj_syscall_frame *f = (cj_syscall_frame *)((top - sizeof(cj_syscall_frame) - CJ_XSAVE_AREA) & ~(uintptr_t)63);
    memset(f, 0, sizeof *f);
    f->rax = (uint64_t)g[REG_RAX];
    f->nr = nr;
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
    f->pad[0] = kind;
    g[REG_RIP] = (greg_t)(uintptr_t)cj_syscall_entry;
    g[REG_RSP] = (greg_t)(uintptr_t)f;
}

// Runs on the kthread's altstack with the application's %fs: touches no TLS and makes
// no system call before the selector allows it.
static void sigsys_handler(int sig, siginfo_t *info, void *ucv) {
    (void)sig;
    cj_kthread_area *a = cj_area_gs();
    ucontext_t *uc = ucv;
    if (a->sud_selector == 0 && cj_seccomp_trapping()) {
        // seccomp: a call from libOS code the filter does not know (a library loaded
        // after it was installed). Make it here, from allowed code.
        greg_t *g = uc->uc_mcontext.gregs;
        long r = syscall(info->si_syscall, g[REG_RDI], g[REG_RSI], g[REG_RDX], g[REG_R10], g[REG_R8], g[REG_R9]);
        g[REG_RAX] = r == -1 ? -errno : r;
        return;
    }
    a->sud_selector = 0;  // ALLOW: from here the libOS may make system calls
    __atomic_fetch_add(&traps, 1, __ATOMIC_RELAXED);
    cj_uthread *t = a->current;
    if (!t || !t->syscall_stack) {
        // A trap from code that is not application code on a uthread: a libOS bug.
        static const char msg[] = "junction: system call trapped outside application code\n";
        ssize_t r = write(2, msg, sizeof msg - 1);
        (void)r;
        abort();
    }
    enter_libos(t, ucv, (uint64_t)info->si_syscall, CJ_ENTRY_TRAP);
}

// MARK: - Signals for the application: faults and asynchronous arrivals

extern char __executable_start[], etext[];

/// The kthread area of the thread a signal interrupted, or NULL (not a kthread). %fs
/// may be the application's, so it is found through %gs.
static cj_kthread_area *area_in_signal(void) {
    if (!cj_have_fsgsbase()) return NULL;  // no way to read %gs safely: no forwarding
    uintptr_t gs;
    __asm__ volatile("rdgsbase %0" : "=r"(gs));
    if (!gs) return NULL;
    cj_kthread_area *a = cj_area_gs();
    return a->self == a ? a : NULL;
}

/// The application thread running application code on this kthread when the signal
/// arrived (selector BLOCK, outside junction's own code), or NULL.
static cj_uthread *interrupted_application(cj_kthread_area *a, ucontext_t *uc) {
    if (!a || a->sud_selector != 1) return NULL;
    cj_uthread *t = a->current;
    if (!t || !t->syscall_stack || !t->app_thread) return NULL;
    uintptr_t rip = (uintptr_t)uc->uc_mcontext.gregs[REG_RIP];
    if (rip >= (uintptr_t)__executable_start && rip < (uintptr_t)etext) return NULL;  // our exit path
    return t;
}

static struct kernel_sigaction_ { void *handler; unsigned long flags; void *restorer; uint64_t mask; } previous[65];

extern char cj_user_access_start[], cj_user_access_end[];
extern void cj_user_access_fault(void);

static pid_t signal_thread;
void cj_set_signal_thread(int32_t tid) { signal_thread = tid; }

static void fault_handler(int sig, siginfo_t *info, void *ucv) {
    ucontext_t *uc = ucv;
    if (info->si_code <= 0 && signal_thread) {
        // Sent (kill, tgkill, sigqueue), not raised by an instruction: the application's
        // signal from outside. The thread that takes signals from outside (it blocks
        // these) hands it over; nothing here changes. The call is made with the
        // selector at ALLOW: on a kthread interrupted in application code it is BLOCK,
        // and a trapped call with SIGSYS blocked in this handler kills the process.
        cj_kthread_area *k = area_in_signal();
        uint8_t selector = k ? k->sud_selector : 0;
        if (k) k->sud_selector = 0;
        syscall(SYS_tgkill, getpid(), signal_thread, sig);
        if (k) k->sud_selector = selector;
        return;
    }
    uintptr_t fault_rip = (uintptr_t)uc->uc_mcontext.gregs[REG_RIP];
    if ((sig == SIGSEGV || sig == SIGBUS) && fault_rip >= (uintptr_t)cj_user_access_start &&
        fault_rip < (uintptr_t)cj_user_access_end) {
        // The libOS touching a bad application pointer: the routine returns -EFAULT.
        uc->uc_mcontext.gregs[REG_RIP] = (greg_t)(uintptr_t)cj_user_access_fault;
        return;
    }
    cj_kthread_area *a = area_in_signal();
    cj_uthread *t = interrupted_application(a, uc);
    if (t) {
        a->sud_selector = 0;
        cj_syscall_frame *f;
        enter_libos(t, uc, (uint64_t)sig, CJ_ENTRY_FAULT);
        f = (cj_syscall_frame *)(uintptr_t)uc->uc_mcontext.gregs[REG_RSP];
        f->pad[1] = (uint64_t)(uintptr_t)info->si_addr;
        f->pad[2] = (uint64_t)(uint32_t)info->si_code;
        f->pad[3] = (uint64_t)uc->uc_mcontext.gregs[REG_ERR] | (uint64_t)uc->uc_mcontext.gregs[REG_TRAPNO] << 32;
        return;
    }
    // Not the application's: the libOS's own fault goes to what was there before (the
    // stack-overflow reporter, or the default action).
    if (a) a->sud_selector = 0;
    struct kernel_sigaction_ *old = &previous[sig];
    if (old->handler == SIG_DFL || old->handler == SIG_IGN) {
        signal(sig, SIG_DFL);
        return;  // the access repeats and the default action ends the process
    }
    ((void (*)(int, siginfo_t *, void *))old->handler)(sig, info, ucv);
}

extern char cj_exit_window_start[], cj_exit_window_end[];
extern char cj_leaf_window_start0[], cj_leaf_window_lea0[], cj_leaf_window_end0[];
extern char cj_leaf_window_start1[], cj_leaf_window_lea1[], cj_leaf_window_end1[];

/// A kick that landed in a leaf call's return (syscall_entry.S, LEAF_RETURN) after its
/// check of the kicked flag: finish the return in the signal context (the application's
/// rsp, the flags from r11, rip = the resume address in rcx), so the kick finds the
/// thread in application code.
static void finish_leaf_return(cj_kthread_area *a, greg_t *g) {
    uintptr_t at = (uintptr_t)g[REG_RIP];
    char *const windows[2][3] = {{cj_leaf_window_start0, cj_leaf_window_lea0, cj_leaf_window_end0},
                                 {cj_leaf_window_start1, cj_leaf_window_lea1, cj_leaf_window_end1}};
    if (a->sud_selector != 1) return;
    for (int i = 0; i < 2; i++) {
        uintptr_t start = (uintptr_t)windows[i][0], lea = (uintptr_t)windows[i][1], end = (uintptr_t)windows[i][2];
        if (at < start || at > end) continue;
        if (at < lea) g[REG_RSP] += 144;       // the flags still on the stack
        else if (at < end) g[REG_RSP] += 136;  // at the lea
        g[REG_EFL] = g[REG_R11];
        g[REG_RIP] = g[REG_RCX];
        return;
    }
}
extern void cj_reenter_from_exit(void);

static void kick_handler(int sig, siginfo_t *info, void *ucv) {
    (void)sig;
    (void)info;
    ucontext_t *uc = ucv;
    cj_kthread_area *a = area_in_signal();
    if (!a) return;
    // Rewriting stops the world (write_jump): acknowledge, wait until the jump is written.
    // While waiting, acknowledge each new epoch too: the patcher may start its next patch
    // before this thread saw the end of the last one (the kick is blocked in here).
    // It yields the CPU while it waits (with the selector at ALLOW for the call: the
    // kick may have interrupted application code), so that the patcher gets one.
    uint8_t selector = a->sud_selector;
    for (int spins = 0;; spins++) {
        uint64_t e = __atomic_load_n(&cj_patch_epoch, __ATOMIC_SEQ_CST);
        cj_kthread_area *s = __atomic_load_n(&cj_patch_stopper, __ATOMIC_SEQ_CST);
        __atomic_store_n(&a->patch_ack, e, __ATOMIC_SEQ_CST);
        if (!s || s == a) break;
        if (spins < 64) {
            __builtin_ia32_pause();
        } else {
            a->sud_selector = 0;
            syscall(SYS_sched_yield);
            a->sud_selector = selector;
        }
    }
    finish_leaf_return(a, uc->uc_mcontext.gregs);
    cj_uthread *t = interrupted_application(a, uc);
    if (t) {
        a->sud_selector = 0;
        enter_libos(t, uc, 0, CJ_ENTRY_SIGNAL);
        return;
    }
    uintptr_t rip = (uintptr_t)uc->uc_mcontext.gregs[REG_RIP];
    t = a->current;
    if (rip >= (uintptr_t)cj_exit_window_start && rip <= (uintptr_t)cj_exit_window_end && t && t->syscall_stack) {
        // On the way out of a call, past its check for signals: the frame still holds
        // everything. Go round once more.
        uintptr_t top = (uintptr_t)t->syscall_stack;
        uintptr_t frame = (top - sizeof(cj_syscall_frame) - CJ_XSAVE_AREA) & ~(uintptr_t)63;
        a->sud_selector = 0;
        uc->uc_mcontext.gregs[REG_RIP] = (greg_t)(uintptr_t)cj_reenter_from_exit;
        uc->uc_mcontext.gregs[REG_RSP] = (greg_t)frame;
        return;
    }
    // Elsewhere in the libOS: the exit path sees the flag.
    __atomic_store_n(&a->kicked, 1, __ATOMIC_RELAXED);
}

static int install(int sig, void (*h)(int, siginfo_t *, void *), uint64_t mask, struct kernel_sigaction_ *old) {
    struct kernel_sigaction_ sa = {
        .handler = (void *)h,
        .flags = SA_SIGINFO | SA_ONSTACK | CJ_SA_RESTORER,
        // The restorer is inside the allowed range: the selector may be BLOCK on return.
        .restorer = (void *)cj_sigreturn_restorer,
        .mask = mask,
    };
    if (syscall(SYS_rt_sigaction, sig, &sa, old, 8) != 0) return -errno;
    return 0;
}

int cj_install_signal_forwarding(int kick) {
    uint64_t mask = (1ULL << (SIGSYS - 1)) | (1ULL << (kick - 1));
    static const int faults[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP};
    for (unsigned i = 0; i < sizeof faults / sizeof faults[0]; i++) {
        int rc = install(faults[i], fault_handler, mask, &previous[faults[i]]);
        if (rc) return rc;
    }
    return install(kick, kick_handler, mask, NULL);
}

struct kernel_sigaction {
    void *handler;
    unsigned long flags;
    void *restorer;
    uint64_t mask;
};

/// Read by syscall_entry.S: use XSAVEC (CPUID.(0xD,1):EAX bit 1).
uint8_t cj_use_xsavec;

/// Read by syscall_entry.S: how calls from rewritten sites save the vector state.
/// 0: XSAVE like every other entry; 1: xmm0-15; 2: ymm0-15; 3: zmm0-31 and k0-7. Moves
/// need the XSAVE image to fit in 4 KiB (the copy goes after it) and leave what libOS
/// code does not touch live: the x87 data registers, MXCSR and the x87 control word
/// (which cj_switch keeps per uthread). JUNCTION_FAST_PATH_XSAVE=1 chooses 0.
uint8_t cj_vector_mode;

uint8_t cj_get_vector_mode(void) { return cj_vector_mode; }

static unsigned xsave_image_size = CJ_XSAVE_AREA;
size_t cj_xsave_size(void) { return xsave_image_size; }

uint64_t cj_xcr0(void) {
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return (uint64_t)hi << 32 | lo;
}

void cj_clear_manual_vector_state(cj_syscall_frame *frame) {
    if (cj_vector_mode) *(uint64_t *)((char *)frame + 192 + 4096 + 2120) = 0;
}

static bool avx512bw(void) {
    unsigned eax, ebx, ecx, edx;
    __asm__ volatile("cpuid" : "=a"(eax), "=b"(ebx), "=c"(ecx), "=d"(edx) : "a"(7), "c"(0));
    return (ebx >> 30) & 1;
}

int cj_interception_init(void) {
    // The frame's XSAVE area must hold every state component the kernel enabled.
    unsigned eax, ebx, ecx, edx;
    __asm__ volatile("cpuid" : "=a"(eax), "=b"(ebx), "=c"(ecx), "=d"(edx) : "a"(0xd), "c"(0));
    if (ebx > CJ_XSAVE_AREA) return -EINVAL;
    unsigned xsave_size = ebx;
    xsave_image_size = (ebx + 63) & ~63u;
    uint32_t xcr0_lo, xcr0_hi;
    __asm__ volatile("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0));
    const char *force = getenv("JUNCTION_FAST_PATH_XSAVE");
    if (xsave_size > 4096 || (force && *force && *force != '0')) cj_vector_mode = 0;
    else if ((xcr0_lo & 0xe0) == 0xe0 && avx512bw()) cj_vector_mode = 3;
    else if ((xcr0_lo & 0xe0) == 0xe0) cj_vector_mode = 0;  // AVX-512F without BW: 16-bit masks, XSAVE
    else if (xcr0_lo & 0x4) cj_vector_mode = 2;
    else cj_vector_mode = 1;
    __asm__ volatile("cpuid" : "=a"(eax), "=b"(ebx), "=c"(ecx), "=d"(edx) : "a"(0xd), "c"(1));
    cj_use_xsavec = (eax & 2) ? 1 : 0;
    struct kernel_sigaction sa = {
        .handler = (void *)sigsys_handler,
        .flags = SA_SIGINFO | SA_ONSTACK | CJ_SA_RESTORER,
        .restorer = (void *)cj_sigreturn_restorer,
        .mask = 1ULL << (CJ_KICK_SIGNAL - 1),
    };
    // Through the raw call: glibc's sigaction would install its own restorer, outside
    // the allowed range.
    if (syscall(SYS_rt_sigaction, SIGSYS, &sa, NULL, 8) != 0) return -errno;
    return 0;
}

void cj_libos_area_init(cj_kthread_area *area) {
    uint64_t fs = 0;
    if (cj_have_fsgsbase()) {
        __asm__ volatile("rdfsbase %0" : "=r"(fs));
    } else {
        syscall(SYS_arch_prctl, 0x1003 /* ARCH_GET_FS */, &fs);
    }
    area->libos_fs = fs;
    area->has_fsgsbase = cj_have_fsgsbase() ? 1 : 0;
    area->sud_selector = 0;
    register_area(area);
}

int cj_sud_enable(cj_kthread_area *area) {
    cj_libos_area_init(area);
    uintptr_t start = (uintptr_t)__start_cj_libos_text;
    uintptr_t len = (uintptr_t)__stop_cj_libos_text - start;
    if (prctl(PR_SET_SYSCALL_USER_DISPATCH, PR_SYS_DISPATCH_ON, start, len, &area->sud_selector) != 0) return -errno;
    return 0;
}

int64_t cj_host_syscall(int64_t nr, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5, uint64_t a6) {
    long r = syscall(nr, a1, a2, a3, a4, a5, a6);
    return r == -1 ? -errno : r;
}

// fork of the whole instance (SyscallEmu's ForkCalls.swift): the rewriter's lock is held
// across the host fork so the child's copy is in a known state; in the child only the
// forking thread exists, so the kthread areas the patcher kicks start empty again (the
// child's new kthreads register theirs) and no patch is in progress.
void cj_fork_prepare(void) { pthread_mutex_lock(&rewrite_lock); }

void cj_fork_parent(void) { pthread_mutex_unlock(&rewrite_lock); }

void cj_fork_child(void) {
    if (mem_fd >= 0) close(mem_fd);  // the parent's memory
    mem_fd = -1;
    __atomic_store_n(&cj_leaf_pid, 0, __ATOMIC_RELEASE);  // the parent's: the child's dispatcher sets its own
    pthread_mutex_t fresh = PTHREAD_MUTEX_INITIALIZER;
    rewrite_lock = fresh;
    for (int i = 0; i < 256; i++) __atomic_store_n(&areas[i], NULL, __ATOMIC_RELAXED);
    __atomic_store_n(&area_count, 0, __ATOMIC_RELEASE);
    __atomic_store_n(&cj_patch_stopper, NULL, __ATOMIC_RELEASE);
    memset(seen_once, 0, sizeof seen_once);
    __atomic_store_n(&patch_on_second_trap, true, __ATOMIC_RELAXED);
}

int cj_sud_disable(void) {
    if (prctl(PR_SET_SYSCALL_USER_DISPATCH, PR_SYS_DISPATCH_OFF, 0, 0, 0) != 0) return -errno;
    return 0;
}

uintptr_t cj_area_running_application(void *area) {
    cj_kthread_area *a = area;
    if (!a || __atomic_load_n(&a->sud_selector, __ATOMIC_RELAXED) != 1) return 0;
    return (uintptr_t)__atomic_load_n(&a->current, __ATOMIC_RELAXED);
}
