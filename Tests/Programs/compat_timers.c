// compat_timers.c: interval timers and POSIX timers deliver their signals as Linux
// does, run natively and under junction: ITIMER_REAL (shared with alarm), the CPU-time
// ITIMER_VIRTUAL and ITIMER_PROF, timer_create on a wall clock and a CPU-time clock,
// SIGEV_SIGNAL with si_value and SI_TIMER, SIGEV_THREAD_ID to one thread, SIGEV_NONE,
// timer_gettime/getoverrun/delete, and the errors. Waits are for the signals
// themselves (sigsuspend, sigwaitinfo, a loop on a flag), never for a time.
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define SHOW(what, expr) do { errno = 0; long r_ = (long)(expr); \
    printf("%s = %ld%s%s\n", what, r_, r_ < 0 ? " " : "", r_ < 0 ? strerrorname_np(errno) : ""); } while (0)

static volatile sig_atomic_t alarms, vtalarms, profs, usr1, usr2;
static volatile int last_code, last_value, last_timerid;

static void on_signal(int sig, siginfo_t *info, void *uc) {
    (void)uc;
    if (sig == SIGALRM) alarms++;
    if (sig == SIGVTALRM) vtalarms++;
    if (sig == SIGPROF) profs++;
    if (sig == SIGUSR1) usr1++;
    if (sig == SIGUSR2) usr2++;
    last_code = info->si_code;
    last_value = info->si_value.sival_int;
    last_timerid = info->si_timerid;
}

static void handle(int sig) {
    struct sigaction sa = {0};
    sa.sa_sigaction = on_signal;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigaction(sig, &sa, NULL);
}

static void wait_until(volatile sig_atomic_t *counter, int n) {
    sigset_t none;
    sigemptyset(&none);
    while (*counter < n) sigsuspend(&none);
}

static pid_t worker_tid;
static volatile int worker_ready;

