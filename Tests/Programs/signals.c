// signals.c: handlers installed with sigaction run for raise/kill/tgkill to the process
// itself, see siginfo and a ucontext, may use the stack and floating point, and the
// program resumes where it was with its registers intact.
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static volatile sig_atomic_t hits;
static volatile int last_signo, last_code, saw_context;
static volatile double fp_in_handler;

static void handler(int sig, siginfo_t *info, void *ucv) {
    ucontext_t *uc = ucv;
    hits++;
    last_signo = info->si_signo;
    last_code = info->si_code;
    saw_context = uc != NULL && uc->uc_mcontext.gregs[REG_RIP] != 0;
    char buf[256];
    memset(buf, sig, sizeof buf);  // uses the stack
    fp_in_handler = buf[17] * 1.5;
}

int main(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = handler;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGUSR2, &sa, NULL);
    // Whatever mask the parent left, start with these two unblocked.
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGUSR2);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
    double x = 3.25;
    raise(SIGUSR1);
    printf("after raise: hits=%d signo=%d code=%d context=%d fp=%.1f x=%.2f\n", hits, last_signo, last_code,
           saw_context, fp_in_handler, x);
    kill(getpid(), SIGUSR2);
    printf("after kill: hits=%d signo=%d code=%d\n", hits, last_signo, last_code);
    syscall(SYS_tgkill, getpid(), syscall(SYS_gettid), SIGUSR1);
    printf("after tgkill: hits=%d signo=%d code=%d\n", hits, last_signo, last_code);
    // A blocked signal waits until it is unblocked.
    sigset_t usr2;
    sigemptyset(&usr2);
    sigaddset(&usr2, SIGUSR2);
    sigprocmask(SIG_BLOCK, &usr2, NULL);
    kill(getpid(), SIGUSR2);
    printf("blocked: hits=%d\n", hits);
    sigprocmask(SIG_UNBLOCK, &usr2, NULL);
    printf("unblocked: hits=%d signo=%d\n", hits, last_signo);
    struct sigaction old;
    sigaction(SIGUSR1, NULL, &old);
    printf("handler kept: %d\n", old.sa_sigaction == handler);
    signal(SIGUSR2, SIG_IGN);
    kill(getpid(), SIGUSR2);
    printf("ignored: hits=%d\n", hits);
    return 0;
}
