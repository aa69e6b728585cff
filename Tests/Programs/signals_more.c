// signals_more.c: faults handled by the program (SIGSEGV fixed up, SIGFPE left by
// siglongjmp, SIGILL and SIGTRAP resumed by editing the ucontext), the alternate signal
// stack, per-thread masks and thread-directed signals, blocking calls ended by a handler
// (EINTR) or restarted (SA_RESTART), sigsuspend, sigtimedwait, sigpending, alarm and
// pause, and EPIPE with SIGPIPE ignored. Every line it prints is the same natively.
//
//   signals_more            all of the above
//   signals_more sigpipe    write to a pipe without readers: SIGPIPE ends the process
//   signals_more spin       wait for SIGUSR1 (sent from outside) in a loop without calls
//   signals_more segv       a store to an unmapped address without a handler
//   signals_more badfp      a handler corrupts its frame's XSAVE header (SIGSEGV)
//   signals_more wait       print "ready", then sleep until SIGTERM (default action)
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t hits, last_sig;
static volatile pid_t handler_tid;
static volatile uintptr_t handler_sp;
static volatile int handler_ss_flags;
static volatile void *fault_addr;
static volatile int fault_code;
static sigjmp_buf jump;

static pid_t gettid_(void) { return (pid_t)syscall(SYS_gettid); }

static void on(int sig, void (*h)(int, siginfo_t *, void *), int flags) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = h;
    sa.sa_flags = SA_SIGINFO | flags;
    sigemptyset(&sa.sa_mask);
    sigaction(sig, &sa, NULL);
}

static void mask(int how, int sig) {
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, sig);
    pthread_sigmask(how, &s, NULL);
}

static void counting(int sig, siginfo_t *info, void *uc) {
    (void)info; (void)uc;
    last_sig = sig;
    handler_tid = gettid_();
    int local;
    handler_sp = (uintptr_t)&local;
    stack_t ss;
    sigaltstack(NULL, &ss);
    handler_ss_flags = ss.ss_flags;
    __atomic_fetch_add(&hits, 1, __ATOMIC_SEQ_CST);  // last: other threads wait for it
}

static char *page;
static void segv(int sig, siginfo_t *info, void *uc) {
    (void)sig; (void)uc;
    fault_addr = info->si_addr;
    fault_code = info->si_code;
    mprotect(page, 4096, PROT_READ | PROT_WRITE);  // the faulting store repeats and succeeds
}

static void fpe(int sig, siginfo_t *info, void *uc) {
    (void)sig; (void)uc;
    fault_code = info->si_code;
    siglongjmp(jump, 1);
}

static void skip2(int sig, siginfo_t *info, void *ucv) {
    (void)info;
    ucontext_t *uc = ucv;
    last_sig = sig;
    if (sig == SIGILL) uc->uc_mcontext.gregs[REG_RIP] += 2;  // past ud2
    // SIGTRAP from int3: rip is already past it.
}

static void break_fpstate(int sig, siginfo_t *info, void *ucv) {
    (void)sig; (void)info;
    ucontext_t *uc = ucv;
    // A reserved byte of the XSAVE header (offset 512 + 16) made nonzero.
    ((unsigned char *)uc->uc_mcontext.fpregs)[512 + 16] = 1;
}

struct later { pthread_t target; int sig; int ms; int write_fd; };
static void *signal_later(void *arg) {
    struct later *l = arg;
    struct timespec ts = {0, l->ms * 1000000L};
    nanosleep(&ts, NULL);
    pthread_kill(l->target, l->sig);
    if (l->write_fd >= 0) {
        nanosleep(&ts, NULL);
        if (write(l->write_fd, "x", 1) != 1) perror("write");
    }
    return NULL;
}

static pthread_t later(int sig, int ms, int write_fd) {
    static struct later l;
    l = (struct later){pthread_self(), sig, ms, write_fd};
    pthread_t t;
    pthread_create(&t, NULL, signal_later, &l);
    return t;
}

