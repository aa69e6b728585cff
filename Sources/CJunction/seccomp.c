// seccomp.c: a seccomp filter that makes one system call fail with a chosen errno, for
// this process from now on (used to test fallbacks when a policy forbids a call).
#include "cjunction.h"

#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

int cj_seccomp_deny(int syscall_nr, int error) {
    struct sock_filter filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)syscall_nr, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (error & SECCOMP_RET_DATA)),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {.len = sizeof filter / sizeof filter[0], .filter = filter};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return -errno;
    if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &prog) != 0) return -errno;
    return 0;
}

// MARK: - The seccomp trap path

#include <link.h>
#include <stdlib.h>

struct code_ranges { uintptr_t lo[256], hi[256]; int n; };

static int collect(struct dl_phdr_info *info, size_t size, void *arg) {
    (void)size;
    struct code_ranges *r = arg;
    for (int i = 0; i < info->dlpi_phnum && r->n < 256; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X)) continue;
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
        r->lo[r->n] = lo & ~(uintptr_t)4095;
        r->hi[r->n] = (lo + ph->p_memsz + 4095) & ~(uintptr_t)4095;
        r->n++;
    }
    return 0;
}

static uint8_t seccomp_mode;
bool cj_seccomp_trapping(void) { return seccomp_mode; }

int cj_seccomp_trap_outside_host(void) {
    // The code of this process now (junction, its libraries, the vDSO) may call the
    // kernel; every other instruction pointer, the application's code and its own copy
    // of libc among them, traps with SIGSYS.
    struct code_ranges *r = calloc(1, sizeof *r);
    if (!r) return -ENOMEM;
    dl_iterate_phdr(collect, r);
    size_t cap = 8 + (size_t)r->n * 11;
    struct sock_filter *f = calloc(cap, sizeof *f);
    if (!f) { free(r); return -ENOMEM; }
    size_t k = 0;
    const unsigned ip_lo = offsetof(struct seccomp_data, instruction_pointer);
    const unsigned ip_hi = ip_lo + 4;
    f[k++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch));
    f[k++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0);
    f[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS);
    for (int i = 0; i < r->n; i++) {
        uint32_t lh = (uint32_t)(r->lo[i] >> 32), ll = (uint32_t)r->lo[i];
        uint32_t hh = (uint32_t)(r->hi[i] >> 32), hl = (uint32_t)r->hi[i];
        // A block of 11: falls through to the next block unless lo <= ip < hi (allow).
        f[k++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, ip_hi);        // 0
        f[k++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JGT | BPF_K, lh, 3, 0);     // 1: above lo's high word
        f[k++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, lh, 0, 8);     // 2: below: next block
        f[k++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, ip_lo);        // 3
        f[k++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, ll, 0, 6);     // 4: below lo: next
        f[k++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, ip_hi);        // 5: ip >= lo
        f[k++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JGT | BPF_K, hh, 4, 0);     // 6: above hi: next
        f[k++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, hh, 0, 2);     // 7: below hi's high word: allow
        f[k++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, ip_lo);        // 8
        f[k++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, hl, 1, 0);     // 9: at or above hi: next
        f[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);     // 10
    }
    f[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRAP);
    struct sock_fprog prog = {.len = (unsigned short)k, .filter = f};
    int rc = 0;
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) rc = -errno;
    else if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &prog) != 0) rc = -errno;
    if (rc == 0) seccomp_mode = 1;
    free(f);
    free(r);
    return rc;
}
