// processes.c: fork, vfork, posix_spawn, wait4/waitid with their options, exit
// statuses and signal deaths, SIGCHLD with its siginfo, SIG_IGN and SA_NOCLDWAIT
// reaping, zombies, process groups and sessions, getppid, pidfds and
// PR_SET_PDEATHSIG. Prints facts, never pids, so a native run and a junction run match.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static void describe(const char *what, int st) {
    if (WIFEXITED(st)) printf("%s: exited %d\n", what, WEXITSTATUS(st));
    else if (WIFSIGNALED(st)) printf("%s: killed by %d core %d\n", what, WTERMSIG(st), WCOREDUMP(st) ? 1 : 0);
    else if (WIFSTOPPED(st)) printf("%s: stopped by %d\n", what, WSTOPSIG(st));
    else if (WIFCONTINUED(st)) printf("%s: continued\n", what);
    else printf("%s: status %#x\n", what, st);
}

static volatile sig_atomic_t chld_count, chld_code, chld_status, chld_pid_ok;
static pid_t expected_pid;

static void on_chld(int sig, siginfo_t *si, void *uc) {
    (void)sig; (void)uc;
    // Only the expected child's: under junction the SIGCHLD of a child reaped before the
    // handler was installed may still arrive (it comes through junction's signal thread).
    if (si->si_pid != expected_pid) return;
    chld_count++;
    chld_code = si->si_code;
    chld_status = si->si_status;
    chld_pid_ok = si->si_pid == expected_pid;
}

