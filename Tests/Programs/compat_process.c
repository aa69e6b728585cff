// compat_process.c: process-wide calls of the compatibility sweep, run natively and
// under junction: identity (getres*id, set*id, groups), capabilities, scheduling
// policy, priorities and affinity, nice values, protection keys, personality,
// membarrier, mlock, process_vm_readv, and the errors of calls that must not change
// the machine (sethostname, clock_settime, chroot). Prints one line per fact.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <linux/capability.h>
#include <linux/membarrier.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <grp.h>
#include <sys/fsuid.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/personality.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define SHOW(what, expr) do { errno = 0; long r_ = (long)(expr); \
    printf("%s = %ld%s%s\n", what, r_, r_ < 0 ? " " : "", r_ < 0 ? strerrorname_np(errno) : ""); } while (0)

static volatile int got_code = 99, got_pid_is_self = -1, got_value = -1;
static void on_usr1(int sig, siginfo_t *si, void *ctx) {
    (void)sig; (void)ctx;
    got_code = si->si_code;
    got_pid_is_self = si->si_pid == getpid();
    got_value = si->si_value.sival_int;
}

// pidfd_send_signal on a descriptor of /proc/PID (Linux takes it as a pidfd).
static void pid_directory_signal(void) {
    struct sigaction sa = {0};
    sa.sa_sigaction = on_usr1;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGUSR1, &sa, NULL);
    char path[64];
    snprintf(path, sizeof path, "/proc/%d", getpid());
    int fd = open(path, O_RDONLY | O_DIRECTORY);
    SHOW("pidfd_send_signal /proc/PID", syscall(SYS_pidfd_send_signal, fd, SIGUSR1, NULL, 0));
    printf("  code %d from self %d\n", got_code, got_pid_is_self);
    siginfo_t info = {0};
    info.si_signo = SIGUSR1;
    info.si_code = SI_QUEUE;
    info.si_pid = getpid();
    info.si_value.sival_int = 7;
    SHOW("pidfd_send_signal with info", syscall(SYS_pidfd_send_signal, fd, SIGUSR1, &info, 0));
    printf("  code %d from self %d value %d\n", got_code, got_pid_is_self, got_value);
    info.si_signo = SIGUSR2;
    SHOW("pidfd_send_signal info of another signal", syscall(SYS_pidfd_send_signal, fd, SIGUSR1, &info, 0));
    SHOW("pidfd_send_signal unknown flag", syscall(SYS_pidfd_send_signal, fd, SIGUSR1, NULL, 8));
    SHOW("pidfd_send_signal signal 0", syscall(SYS_pidfd_send_signal, fd, 0, NULL, 0));
    SHOW("pidfd_send_signal bad signal", syscall(SYS_pidfd_send_signal, fd, 99, NULL, 0));
    close(fd);
    fd = open("/proc/self/status", O_RDONLY);
    SHOW("pidfd_send_signal on a file", syscall(SYS_pidfd_send_signal, fd, SIGUSR1, NULL, 0));
    close(fd);
    SHOW("pidfd_send_signal bad fd", syscall(SYS_pidfd_send_signal, 99, SIGUSR1, NULL, 0));
    signal(SIGUSR1, SIG_DFL);
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    uid_t r, e, s;
    gid_t rg, eg, sg;
    SHOW("getresuid", getresuid(&r, &e, &s));
    printf("uids %u %u %u\n", r, e, s);
    SHOW("getresgid", getresgid(&rg, &eg, &sg));
    printf("gids %u %u %u\n", rg, eg, sg);
    gid_t groups[64];
    int n = getgroups(64, groups);
    printf("getgroups %d\n", n);
    SHOW("getgroups too small", n > 0 ? getgroups(n - 1 > 0 ? n - 1 : 0, groups) : -1);
    SHOW("setgroups too many", syscall(SYS_setgroups, 70000, groups));

    // Capabilities of this process.
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct d[2];
    SHOW("capget", syscall(SYS_capget, &h, d));
    printf("effective %08x\n", d[0].effective);
    SHOW("capset unchanged", syscall(SYS_capset, &h, d));
    struct __user_cap_header_struct bad = {0x1234, 0};
    SHOW("capget bad version", syscall(SYS_capget, &bad, d));
    printf("preferred version %#x\n", bad.version);
    struct __user_cap_header_struct other = {_LINUX_CAPABILITY_VERSION_3, -3};
    SHOW("capget negative pid", syscall(SYS_capget, &other, d));

    // Scheduling.
    SHOW("sched_getscheduler", sched_getscheduler(0));
    SHOW("sched_getscheduler bad pid", sched_getscheduler(-1));
    SHOW("sched_get_priority_max FIFO", sched_get_priority_max(SCHED_FIFO));
    SHOW("sched_get_priority_min RR", sched_get_priority_min(SCHED_RR));
    SHOW("sched_get_priority_max OTHER", sched_get_priority_max(SCHED_OTHER));
    SHOW("sched_get_priority_max bad", sched_get_priority_max(42));
    struct sched_param sp = {0};
    SHOW("sched_getparam", sched_getparam(0, &sp));
    printf("priority %d\n", sp.sched_priority);
    sp.sched_priority = 5;
    SHOW("sched_setscheduler OTHER prio 5", sched_setscheduler(0, SCHED_OTHER, &sp));
    SHOW("sched_setscheduler bad policy", sched_setscheduler(0, 42, &sp));
    sp.sched_priority = 0;
    SHOW("sched_setscheduler BATCH", sched_setscheduler(0, SCHED_BATCH, &sp));
    SHOW("sched_getscheduler now", sched_getscheduler(0));
    SHOW("sched_setscheduler OTHER", sched_setscheduler(0, SCHED_OTHER, &sp));
    SHOW("sched_setparam", sched_setparam(0, &sp));
    struct timespec ts;
    SHOW("sched_rr_get_interval", sched_rr_get_interval(0, &ts));
    cpu_set_t set, got;
    CPU_ZERO(&set);
    CPU_SET(0, &set);
    SHOW("sched_setaffinity cpu0", sched_setaffinity(0, sizeof set, &set));
    SHOW("sched_getaffinity", sched_getaffinity(0, sizeof got, &got) >= 0 ? CPU_COUNT(&got) : -1);
    CPU_ZERO(&set);
    SHOW("sched_setaffinity empty", sched_setaffinity(0, sizeof set, &set));
    SHOW("sched_getaffinity small", syscall(SYS_sched_getaffinity, 0, 1, &got));
    // Other processes (the parent is outside the instance; a pid nobody has): the host's
    // answers. The affinity calls look the pid up (ESRCH for -1), the others EINVAL.
    SHOW("sched_getscheduler parent", sched_getscheduler(getppid()));
    SHOW("sched_getparam parent", sched_getparam(getppid(), &sp));
    SHOW("sched_getaffinity parent", sched_getaffinity(getppid(), sizeof got, &got) >= 0 ? CPU_COUNT(&got) > 0 : -1);
    SHOW("sched_getaffinity -1", sched_getaffinity(-1, sizeof got, &got));
    SHOW("sched_setaffinity -1", sched_setaffinity(-1, sizeof got, &got));
    SHOW("sched_getscheduler nobody", sched_getscheduler(0x3ffffff0));
    SHOW("sched_getparam -1", sched_getparam(-1, &sp));
    SHOW("sched_rr_get_interval parent", sched_rr_get_interval(getppid(), &ts));
    SHOW("getpriority parent", syscall(SYS_getpriority, PRIO_PROCESS, getppid()));
    SHOW("getpriority nobody", getpriority(PRIO_PROCESS, 0x3ffffff0));

    // Nice values.
    errno = 0;
    int prio = getpriority(PRIO_PROCESS, 0);
    printf("getpriority %d errno %d\n", prio, errno);
    SHOW("setpriority 5", setpriority(PRIO_PROCESS, 0, 5));
    printf("getpriority now %d\n", getpriority(PRIO_PROCESS, 0));
    SHOW("raw getpriority", syscall(SYS_getpriority, PRIO_PROCESS, 0));
    SHOW("getpriority bad which", getpriority(7, 0));
    SHOW("setpriority back", setpriority(PRIO_PROCESS, 0, 0));

    // Protection keys: none here or there (no pku on the CPU, or no keys offered).
    int key = syscall(SYS_pkey_alloc, 0, 0);
    printf("pkey_alloc %s\n", key >= 0 || errno == ENOSPC || errno == EINVAL ? "ok-or-none" : strerrorname_np(errno));
    if (key >= 0) syscall(SYS_pkey_free, key);
    SHOW("pkey_alloc bad flags", syscall(SYS_pkey_alloc, 1, 0));

    SHOW("personality query", personality(0xffffffff));
    SHOW("membarrier query", syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0) > 0);
    static char page[4096];
    SHOW("mlock", mlock(page, sizeof page));
    SHOW("munlock", munlock(page, sizeof page));
    SHOW("mlock2 bad flags", syscall(SYS_mlock2, page, sizeof page, 0x80));

    // Our own memory through process_vm_readv; another pid is not there.
    char src[] = "copied across", dst[32] = {0};
    struct iovec local = {dst, sizeof src}, remote = {src, sizeof src};
    SHOW("process_vm_readv self", process_vm_readv(getpid(), &local, 1, &remote, 1, 0));
    printf("'%s'\n", dst);
    SHOW("process_vm_readv flags", process_vm_readv(getpid(), &local, 1, &remote, 1, 1));

    // Calls that would change the machine: only their errors.
    char longname[100];
    memset(longname, 'x', sizeof longname);
    SHOW("sethostname too long", sethostname(longname, 65));
    SHOW("setdomainname too long", setdomainname(longname, 65));
    struct timespec bad_ts = {0, 2000000000};
    SHOW("clock_settime monotonic", clock_settime(CLOCK_MONOTONIC, &bad_ts));
    SHOW("clock_settime bad nsec", clock_settime(CLOCK_REALTIME, &bad_ts));
    SHOW("chroot missing", chroot("/nonexistent/dir"));
    SHOW("chroot file", chroot("/etc/passwd"));

    // Terminal ioctls on what is not a terminal.
    int tp[2];
    pipe(tp);
    struct termios tio;
    pid_t pg;
    SHOW("tcgetattr pipe", tcgetattr(tp[0], &tio));
    SHOW("tcsetattr pipe", tcsetattr(tp[1], TCSANOW, &tio));
    SHOW("TIOCGPGRP pipe", ioctl(tp[0], TIOCGPGRP, &pg));
    SHOW("TIOCSCTTY pipe", ioctl(tp[0], TIOCSCTTY, 0));
    SHOW("TIOCGWINSZ bad fd", ioctl(99, TIOCGWINSZ, &tio));
    close(tp[0]); close(tp[1]);

    // Identity changes last (the process keeps them).
    SHOW("setresuid same", setresuid(-1, e, -1));
    SHOW("setfsuid query", setfsuid(-1));
    SHOW("setresgid same", setresgid(rg, -1, -1));
    SHOW("setuid -1", setuid(-1));
    if (e == 0) {
        gid_t g[2] = {7, 3};
        SHOW("setgroups", setgroups(2, g));
        int ng = getgroups(64, groups);  // before groups[0] is read (argument order is unspecified)
        printf("getgroups %d first %d\n", ng, groups[0]);
        SHOW("setresuid 65534", setresuid(65534, 65534, 0));
        SHOW("getuid", getuid());
        SHOW("geteuid", geteuid());
        SHOW("setgroups unprivileged", setgroups(0, NULL));
        SHOW("setuid to saved", setuid(0));
        SHOW("geteuid after", geteuid());
        SHOW("setreuid", setreuid(65534, -1));
        SHOW("getuid after setreuid", getuid());
        SHOW("setresuid to 1", setresuid(1, 1, 1));
        SHOW("setresuid back fails", setresuid(0, 0, 0));
        SHOW("setpriority lower nice", setpriority(PRIO_PROCESS, 0, -5));
        SHOW("sched_setscheduler FIFO", sched_setscheduler(0, SCHED_FIFO, &(struct sched_param){10}));
        SHOW("sethostname unprivileged", sethostname("x", 1));
    }
    pid_directory_signal();
    return 0;
}
