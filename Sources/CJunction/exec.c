// exec.c: leaves the process in the state execve(2) would before a loaded program runs.
#include "cjunction.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

// glibc 2.35+ registers rseq for every thread and exports where.
extern const ptrdiff_t __rseq_offset __attribute__((weak));
extern const unsigned int __rseq_size __attribute__((weak));
#ifndef RSEQ_SIG
#define RSEQ_SIG 0x53053053
#endif
#define CJ_RSEQ_FLAG_UNREGISTER 1

unsigned long cj_getauxval(unsigned long type) { return getauxval(type); }

static void unregister_rseq(void) {
    if (&__rseq_size == NULL || &__rseq_offset == NULL || __rseq_size == 0) return;
    char *tp;
    __asm__("movq %%fs:0, %0" : "=r"(tp));
    // The kernel checks the length glibc registered with (at least 32).
    unsigned int len = __rseq_size < 32 ? 32 : __rseq_size;
    syscall(SYS_rseq, tp + __rseq_offset, len, CJ_RSEQ_FLAG_UNREGISTER, RSEQ_SIG);
}

static void close_cloexec_fds(void) {
    int dfd = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) return;
    DIR *dir = fdopendir(dfd);
    if (!dir) { close(dfd); return; }
    int victims[256], n = 0;
    struct dirent *e;
    while ((e = readdir(dir)) != NULL && n < 256) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
        int fd = atoi(e->d_name);
        if (fd == dfd) continue;
        int flags = fcntl(fd, F_GETFD);
        if (flags >= 0 && (flags & FD_CLOEXEC)) victims[n++] = fd;
    }
    closedir(dir);
    for (int i = 0; i < n; i++) close(victims[i]);
}

void cj_exec_reset(const char *comm) {
    for (int sig = 1; sig < NSIG; sig++) {
        if (sig == SIGKILL || sig == SIGSTOP) continue;
        struct sigaction old;
        if (sigaction(sig, NULL, &old) != 0) continue;
        if (!(old.sa_flags & SA_SIGINFO) && (old.sa_handler == SIG_IGN || old.sa_handler == SIG_DFL)) continue;
        signal(sig, SIG_DFL);
    }
    stack_t ss = {.ss_sp = NULL, .ss_size = 0, .ss_flags = SS_DISABLE};
    sigaltstack(&ss, NULL);
    close_cloexec_fds();
    if (comm) prctl(PR_SET_NAME, comm, 0, 0, 0);
    unregister_rseq();
}