static char state_of(pid_t pid) {
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    int fd = open(path, O_RDONLY);
    if (fd < 0) return '?';
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return '?';
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    return p && p[1] && p[2] ? p[2] : '?';
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    struct rlimit no_core = {0, 0};
    setrlimit(RLIMIT_CORE, &no_core);
    int st;

    // Exit statuses and signal deaths.
    pid_t c = fork();
    if (c == 0) _exit(42);
    printf("wait4 returns the child: %d\n", wait4(c, &st, 0, NULL) == c);
    describe("exit(42)", st);
    c = fork();
    if (c == 0) { raise(SIGKILL); _exit(1); }
    waitpid(c, &st, 0);
    describe("SIGKILL", st);
    c = fork();
    if (c == 0) abort();
    waitpid(c, &st, 0);
    describe("abort", st);
    c = fork();
    if (c == 0) { volatile int *p = NULL; *p = 1; _exit(1); }
    waitpid(c, &st, 0);
    describe("segfault", st);

    // WNOHANG while the child waits on a pipe; the child sees its parent.
    int fds[2];
    pipe(fds);
    pid_t me = getpid();
    c = fork();
    if (c == 0) {
        char b;
        close(fds[1]);
        ssize_t n = read(fds[0], &b, 1);
        _exit(n == 1 && getppid() == me ? 7 : 8);
    }
    close(fds[0]);
    printf("WNOHANG while running: %d\n", waitpid(c, &st, WNOHANG));
    write(fds[1], "x", 1);
    close(fds[1]);
    waitpid(c, &st, 0);
    describe("pipe child (7: it read and saw its parent)", st);

    // Stopped and continued. The child exits only when told, after the parent saw it
    // continue: a child exiting at once after SIGCONT could be reaped by the WCONTINUED
    // wait itself (its exit replaces the continued state), natively too.
    int go[2];
    if (pipe(go)) return 1;
    c = fork();
    if (c == 0) { char b; raise(SIGSTOP); read(go[0], &b, 1); _exit(9); }
    waitpid(c, &st, WUNTRACED);
    describe("WUNTRACED", st);
    kill(c, SIGCONT);
    waitpid(c, &st, WCONTINUED);
    describe("WCONTINUED", st);
    write(go[1], "x", 1);
    close(go[0]); close(go[1]);
    waitpid(c, &st, 0);
    describe("after SIGCONT", st);

    // waitid: WNOWAIT leaves the zombie; P_PGID and P_ALL; rusage.
    c = fork();
    if (c == 0) _exit(5);
    siginfo_t si;
    memset(&si, 0, sizeof si);
    waitid(P_PID, c, &si, WEXITED | WNOWAIT);
    printf("waitid WNOWAIT: code %d status %d pid %d\n", si.si_code, si.si_status, si.si_pid == c);
    printf("zombie state: %c\n", state_of(c));
    memset(&si, 0, sizeof si);
    waitid(P_PGID, getpgrp(), &si, WEXITED);
    printf("waitid P_PGID: code %d status %d pid %d\n", si.si_code, si.si_status, si.si_pid == c);
    c = fork();
    if (c == 0) _exit(6);
    struct rusage ru;
    memset(&si, 0, sizeof si);
    printf("waitid P_ALL: %d\n", (int)syscall(SYS_waitid, P_ALL, 0, &si, WEXITED, &ru));
    printf("  code %d status %d pid %d\n", si.si_code, si.si_status, si.si_pid == c);
    memset(&si, 0, sizeof si);
    // Each result and errno in that order (a printf's arguments have none).
    errno = 0;
    int r = waitid(P_ALL, 0, &si, WEXITED | WNOHANG);
    printf("waitid WNOHANG, no children: %d errno %d\n", r, errno);
    errno = 0;
    r = wait(&st);
    printf("wait with no children: %d errno %d\n", r, errno);
    errno = 0;
    r = waitid(P_ALL, 0, &si, 0);
    printf("waitid bad options: %d errno %d\n", r, errno);

    // SIGCHLD with its siginfo.
    struct sigaction sa = {0};
    sa.sa_sigaction = on_chld;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigaction(SIGCHLD, &sa, NULL);
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGCHLD);
    sigprocmask(SIG_BLOCK, &block, &old);
    c = fork();
    if (c == 0) _exit(3);
    expected_pid = c;
    while (chld_count == 0) sigsuspend(&old);
    printf("SIGCHLD: count %d code %d status %d pid %d\n", chld_count, chld_code, chld_status, chld_pid_ok);
    waitpid(c, &st, 0);
    describe("after SIGCHLD", st);
    sigprocmask(SIG_SETMASK, &old, NULL);

    // SA_NOCLDWAIT and SIG_IGN: no zombies, wait ends with ECHILD.
    sa.sa_flags = SA_SIGINFO | SA_NOCLDWAIT | SA_RESTART;  // ECHILD whether the handler ran before or during the wait
    chld_count = 0;
    sigaction(SIGCHLD, &sa, NULL);
    c = fork();
    if (c == 0) _exit(0);
    printf("SA_NOCLDWAIT wait: %d\n", waitpid(c, &st, 0));  // EINTR or ECHILD, as the exit and the wait race
    signal(SIGCHLD, SIG_IGN);
    c = fork();
    if (c == 0) _exit(0);
    errno = 0;
    r = waitpid(c, &st, 0);
    printf("SIG_IGN wait: %d errno %d\n", r, errno);
    signal(SIGCHLD, SIG_DFL);

    // Process groups and sessions.
    c = fork();
    if (c == 0) {
        setpgid(0, 0);
        pause();
        _exit(1);
    }
    setpgid(c, c);
    printf("child's group is its own: %d\n", getpgid(c) == c);
    kill(-c, SIGTERM);
    waitpid(c, &st, 0);
    describe("kill(-pgid, SIGTERM)", st);
    c = fork();
    if (c == 0) {
        pid_t s = setsid();
        _exit(s == getpid() && getsid(0) == getpid() && getpgrp() == getpid() ? 0 : 1);
    }
    waitpid(c, &st, 0);
    describe("setsid", st);
    printf("setsid as a group leader: %d errno %d\n", getpgrp() == getpid() ? (int)setsid() : -1, getpgrp() == getpid() ? errno : EPERM);

    // pidfds.
    c = fork();
    if (c == 0) { pause(); _exit(1); }
    int pfd = (int)syscall(SYS_pidfd_open, c, 0);
    struct pollfd p = {pfd, POLLIN, 0};
    printf("pidfd readable while running: %d\n", poll(&p, 1, 0));
    syscall(SYS_pidfd_send_signal, pfd, SIGUSR1, NULL, 0);
    printf("pidfd readable after death: %d\n", poll(&p, 1, 5000));
    memset(&si, 0, sizeof si);
    waitid(P_PIDFD, pfd, &si, WEXITED);
    printf("waitid P_PIDFD: code %d status %d\n", si.si_code, si.si_status);
    close(pfd);

    // PR_SET_PDEATHSIG is the child's own.
    prctl(PR_SET_PDEATHSIG, SIGUSR2);
    int ds = -1;
    prctl(PR_GET_PDEATHSIG, &ds);
    printf("pdeathsig: %d\n", ds);
    c = fork();
    if (c == 0) { prctl(PR_GET_PDEATHSIG, &ds); _exit(ds); }
    waitpid(c, &st, 0);
    describe("child's pdeathsig", st);

    // vfork, posix_spawn, exec in a child.
    c = vfork();
    if (c == 0) _exit(11);
    waitpid(c, &st, 0);
    describe("vfork", st);
    char *argv[] = {"sh", "-c", "exit 12", NULL};
    pid_t sp;
    int rc = posix_spawn(&sp, "/bin/sh", NULL, NULL, argv, environ);
    waitpid(sp, &st, 0);
    printf("posix_spawn: %d\n", rc);
    describe("spawned sh", st);
    char *none[] = {"no-such-program", NULL};
    printf("posix_spawn of a missing program: %d\n", posix_spawn(&sp, "/no/such/program", NULL, NULL, none, environ));
    c = fork();
    if (c == 0) {
        execl("/bin/echo", "echo", "exec in a child", (char *)NULL);
        _exit(127);
    }
    waitpid(c, &st, 0);
    describe("exec in a child", st);
    return 0;
}
