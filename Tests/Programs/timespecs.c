// timespecs.c: the struct timespec arguments of the calls that wait or set a time, as
// Linux checks them (timespec64_valid: tv_sec >= 0 and 0 <= tv_nsec < 10^9, else
// EINVAL) and takes them (a huge tv_sec is valid and saturates to "forever", never an
// overflow). Every wait here ends at once: something is ready or the call is refused.
// Output must match Linux's.
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>
#include <linux/futex.h>

static void show(const char *what, long r) {
    if (r < 0) printf("%s = -1 %s\n", what, strerrorname_np(errno));
    else printf("%s = %ld\n", what, r);
}

static const struct timespec bad[] = { {0, 1000000000}, {0, -1}, {-1, 0}, {0, INT64_MAX} };
static const char *bad_names[] = { "nsec 1e9", "nsec -1", "sec -1", "nsec INT64_MAX" };
#define NBAD (int)(sizeof bad / sizeof bad[0])
static const struct timespec huge = { INT64_MAX, 999999999 };

int main(void) {
    char what[96];
    int p[2];
    pipe(p);
    write(p[1], "x", 1);  // p[0] is readable from here on
    struct pollfd pfd = { .fd = p[0], .events = POLLIN };
    int ep = epoll_create1(0);
    struct epoll_event ev = { .events = EPOLLIN }, got;
    epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev);
    int tfd = timerfd_create(CLOCK_MONOTONIC, 0);
    int sock = socket(AF_UNIX, SOCK_DGRAM, 0);
    uint32_t word = 1;
    sigset_t usr1;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    sigprocmask(SIG_BLOCK, &usr1, NULL);

    for (int i = 0; i < NBAD; i++) {
        const struct timespec *t = &bad[i];
        struct itimerspec its = { .it_value = *t };
        struct itimerspec itsi = { .it_interval = *t, .it_value = {1000, 0} };
        struct mmsghdr m;
        memset(&m, 0, sizeof m);
#define CASE(name, call) do { snprintf(what, sizeof what, "%s, %s", name, bad_names[i]); show(what, call); } while (0)
        CASE("nanosleep", syscall(SYS_nanosleep, t, NULL));
        CASE("clock_nanosleep", syscall(SYS_clock_nanosleep, CLOCK_MONOTONIC, 0, t, NULL));
        CASE("clock_nanosleep abstime", syscall(SYS_clock_nanosleep, CLOCK_MONOTONIC, TIMER_ABSTIME, t, NULL));
        CASE("ppoll", syscall(SYS_ppoll, &pfd, 1, t, NULL, 8));
        CASE("pselect6", ({ fd_set r; FD_ZERO(&r); FD_SET(p[0], &r); struct timespec c = *t;
                           syscall(SYS_pselect6, p[0] + 1, &r, NULL, NULL, &c, NULL); }));
        CASE("epoll_pwait2", syscall(SYS_epoll_pwait2, ep, &got, 1, t, NULL, 8));
        CASE("timerfd_settime value", syscall(SYS_timerfd_settime, tfd, 0, &its, NULL));
        CASE("timerfd_settime interval", syscall(SYS_timerfd_settime, tfd, 0, &itsi, NULL));
        CASE("futex wait", syscall(SYS_futex, &word, FUTEX_WAIT_PRIVATE, 0, t, NULL, 0));
        CASE("futex wait_bitset", syscall(SYS_futex, &word, FUTEX_WAIT_BITSET_PRIVATE, 0, t, NULL, ~0u));
        CASE("rt_sigtimedwait", syscall(SYS_rt_sigtimedwait, &usr1, NULL, t, 8));
        CASE("recvmmsg", syscall(SYS_recvmmsg, sock, &m, 1, MSG_DONTWAIT, t));
        CASE("recvmmsg on a bad fd", syscall(SYS_recvmmsg, 999, &m, 1, MSG_DONTWAIT, t));
    }

    // A huge tv_sec is valid: the waits end because something is ready.
    show("ppoll, huge", syscall(SYS_ppoll, &pfd, 1, &huge, NULL, 8));
    {
        fd_set r; FD_ZERO(&r); FD_SET(p[0], &r);
        struct timespec c = huge;
        show("pselect6, huge", syscall(SYS_pselect6, p[0] + 1, &r, NULL, NULL, &c, NULL));
    }
    show("epoll_pwait2, huge", syscall(SYS_epoll_pwait2, ep, &got, 1, &huge, NULL, 8));
    show("futex wait on a changed word, huge", syscall(SYS_futex, &word, FUTEX_WAIT_PRIVATE, 0, &huge, NULL, 0));
    raise(SIGUSR1);
    show("rt_sigtimedwait with SIGUSR1 pending, huge", syscall(SYS_rt_sigtimedwait, &usr1, NULL, &huge, 8));
    struct itimerspec its = { .it_value = huge }, old;
    show("timerfd_settime, huge", syscall(SYS_timerfd_settime, tfd, 0, &its, NULL));
    show("timerfd_gettime", syscall(SYS_timerfd_gettime, tfd, &old));
    printf("armed far away: %s\n", old.it_value.tv_sec > 1000000000L ? "yes" : "no");
    return 0;
}
