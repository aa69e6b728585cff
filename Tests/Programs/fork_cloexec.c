// fork_cloexec.c: a close-on-exec pipe end held by a forked child closes at its exec (the
// parent's read of it sees end of file while the child still runs, as subprocess's
// error pipe needs), and pidfd_send_signal on a /proc/PID directory descriptor, to the
// caller itself and to a child; a pidfd in epoll (readable once the child exits);
// closing descriptors while listing /proc/self/fd in small reads (subprocess's child).
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t got;
static void on_usr1(int sig) { got = sig; }

int main(void) {
    int err[2], in[2];
    if (pipe2(err, O_CLOEXEC) || pipe(in)) { perror("pipe"); return 2; }
    pid_t pid = fork();
    if (pid == 0) {
        dup2(in[0], 0);
        close(in[0]); close(in[1]); close(err[0]);
        execl("/bin/cat", "cat", (char *)NULL);
        _exit(127);
    }
    close(err[1]); close(in[0]);
    char c;
    // cat waits for its input, so only the exec closes the error pipe's write end.
    printf("error pipe read: %zd\n", read(err[0], &c, 1));
    fflush(stdout);
    if (write(in[1], "through cat\n", 12) != 12) return 3;
    close(in[1]);
    int status;
    waitpid(pid, &status, 0);
    printf("cat status %d\n", WEXITSTATUS(status));

    signal(SIGUSR1, on_usr1);
    char path[64];
    snprintf(path, sizeof path, "/proc/%d", getpid());
    int self = open(path, O_DIRECTORY | O_RDONLY);
    printf("bad fd: %ld\n", syscall(SYS_pidfd_send_signal, 12345, SIGUSR1, NULL, 0) == -1 ? -1L : 0L);
    long r = syscall(SYS_pidfd_send_signal, self, SIGUSR1, NULL, 0);
    printf("self: %ld, handler saw %d\n", r, (int)got);
    pid = fork();
    if (pid == 0) { pause(); _exit(0); }
    snprintf(path, sizeof path, "/proc/%d", pid);
    int child = open(path, O_DIRECTORY | O_RDONLY);
    printf("child: %ld\n", syscall(SYS_pidfd_send_signal, child, SIGTERM, NULL, 0));
    waitpid(pid, &status, 0);
    printf("child signaled %d by %d\n", WIFSIGNALED(status), WTERMSIG(status));

    int go[2];
    if (pipe(go)) return 4;
    pid = fork();
    if (pid == 0) { read(go[0], &c, 1); _exit(5); }
    int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = 7}, out;
    printf("epoll_ctl pidfd: %d\n", epoll_ctl(ep, EPOLL_CTL_ADD, pidfd, &ev));
    printf("before exit: %d\n", epoll_wait(ep, &out, 1, 0));
    write(go[1], "x", 1);
    int n = epoll_wait(ep, &out, 1, -1);
    printf("after exit: %d events %#x data %u\n", n, n > 0 ? out.events : 0, n > 0 ? out.data.u32 : 0);
    waitpid(pid, &status, 0);
    printf("status %d\n", WEXITSTATUS(status));

    for (int i = 0; i < 12; i++) if (dup(0) < 0) return 6;
    int dir = open("/proc/self/fd", O_RDONLY | O_DIRECTORY);
    char buf[128];  // a few entries per read, as CPython's child reads
    long nread;
    while ((nread = syscall(SYS_getdents64, dir, buf, sizeof buf)) > 0) {
        for (long off = 0; off < nread;) {
            struct { unsigned long ino; long off; unsigned short reclen; unsigned char type; char name[]; } *d = (void *)(buf + off);
            int fd = atoi(d->name);
            if (d->name[0] != '.' && fd > 2 && fd != dir) close(fd);
            off += d->reclen;
        }
    }
    int left = 0;
    for (int fd = 3; fd < 64; fd++) if (fd != dir && fcntl(fd, F_GETFD) >= 0) left++;
    printf("descriptors left after closing while listing: %d\n", left);
    return 0;
}
