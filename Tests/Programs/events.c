// events.c: what servers wait on beside sockets, natively and under junction: timerfd
// (one-shot, periodic, gettime, errors), signalfd (blocked signals read as records,
// readiness in poll/epoll/select), select and pselect6 on pipes.
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

static void show(const char *what, long r) {
    if (r < 0) printf("%-52s -1 %s\n", what, strerrorname_np(errno));
    else printf("%-52s %ld\n", what, r);
}
#define T(expr) show(#expr, (long)(expr))

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    // The test runner may start us with signals blocked; and a hang ends within a minute.
    sigset_t none; sigemptyset(&none); sigprocmask(SIG_SETMASK, &none, NULL);
    alarm(60);
    puts("-- timerfd");
    T(timerfd_create(99, 0));
    T(timerfd_create(CLOCK_MONOTONIC, 0x10));
    int t = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    uint64_t n = 0;
    T(read(t, &n, 8));
    T(read(t, &n, 4));
    struct itimerspec cur;
    T(timerfd_gettime(t, &cur)); printf("disarmed %ld %ld\n", (long)cur.it_value.tv_sec, cur.it_value.tv_nsec);
    struct itimerspec bad = { .it_value = { 0, 1000000000 } };
    T(timerfd_settime(t, 0, &bad, NULL));
    T(timerfd_settime(t, 4, &bad, NULL));
    T(timerfd_settime(0, 0, &bad, NULL));
    struct itimerspec once = { .it_value = { 0, 20000000 } };
    T(timerfd_settime(t, 0, &once, NULL));
    T(timerfd_gettime(t, &cur)); printf("armed %d\n", cur.it_value.tv_nsec > 0 || cur.it_value.tv_sec > 0);
    struct pollfd pf = { t, POLLIN, 0 };
    T(poll(&pf, 1, 10000)); printf("revents %#x\n", pf.revents);
    T(read(t, &n, 8)); printf("expirations %llu\n", (unsigned long long)n);
    T(read(t, &n, 8));
    // Periodic, seen through epoll and read blocking.
    int b = timerfd_create(CLOCK_MONOTONIC, 0);
    struct itimerspec every = { .it_interval = { 0, 5000000 }, .it_value = { 0, 5000000 } };
    T(timerfd_settime(b, 0, &every, NULL));
    int ep = epoll_create1(0);
    struct epoll_event ev = { .events = EPOLLIN, .data.fd = b };
    T(epoll_ctl(ep, EPOLL_CTL_ADD, b, &ev));
    T(epoll_wait(ep, &ev, 1, 10000));
    T(read(b, &n, 8)); printf("at least one %d\n", n >= 1);
    T(read(b, &n, 8)); printf("at least one %d\n", n >= 1);
    struct itimerspec old;
    struct itimerspec off = { 0 };
    T(timerfd_settime(b, 0, &off, &old)); printf("old interval %ld\n", old.it_interval.tv_nsec);
    // Absolute, in the past: fires at once.
    struct timespec now; clock_gettime(CLOCK_REALTIME, &now);
    int r = timerfd_create(CLOCK_REALTIME, 0);
    struct itimerspec past = { .it_value = { now.tv_sec - 1, 0 } };
    T(timerfd_settime(r, TFD_TIMER_ABSTIME, &past, NULL));
    T(read(r, &n, 8)); printf("expirations %llu\n", (unsigned long long)n);

    puts("-- signalfd");
    sigset_t set; sigemptyset(&set); sigaddset(&set, SIGUSR1); sigaddset(&set, SIGUSR2);
    sigprocmask(SIG_BLOCK, &set, NULL);
    T(syscall(SYS_signalfd4, -1, &set, 4, 0));
    T(syscall(SYS_signalfd4, -1, &set, 8, 0x10));
    T(syscall(SYS_signalfd, t, &set, 8));
    int s = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    struct signalfd_siginfo si[2];
    T(read(s, si, sizeof si));
    T(read(s, si, 10));
    struct pollfd sp = { s, POLLIN, 0 };
    T(poll(&sp, 1, 0));
    raise(SIGUSR1);
    kill(getpid(), SIGUSR2);
    T(poll(&sp, 1, 10000)); printf("revents %#x\n", sp.revents);
    fd_set rs; FD_ZERO(&rs); FD_SET(s, &rs);
    T(select(s + 1, &rs, NULL, NULL, NULL)); printf("isset %d\n", FD_ISSET(s, &rs));
    T(read(s, si, sizeof si)); printf("signals %u %u code-user %d\n", si[0].ssi_signo, si[1].ssi_signo, si[1].ssi_code == SI_USER);
    T(read(s, si, sizeof si));
    sigset_t one; sigemptyset(&one); sigaddset(&one, SIGUSR2);
    T(signalfd(s, &one, 0));
    raise(SIGUSR1);
    T(read(s, si, sizeof si));
    struct timespec zero = { 0, 0 };
    T(sigtimedwait(&set, NULL, &zero));

    puts("-- select on pipes");
    int p[2]; pipe(p);
    FD_ZERO(&rs); FD_SET(p[0], &rs);
    fd_set ws; FD_ZERO(&ws); FD_SET(p[1], &ws);
    struct timeval tv = { 0, 0 };
    T(select(p[1] + 1, &rs, &ws, NULL, &tv)); printf("r %d w %d\n", FD_ISSET(p[0], &rs), FD_ISSET(p[1], &ws));
    write(p[1], "x", 1);
    FD_ZERO(&rs); FD_SET(p[0], &rs);
    struct timespec ts = { 5, 0 };
    sigemptyset(&none);
    T(pselect(p[0] + 1, &rs, NULL, NULL, &ts, &none)); printf("r %d\n", FD_ISSET(p[0], &rs));
    close(p[0]);
    FD_ZERO(&rs); FD_SET(p[0], &rs);
    T(select(p[0] + 1, &rs, NULL, NULL, &tv));
    FD_ZERO(&ws); FD_SET(p[1], &ws);
    T(select(p[1] + 1, NULL, &ws, NULL, &tv)); printf("w %d\n", FD_ISSET(p[1], &ws));
    tv.tv_usec = 10000;
    T(select(0, NULL, NULL, NULL, &tv)); printf("left %ld\n", (long)tv.tv_usec);
    return 0;
}
