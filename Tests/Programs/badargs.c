// badargs.c: system calls with bad arguments — unmapped, read-only and absurd pointers
// (EFAULT), bad descriptors (EBADF), bad values (EINVAL) — made with the raw syscall()
// so no libc wrapper checks first. Prints the result and errno of each; natively and
// under junction the lines must be the same.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static void show(const char *what, long r) {
    printf("%-40s %ld %s\n", what, r, r < 0 ? strerrorname_np(errno) : "");
}

#define CALL(what, ...) do { errno = 0; long r_ = syscall(__VA_ARGS__); show(what, r_); } while (0)

int main(void) {
    static char out[1 << 16];
    setvbuf(stdout, out, _IOFBF, sizeof out);  // no allocation that could map the hole
    // Two pages: the first read-only, the second unmapped (nothing else maps there).
    char *ro = mmap(NULL, 8192, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    char *gone = ro + 4096;
    munmap(gone, 4096);
    char buf[256];
    int fd = open("/etc/passwd", O_RDONLY);
    int dir = open("/", O_RDONLY | O_DIRECTORY);
    int p[2];
    pipe(p);

    // A writable page followed by an unmapped one: a file read stops at the hole.
    char *rw = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    munmap(rw + 4096, 4096);
    CALL("pread64 into 10 bytes before a hole", SYS_pread64, fd, rw + 4086, 100, 0);
    CALL("read into NULL+1", SYS_read, fd, (void *)1, 10);
    CALL("read into an unmapped page", SYS_read, fd, gone, 10);
    CALL("read into a read-only page", SYS_read, fd, ro, 10);
    CALL("read into a kernel address", SYS_read, fd, (void *)0xffff800000000000ul, 10);
    CALL("write from an unmapped page", SYS_write, p[1], gone, 10);
    CALL("write from a read-only page (fine)", SYS_write, p[1], ro, 10);
    CALL("pread64 into an unmapped page", SYS_pread64, fd, gone, 10, 0);
    CALL("getdents64 into an unmapped page", SYS_getdents64, dir, gone, 4096);
    CALL("open an unmapped path", SYS_open, gone, O_RDONLY);
    CALL("openat an unmapped path", SYS_openat, AT_FDCWD, gone, O_RDONLY);
    CALL("stat an unmapped path", SYS_stat, gone, buf);
    CALL("stat into an unmapped page", SYS_stat, "/etc/passwd", gone);
    CALL("fstat into a read-only page", SYS_fstat, fd, ro);
    CALL("getcwd into an unmapped page", SYS_getcwd, gone, 100);
    CALL("readlink into a read-only page", SYS_readlink, "/proc/self/exe", ro, 100);
    CALL("pipe into an unmapped page", SYS_pipe, gone);
    CALL("nanosleep from an unmapped page", SYS_nanosleep, gone, NULL);
    CALL("rt_sigaction from an unmapped page", SYS_rt_sigaction, SIGUSR1, gone, NULL, 8);
    CALL("rt_sigaction into a read-only page", SYS_rt_sigaction, SIGUSR1, NULL, ro, 8);
    CALL("rt_sigprocmask from an unmapped page", SYS_rt_sigprocmask, SIG_BLOCK, gone, NULL, 8);
    CALL("sigaltstack from an unmapped page", SYS_sigaltstack, gone, NULL);
    CALL("futex wait on an unmapped word", SYS_futex, gone, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
    CALL("poll an unmapped array", SYS_poll, gone, 1, 0);
    CALL("uname into an unmapped page", SYS_uname, gone);
    CALL("clock_gettime into an unmapped page", SYS_clock_gettime, CLOCK_MONOTONIC, gone);
    CALL("read from a bad descriptor", SYS_read, 1234, buf, 1);
    CALL("close -1", SYS_close, -1);
    CALL("fstat a bad descriptor", SYS_fstat, 999, buf);
    CALL("dup2 onto -1", SYS_dup2, fd, -1);
    CALL("lseek with whence 99", SYS_lseek, fd, 0, 99);
    CALL("fcntl with command 9999", SYS_fcntl, fd, 9999, 0);
    CALL("read with a negative descriptor", SYS_read, -5, buf, 1);
    CALL("rt_sigaction on signal 0", SYS_rt_sigaction, 0, NULL, NULL, 8);
    CALL("rt_sigaction on SIGKILL", SYS_rt_sigaction, SIGKILL, buf, NULL, 8);
    CALL("rt_sigprocmask with how 7", SYS_rt_sigprocmask, 7, buf, NULL, 8);
    CALL("kill with signal 99", SYS_kill, getpid(), 99);
    CALL("nanosleep with 2e9 ns", SYS_nanosleep, (struct timespec[]){{0, 2000000000}}, NULL);
    CALL("pipe2 with bad flags", SYS_pipe2, p, 0x12345);
    // 777 may be a descriptor the test runner leaked into a native run (ENOTDIR then):
    // not one the program opened, and never one in junction's table.
    close(777);
    CALL("openat with a bad directory descriptor", SYS_openat, 777, "x", O_RDONLY);
    printf("still alive\n");
    return 0;
}