static sem_t started, stop;
static volatile pid_t worker_tid;
static void *worker(void *arg) {
    (void)arg;
    worker_tid = gettid_();
    sem_post(&started);
    while (sem_wait(&stop) != 0 && errno == EINTR) {}
    return NULL;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    sigset_t none;
    sigemptyset(&none);
    pthread_sigmask(SIG_SETMASK, &none, NULL);

    if (argc > 1 && strcmp(argv[1], "sigpipe") == 0) {
        int p[2];
        pipe(p);
        close(p[0]);
        printf("writing\n");
        ssize_t r = write(p[1], "x", 1);
        printf("not reached: %zd\n", r);
        return 0;
    }
    if (argc > 1 && strcmp(argv[1], "spin") == 0) {
        on(SIGUSR1, counting, 0);
        printf("spinning\n");
        while (!hits) __asm__ volatile("" ::: "memory");
        printf("handled in the loop: %d\n", last_sig);
        return 0;
    }
    if (argc > 1 && strcmp(argv[1], "badfp") == 0) {
        // A handler that breaks its frame's saved vector state: sigreturn cannot restore
        // it, and Linux ends the process with SIGSEGV.
        on(SIGUSR1, break_fpstate, 0);
        printf("breaking\n");
        raise(SIGUSR1);
        printf("not reached\n");
        return 0;
    }
    if (argc > 1 && strcmp(argv[1], "segv") == 0) {
        printf("crashing\n");
        *(volatile int *)8 = 1;
        return 0;
    }
    if (argc > 1 && strcmp(argv[1], "wait") == 0) {
        printf("ready\n");
        for (;;) sleep(10);
    }

    // Faults.
    page = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    on(SIGSEGV, segv, 0);
    page[100] = 42;
    printf("segv: address ok %d, code %d, value %d\n", fault_addr == page + 100, fault_code, page[100]);
    on(SIGFPE, fpe, 0);
    volatile int zero = 0, r = 7;
    if (sigsetjmp(jump, 1) == 0) r = r / zero;
    printf("fpe: code %d\n", fault_code);
    on(SIGILL, skip2, 0);
    __asm__ volatile("ud2");
    printf("ill: resumed after sig %d\n", last_sig);
    on(SIGTRAP, skip2, 0);
    last_sig = 0;
    __asm__ volatile("int3");
    printf("trap: resumed after sig %d\n", last_sig);

    // The alternate stack.
    int rc;
    stack_t ss = {.ss_sp = malloc(65536), .ss_size = 65536, .ss_flags = 0};
    printf("sigaltstack: %d\n", sigaltstack(&ss, NULL));
    on(SIGUSR1, counting, SA_ONSTACK);
    raise(SIGUSR1);
    printf("on the alternate stack: %d, flags %d\n",
           handler_sp >= (uintptr_t)ss.ss_sp && handler_sp < (uintptr_t)ss.ss_sp + ss.ss_size, handler_ss_flags);
    stack_t now;
    sigaltstack(NULL, &now);
    printf("after: flags %d, size %zu\n", now.ss_flags, now.ss_size);
    stack_t tiny = {.ss_sp = ss.ss_sp, .ss_size = 1024, .ss_flags = 0};
    errno = 0;
    rc = sigaltstack(&tiny, NULL);
    printf("too small: %d %s\n", rc, strerror(errno));
    on(SIGUSR1, counting, 0);

    // Per-thread masks: the process-directed signal goes to the thread not blocking it.
    sem_init(&started, 0, 0);
    sem_init(&stop, 0, 0);
    pthread_t w;
    pthread_create(&w, NULL, worker, NULL);
    sem_wait(&started);
    mask(SIG_BLOCK, SIGUSR2);
    on(SIGUSR2, counting, 0);
    hits = 0;
    kill(getpid(), SIGUSR2);
    while (!hits) sched_yield();
    printf("kill went to the worker: %d\n", handler_tid == worker_tid);
    hits = 0;
    pthread_kill(w, SIGUSR1);
    while (!hits) sched_yield();
    printf("pthread_kill ran in the worker: %d\n", handler_tid == worker_tid);
    sem_post(&stop);
    pthread_join(w, NULL);
    mask(SIG_UNBLOCK, SIGUSR2);

    // sigpending.
    mask(SIG_BLOCK, SIGUSR1);
    hits = 0;
    raise(SIGUSR1);
    sigset_t pend;
    sigpending(&pend);
    printf("pending: %d, hits %d\n", sigismember(&pend, SIGUSR1), hits);
    mask(SIG_UNBLOCK, SIGUSR1);
    printf("after unblocking: hits %d\n", hits);

    // A handler without SA_RESTART ends a blocking read with EINTR; with it, the read
    // goes on.
    int p[2];
    pipe(p);
    char c;
    pthread_t t = later(SIGUSR1, 50, -1);
    errno = 0;
    ssize_t n = read(p[0], &c, 1);
    printf("read: %zd %s\n", n, strerror(errno));
    pthread_join(t, NULL);
    on(SIGUSR1, counting, SA_RESTART);
    hits = 0;
    t = later(SIGUSR1, 50, p[1]);
    n = read(p[0], &c, 1);
    printf("restarted read: %zd '%c', hits %d\n", n, c, hits);
    pthread_join(t, NULL);
    on(SIGUSR1, counting, 0);

    // nanosleep and sem_wait end with EINTR.
    t = later(SIGUSR1, 50, -1);
    struct timespec req = {5, 0}, rem = {0, 0};
    errno = 0;
    rc = nanosleep(&req, &rem);
    printf("nanosleep: %d %s, remaining over 4 s: %d\n", rc, strerror(errno), rem.tv_sec >= 4);
    pthread_join(t, NULL);
    sem_t never;
    sem_init(&never, 0, 0);
    t = later(SIGUSR1, 50, -1);
    errno = 0;
    rc = sem_wait(&never);
    printf("sem_wait: %d %s\n", rc, strerror(errno));
    pthread_join(t, NULL);

    // sigsuspend: waits with another mask, returns EINTR, the old mask comes back.
    mask(SIG_BLOCK, SIGUSR1);
    hits = 0;
    t = later(SIGUSR1, 50, -1);
    errno = 0;
    rc = sigsuspend(&none);
    sigset_t cur;
    pthread_sigmask(SIG_BLOCK, NULL, &cur);
    printf("sigsuspend: %d %s, hits %d, USR1 blocked again %d\n", rc, strerror(errno), hits, sigismember(&cur, SIGUSR1));
    pthread_join(t, NULL);

    // sigtimedwait takes a blocked signal without running its handler.
    hits = 0;
    t = later(SIGUSR1, 50, -1);
    sigset_t want;
    sigemptyset(&want);
    sigaddset(&want, SIGUSR1);
    siginfo_t si;
    int got = sigwaitinfo(&want, &si);
    printf("sigwaitinfo: %d, signo %d, code %d, hits %d\n", got, si.si_signo, si.si_code, hits);
    pthread_join(t, NULL);
    struct timespec shortly = {0, 10000000};
    errno = 0;
    got = sigtimedwait(&want, &si, &shortly);
    printf("sigtimedwait timeout: %d %s\n", got, strerror(errno));
    mask(SIG_UNBLOCK, SIGUSR1);

    // alarm and pause.
    on(SIGALRM, counting, 0);
    hits = 0;
    printf("alarm: %u\n", alarm(1));
    errno = 0;
    rc = pause();
    printf("pause: %d %s, signal %d\n", rc, strerror(errno), last_sig);
    printf("alarm after: %u\n", alarm(0));

    // EPIPE with SIGPIPE ignored.
    signal(SIGPIPE, SIG_IGN);
    int q[2];
    pipe(q);
    close(q[0]);
    errno = 0;
    n = write(q[1], "x", 1);
    printf("write to a closed pipe: %zd %s\n", n, strerror(errno));
    return 0;
}