static void *worker(void *arg) {
    (void)arg;
    worker_tid = syscall(SYS_gettid);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGRTMIN + 2);
    __atomic_store_n(&worker_ready, 1, __ATOMIC_RELEASE);
    siginfo_t info;
    int sig = sigwaitinfo(&set, &info);
    printf("worker took %s code %d value %d\n", sig == SIGRTMIN + 2 ? "SIGRTMIN+2" : "other", info.si_code, info.si_value.sival_int);
    return NULL;
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    sigset_t empty;  // whatever the parent blocked (a test runner may)
    sigemptyset(&empty);
    sigprocmask(SIG_SETMASK, &empty, NULL);
    handle(SIGALRM); handle(SIGVTALRM); handle(SIGPROF); handle(SIGUSR1); handle(SIGUSR2);

    // ITIMER_REAL: a periodic timer fires again and again.
    struct itimerval it = {{0, 2000}, {0, 2000}}, old;
    SHOW("setitimer real", setitimer(ITIMER_REAL, &it, NULL));
    wait_until(&alarms, 3);
    printf("SIGALRM x3, si_code %s\n", last_code == SI_KERNEL ? "SI_KERNEL" : "other");
    struct itimerval off = {{0, 0}, {0, 0}};
    SHOW("setitimer off", setitimer(ITIMER_REAL, &off, &old));
    printf("old interval %ld us\n", (long)old.it_interval.tv_usec);
    SHOW("getitimer", getitimer(ITIMER_REAL, &old));
    printf("now %ld %ld\n", (long)old.it_value.tv_sec, (long)old.it_value.tv_usec);
    // alarm and ITIMER_REAL are one timer.
    alarm(100);
    getitimer(ITIMER_REAL, &old);
    printf("alarm shows in itimer: %d\n", old.it_value.tv_sec > 90 && old.it_value.tv_sec <= 100);
    printf("alarm(0) returns %u\n", alarm(0));
    SHOW("setitimer bad which", setitimer(7, &it, NULL));
    struct itimerval badv = {{0, 0}, {0, 2000000}};
    SHOW("setitimer bad usec", setitimer(ITIMER_REAL, &badv, NULL));

    // CPU-time itimers: fire while this thread computes.
    struct itimerval cpu = {{0, 0}, {0, 5000}};
    SHOW("setitimer virtual", setitimer(ITIMER_VIRTUAL, &cpu, NULL));
    volatile unsigned long spin = 0;
    while (!vtalarms) spin++;
    printf("SIGVTALRM after computing\n");
    SHOW("setitimer prof", setitimer(ITIMER_PROF, &cpu, NULL));
    while (!profs) spin++;
    printf("SIGPROF after computing\n");

    // POSIX timer, SIGEV_SIGNAL with a value.
    struct sigevent ev = {0};
    ev.sigev_notify = SIGEV_SIGNAL;
    ev.sigev_signo = SIGUSR1;
    ev.sigev_value.sival_int = 42;
    timer_t t1;
    SHOW("timer_create", timer_create(CLOCK_MONOTONIC, &ev, &t1));
    struct itimerspec once = {{0, 0}, {0, 3000000}}, cur;
    SHOW("timer_settime", timer_settime(t1, 0, &once, NULL));
    wait_until(&usr1, 1);
    printf("SIGUSR1 code %s value %d timerid matches %d\n", last_code == SI_TIMER ? "SI_TIMER" : "other", last_value,
           last_timerid == (int)(long)t1);
    SHOW("timer_gettime", timer_gettime(t1, &cur));
    printf("disarmed %d\n", cur.it_value.tv_sec == 0 && cur.it_value.tv_nsec == 0);
    SHOW("timer_getoverrun", timer_getoverrun(t1));
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    struct itimerspec abs = {{0, 0}, now};
    SHOW("timer_settime absolute past", timer_settime(t1, TIMER_ABSTIME, &abs, NULL));
    wait_until(&usr1, 2);
    printf("absolute timer fired\n");
    SHOW("timer_delete", timer_delete(t1));
    SHOW("timer_delete again", timer_delete(t1));
    SHOW("timer_settime deleted", timer_settime(t1, 0, &once, NULL));

    // The default event: SIGALRM with the timer's id as its value.
    timer_t t2;
    alarms = 0;
    SHOW("timer_create default", timer_create(CLOCK_REALTIME, NULL, &t2));
    timer_settime(t2, 0, &once, NULL);
    wait_until(&alarms, 1);
    printf("default: SIGALRM value is the id %d\n", last_value == (int)(long)t2);
    timer_delete(t2);

    // A CPU-time clock.
    timer_t t3;
    ev.sigev_signo = SIGUSR2;
    SHOW("timer_create cputime", timer_create(CLOCK_PROCESS_CPUTIME_ID, &ev, &t3));
    struct itimerspec cpu_once = {{0, 0}, {0, 5000000}};
    timer_settime(t3, 0, &cpu_once, NULL);
    while (!usr2) spin++;
    printf("SIGUSR2 after computing\n");
    timer_delete(t3);

    // SIGEV_NONE: no signal, the time can be read.
    timer_t t4;
    ev.sigev_notify = SIGEV_NONE;
    SHOW("timer_create none", timer_create(CLOCK_MONOTONIC, &ev, &t4));
    struct itimerspec later = {{0, 0}, {100, 0}};
    timer_settime(t4, 0, &later, NULL);
    timer_gettime(t4, &cur);
    printf("none: remaining %d\n", cur.it_value.tv_sec > 90);
    timer_delete(t4);

    // SIGEV_THREAD_ID: the signal goes to that thread.
    sigset_t block;
    sigemptyset(&block);
    sigaddset(&block, SIGRTMIN + 2);
    pthread_sigmask(SIG_BLOCK, &block, NULL);
    pthread_t th;
    pthread_create(&th, NULL, worker, NULL);
    while (!__atomic_load_n(&worker_ready, __ATOMIC_ACQUIRE)) sched_yield();
    struct sigevent tev = {0};
    tev.sigev_notify = SIGEV_THREAD_ID;
    tev.sigev_signo = SIGRTMIN + 2;
    tev.sigev_value.sival_int = 7;
    tev._sigev_un._tid = worker_tid;
    timer_t t5;
    SHOW("timer_create thread", timer_create(CLOCK_MONOTONIC, &tev, &t5));
    timer_settime(t5, 0, &once, NULL);
    pthread_join(th, NULL);
    timer_delete(t5);

    // Errors.
    timer_t bad;
    ev.sigev_notify = SIGEV_SIGNAL;
    SHOW("timer_create bad clock", timer_create(99, &ev, &bad));
    ev.sigev_notify = 99;
    SHOW("timer_create bad notify", syscall(SYS_timer_create, CLOCK_MONOTONIC, &ev, &bad));
    ev.sigev_notify = SIGEV_SIGNAL;
    ev.sigev_signo = 0;
    SHOW("timer_create bad signal", syscall(SYS_timer_create, CLOCK_MONOTONIC, &ev, &bad));
    tev._sigev_un._tid = 999999;
    SHOW("timer_create bad tid", syscall(SYS_timer_create, CLOCK_MONOTONIC, &tev, &bad));
    SHOW("timer_gettime bad id", syscall(SYS_timer_gettime, 12345, &cur));
    return 0;
}
