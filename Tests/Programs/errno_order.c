// errno_order.c: calls with several bad arguments at once (issue 21). Linux answers with
// the errno of the check it makes first (the descriptor and its mode, then the flags,
// access_ok, the file's own refusals, and only then the copy of user memory), so each
// line shows one such order; natively and under junction the lines must be the same.
// Only its own scratch directory is written, and removed at the end.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

static void show(const char *what, long r) {
    int e = errno;
    printf("%-58s %s\n", what, r == -1 ? strerrorname_np(e) : r >= 0 ? "ok" : "?");
}
#define CALL(what, ...) do { errno = 0; long r_ = syscall(__VA_ARGS__); show(what, r_); } while (0)
#define KERNEL ((void *)0xffff880000001000ULL)

int main(void) {
    // tmpfs, as the fuzzer's: a directory's lseek answers depend on the file system.
    char scratch[] = "/dev/shm/junction-errno-XXXXXX";
    if (access("/dev/shm", W_OK) != 0) memcpy(scratch, "/tmp/jerrno", 11);
    if (!mkdtemp(scratch) || chdir(scratch) != 0) { perror("scratch"); return 1; }
    char *buf = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    mprotect(buf + 4096, 4096, PROT_NONE);
    char *guard = buf + 4096;
    char *rdonly = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    int file = open("f", O_RDWR | O_CREAT | O_TRUNC, 0600);
    write(file, "0123456789", 10);
    mkdir("d", 0700);
    int dir = open("d", O_RDONLY | O_DIRECTORY);
    int p[2];
    pipe(p);
    write(p[1], "x", 1);
    int efd = eventfd(1, 0);
    int ep = epoll_create1(0);
    struct iovec *iov = (struct iovec *)buf;

    // read/write family: descriptor, mode, a file with no read, access_ok, offset, then
    // what the file refuses untouched, before the buffer's pages.
    CALL("read(pipe_w, NULL, 16)", SYS_read, p[1], NULL, 16);
    CALL("write(pipe_r, guard, 16)", SYS_write, p[0], guard, 16);
    CALL("read(epoll, NULL, 16)", SYS_read, ep, NULL, 16);
    CALL("read(dir, NULL, 16)", SYS_read, dir, NULL, 16);
    CALL("read(eventfd, NULL, 4)", SYS_read, efd, NULL, 4);
    CALL("read(file, buf, -1)", SYS_read, file, buf, -1L);
    CALL("pread64(9999, NULL, 16, -1)", SYS_pread64, 9999, NULL, 16, -1L);
    CALL("pread64(pipe_w, NULL, 16, 0)", SYS_pread64, p[1], NULL, 16, 0);
    CALL("pread64(file, guard, 16, INT64_MAX)", SYS_pread64, file, guard, 16, INT64_MAX);
    CALL("pwrite64(rdonly-fd, kernel, 16, 0)", SYS_pwrite64, dir, KERNEL, 16, 0);
    CALL("readv(epoll, NULL, 0)", SYS_readv, ep, NULL, 0);
    iov[0].iov_base = buf; iov[0].iov_len = (size_t)-1;
    CALL("readv(file, [buf:-1], 1)", SYS_readv, file, iov, 1);
    CALL("writev(file, [buf:-1], 1)", SYS_writev, file, iov, 1);
    iov[0].iov_base = KERNEL; iov[0].iov_len = 16; iov[1].iov_base = buf; iov[1].iov_len = (size_t)-1;
    CALL("readv(file, [kernel:16 buf:-1], 2)", SYS_readv, file, iov, 2);
    iov[0].iov_base = NULL; iov[0].iov_len = 0;
    CALL("readv(dir, [NULL:0], 1)", SYS_readv, dir, iov, 1);
    iov[0].iov_base = NULL; iov[0].iov_len = 4;
    CALL("readv(eventfd, [NULL:4], 1)", SYS_readv, efd, iov, 1);
    CALL("writev(pipe_r, NULL, 1)", SYS_writev, p[0], NULL, 1);
    CALL("preadv(9999, NULL, 1, -1)", SYS_preadv, 9999, NULL, 1, -1L, 0);
    CALL("preadv(pipe_r, NULL, 1, 0)", SYS_preadv, p[0], NULL, 1, 0, 0);
    CALL("getdents64(9999, kernel, 16)", SYS_getdents64, 9999, KERNEL, 16);
    CALL("getdents64(file, NULL, 16)", SYS_getdents64, file, NULL, 16);
    CALL("getdents64(dir, NULL, 16)", SYS_getdents64, dir, NULL, 16);
    CALL("getdents64(dir, buf, 1<<40)", SYS_getdents64, dir, buf, 1L << 40);
    CALL("getdents64(dir, NULL, -1)", SYS_getdents64, dir, NULL, -1);

    // Paths: the flags or sizes, then the path (EFAULT, ENOENT for ""), then dirfd.
    CALL("readlinkat(9999, NULL, buf, 1<<40)", SYS_readlinkat, 9999, NULL, buf, 1L << 40);
    CALL("readlinkat(9999, NULL, buf, INT_MIN)", SYS_readlinkat, 9999, NULL, buf, (long)INT_MIN);
    CALL("unlinkat(9999, NULL, -1)", SYS_unlinkat, 9999, NULL, -1);
    CALL("unlinkat(9999, \"\", 0)", SYS_unlinkat, 9999, "", 0);
    CALL("mkdirat(9999, \"\", 0700)", SYS_mkdirat, 9999, "", 0700);
    CALL("faccessat(9999, NULL, -1)", SYS_faccessat, 9999, NULL, -1);
    CALL("openat(9999, NULL, O_CREAT|O_DIRECTORY)", SYS_openat, 9999, NULL, O_CREAT | O_DIRECTORY, 0600);
    CALL("openat(9999, NULL, O_TMPFILE|O_RDONLY)", SYS_openat, 9999, NULL, O_TMPFILE | O_RDONLY, 0600);
    CALL("openat(9999, \"\", O_RDONLY)", SYS_openat, 9999, "", O_RDONLY, 0);
    CALL("openat(AT_FDCWD, \"d\", -1): O_PATH keeps its own flags", SYS_openat, AT_FDCWD, "d", -1, 0600);
    CALL("newfstatat(9999, NULL, buf, 0x10000000)", SYS_newfstatat, 9999, NULL, buf, 0x10000000);
    CALL("newfstatat(9999, \"\", buf, 0x10000000)", SYS_newfstatat, 9999, "", buf, 0x10000000);
    CALL("newfstatat(AT_FDCWD, \"\", buf, AT_EMPTY_PATH)", SYS_newfstatat, AT_FDCWD, "", buf, AT_EMPTY_PATH);
    CALL("newfstatat(dir, NULL, kernel, -1)", SYS_newfstatat, dir, NULL, KERNEL, -1);
    CALL("statx(9999, \"\", 0x10000000, 0x7ff, buf)", SYS_statx, 9999, "", 0x10000000, 0x7ff, buf);
    CALL("statx(dir, NULL, -1, 0x7ff, buf)", SYS_statx, dir, NULL, -1, 0x7ff, buf);
    CALL("statx(9999, \"\", 0, 0x7ff, NULL)", SYS_statx, 9999, "", 0, 0x7ff, NULL);
    CALL("statx(AT_FDCWD, NULL, AT_EMPTY_PATH, 0x7ff, buf)", SYS_statx, AT_FDCWD, NULL, AT_EMPTY_PATH, 0x7ff, buf);
    CALL("newfstatat(9999, \"\", NULL, 0)", SYS_newfstatat, 9999, "", NULL, 0);
    CALL("statx(AT_FDCWD, \"f\", 0x10000000, 0x7ff, kernel)", SYS_statx, AT_FDCWD, "f", 0x10000000, 0x7ff, KERNEL);

    // Descriptors: flags, then the numbers.
    CALL("dup3(9999, 9999, 0)", SYS_dup3, 9999, 9999, 0);
    CALL("dup3(9999, 100, -1)", SYS_dup3, 9999, 100, -1);
    CALL("dup3(9999, 1<<20, 0)", SYS_dup3, 9999, 1 << 20, 0);
    CALL("epoll_ctl(9999, ADD, 9999, NULL)", SYS_epoll_ctl, 9999, EPOLL_CTL_ADD, 9999, NULL);
    CALL("epoll_ctl(9999, DEL, 9999, NULL)", SYS_epoll_ctl, 9999, EPOLL_CTL_DEL, 9999, NULL);
    struct epoll_event *ev = (struct epoll_event *)(buf + 512);
    ev->events = EPOLLIN;
    CALL("epoll_ctl(file, ADD, dir, ev)", SYS_epoll_ctl, file, EPOLL_CTL_ADD, dir, ev);
    CALL("epoll_ctl(file, ADD, pipe_r, ev)", SYS_epoll_ctl, file, EPOLL_CTL_ADD, p[0], ev);
    CALL("epoll_ctl(epoll, 99, pipe_r, ev)", SYS_epoll_ctl, ep, 99, p[0], ev);
    CALL("epoll_wait(9999, kernel, 0, 0)", SYS_epoll_wait, 9999, KERNEL, 0, 0);
    CALL("epoll_wait(file, kernel, 1, 0)", SYS_epoll_wait, file, KERNEL, 1, 0);
    CALL("epoll_wait(epoll, rdonly, 1, 0): no event, nothing written", SYS_epoll_wait, ep, rdonly, 1, 0);

    // futex: the timeout, the command, the bitset, the alignment, then the word.
    struct timespec *ts = (struct timespec *)(buf + 1024);
    ts->tv_sec = -1; ts->tv_nsec = 0;
    CALL("futex(NULL, 99, 0, NULL)", SYS_futex, NULL, 99, 0, NULL, NULL, 0);
    CALL("futex(buf+1, WAIT, 0, {-1,0})", SYS_futex, buf + 1, FUTEX_WAIT, 0, ts, NULL, 0);
    CALL("futex(NULL, WAIT, 0, kernel)", SYS_futex, NULL, FUTEX_WAIT, 0, KERNEL, NULL, 0);
    CALL("futex(buf+1, WAIT_BITSET, 0, NULL, NULL, 0)", SYS_futex, buf + 1, FUTEX_WAIT_BITSET, 0, NULL, NULL, 0);
    CALL("futex(kernel, WAKE_PRIVATE|CLOCK_REALTIME, 1)", SYS_futex, KERNEL, FUTEX_WAKE_PRIVATE | FUTEX_CLOCK_REALTIME, 1, NULL, NULL, 0);

    // Others: the clock before the time, mmap's offset before the descriptor.
    CALL("clock_nanosleep(99, 0, kernel)", SYS_clock_nanosleep, 99, 0, KERNEL, NULL);
    CALL("clock_nanosleep(-1, 0, kernel)", SYS_clock_nanosleep, -1, 0, KERNEL, NULL);
    CALL("mmap(NULL, 4096, R, PRIVATE, 9999, 1)", SYS_mmap, NULL, 4096, PROT_READ, MAP_PRIVATE, 9999, 1);

    // What the long fuzz run found: files that answer without touching memory, and
    // mmap/mremap/lseek/futex/epoll answers that depend on the kind of file or page.
    int null = open("/dev/null", O_RDWR);
    CALL("write(eventfd, buf, 16): exactly 8 bytes", SYS_write, efd, buf, 16);
    CALL("write(eventfd, rdonly, 4096)", SYS_write, efd, rdonly, 4096);
    CALL("write(eventfd, rdonly, 8)", SYS_write, efd, rdonly, 8);
    CALL("epoll_ctl(epoll, ADD, devnull, ev): no poll", SYS_epoll_ctl, ep, EPOLL_CTL_ADD, null, ev);
    CALL("epoll_ctl(file, -1, devnull, ev)", SYS_epoll_ctl, file, -1, null, ev);
    CALL("lseek(devnull, -1, END)", SYS_lseek, null, -1, SEEK_END);
    CALL("lseek(epoll, INT64_MAX, SET)", SYS_lseek, ep, INT64_MAX, SEEK_SET);
    CALL("lseek(dir, 4096, END)", SYS_lseek, dir, 4096, SEEK_END);
    CALL("lseek(dir, INT64_MIN, DATA)", SYS_lseek, dir, INT64_MIN, SEEK_DATA);
    CALL("mmap(NULL, 0, NONE, SHARED, pipe_r, 0)", SYS_mmap, NULL, 0, PROT_NONE, MAP_SHARED, p[0], 0);
    CALL("mmap(NULL, 4096, R, PRIVATE, pipe_w, 0)", SYS_mmap, NULL, 4096, PROT_READ, MAP_PRIVATE, p[1], 0);
    CALL("mmap(NULL, 4096, RX, SHARED, eventfd, 0)", SYS_mmap, NULL, 4096, PROT_READ | PROT_EXEC, MAP_SHARED, efd, 0);
    CALL("mmap(NULL, 4096, RX, PRIVATE, devnull, 0)", SYS_mmap, NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE, null, 0);
    CALL("mmap(NULL, -1, R, PRIVATE, devnull, 0)", SYS_mmap, NULL, -1L, PROT_READ, MAP_PRIVATE, null, 0);
    CALL("mremap(buf, 1<<47, 4096, -1)", SYS_mremap, buf, 1L << 47, 4096, -1, NULL);
    CALL("futex(NULL, WAKE_PRIVATE, 1)", SYS_futex, NULL, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
    CALL("futex(rdonly, WAKE, 1): a shared key needs a writable page", SYS_futex, rdonly, FUTEX_WAKE, 1, NULL, NULL, 0);
    ts->tv_sec = 0; ts->tv_nsec = 1000000;
    CALL("futex(rdonly, WAIT, 1, {0,1ms})", SYS_futex, rdonly, FUTEX_WAIT, 1, ts, NULL, 0);

    unlink("f");
    rmdir("d");
    chdir("/");
    rmdir(scratch);
    return 0;
}
