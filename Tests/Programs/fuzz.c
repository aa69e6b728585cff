// fuzz.c: a differential syscall fuzzer (issue 21). With a seed it makes raw system calls
// with edge-case arguments (bad descriptors, -1/INT_MIN/huge lengths, NULL, unaligned,
// kernel-half, unmapped and read-only pointers, bad flags) to calls the libOS answers,
// rebuilding its state (a scratch directory, descriptors of every kind, its own mappings)
// before each call, and prints one line per call: the call, its arguments by kind and the
// result or errno. Nothing printed depends on addresses, pids or descriptor numbers, so the
// output natively and under junction must match. An alarm interrupts a call that blocks.
// Usage: fuzz SEED [CALLS]
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <linux/futex.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

static uint64_t rng;
static uint64_t next(void) {  // xorshift64*: the same sequence for a seed, whatever the results
    rng ^= rng >> 12; rng ^= rng << 25; rng ^= rng >> 27;
    return rng * 2685821657736338717ULL;
}
static unsigned pick(unsigned n) { return (unsigned)(next() % n); }

#define PAGE 4096
static char *buf;        // one read-write page followed by an inaccessible one
static char *rdonly;     // a read-only page
static char *iovpage;    // iovec arrays
static char *region;     // 10 pages: a guard, the program's own 4 pages, 5 guards
static char *own;
static char line[512];
static int pos;
static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
#include <stdarg.h>
static void say(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    pos += vsnprintf(line + pos, sizeof line - pos, fmt, ap);
    va_end(ap);
}

// Descriptors, rebuilt before every call.
enum { D_FILE, D_RDONLY, D_DIR, D_PIPE_R, D_PIPE_W, D_EVENTFD, D_EPOLL, D_NULL, D_CLOSED, D_MINUS1, D_INTMIN,
       D_9999, D_HUGE, D_COUNT };
static const char *dname[D_COUNT] = {"file", "rdonly", "dir", "pipe_r", "pipe_w", "eventfd", "epoll", "devnull",
                                     "closed", "-1", "INT_MIN", "9999", "1<<20"};
static int fds[D_COUNT];
static int fdarg(void) { unsigned k = pick(D_COUNT); say("%s", dname[k]); return fds[k]; }

enum { P_VALID, P_NULL, P_UNALIGNED, P_KERNEL, P_UNMAPPED, P_RDONLY, P_NEAR_END, P_NONCANON, P_COUNT };
static const char *pname[P_COUNT] = {"buf", "NULL", "buf+1", "kernel", "guard", "rdonly", "buf_end-8", "noncanon"};
static char *ptrof(unsigned k) {
    switch (k) {
    case P_VALID: return buf;
    case P_NULL: return NULL;
    case P_UNALIGNED: return buf + 1;
    case P_KERNEL: return (char *)0xffff880000001000ULL;
    case P_UNMAPPED: return buf + PAGE;
    case P_RDONLY: return rdonly;
    case P_NEAR_END: return buf + PAGE - 8;
    default: return (char *)0x0000800000000000ULL;
    }
}
static char *ptrarg(void) { unsigned k = pick(P_COUNT); say("%s", pname[k]); return ptrof(k); }
// Pointers used for structs in: valid more often.
static char *sptrarg(void) { return pick(2) ? (say("buf"), buf) : ptrarg(); }

static const uint64_t lens[] = {0, 1, 16, 4096, 4097, 65536, (uint64_t)-1, (uint64_t)INT_MIN, INT_MAX, 1ULL << 40};
static const char *lname[] = {"0", "1", "16", "4096", "4097", "65536", "-1", "INT_MIN", "INT_MAX", "1<<40"};
static uint64_t lenarg(void) { unsigned k = pick(10); say("%s", lname[k]); return lens[k]; }

// Only names inside the scratch directory: the fuzzer unlinks, creates and renames what
// it is given, natively too, so an absolute path ("abs/f": the scratch directory's f by
// its absolute name, which *at calls take whatever their dirfd) never leaves it.
static char absf[64];
static const char *paths[] = {"f", "d", "l", "n", "", "f/x", "d/../f", absf};
static const char *const pathn[] = {"f", "d", "l", "n", "", "f/x", "d/../f", "abs/f"};
static char longpath[PATH_MAX + 16];
static const char *patharg(void) {
    unsigned k = pick(11);
    if (k < 8) { say("\"%s\"", pathn[k]); return paths[k]; }
    if (k == 8) { say("long"); return longpath; }
    if (k == 9) { say("NULL"); return NULL; }
    say("kernel"); return (const char *)0xffff880000001000ULL;
}
static int dirfdarg(void) {
    switch (pick(5)) {
    case 0: case 1: say("AT_FDCWD"); return AT_FDCWD;
    case 2: say("dir"); return fds[D_DIR];
    case 3: say("file"); return fds[D_FILE];
    default: say("9999"); return 9999;
    }
}
static long flagarg(const long *set, const char *const *names, unsigned n) {
    unsigned k = pick(n);
    say("%s", names[k]);
    return set[k];
}
#define FLAGS(set, names) flagarg(set, names, sizeof set / sizeof set[0])

static void onalarm(int s) { (void)s; }

// Removes what the calls left in the scratch directory (d/f, d/l, ... made through the
// directory descriptor), never crossing a symbolic link or a mount.
static int removeone(const char *path, const struct stat *st, int type, struct FTW *ftw) {
    (void)st; (void)ftw;
    if (type == FTW_DP) rmdir(path); else unlink(path);
    return 0;
}

static void setup(void) {
    for (const char *const *n = (const char *const[]){"d/n", "n", NULL}; *n; n++) { unlink(*n); rmdir(*n); }
    mkdir("d", 0700);
    unlink("l");
    symlink("f", "l");
    int f = open("f", O_RDWR | O_CREAT | O_TRUNC, 0600);
    write(f, "0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstu", 100);
    fds[D_FILE] = f;
    fds[D_RDONLY] = open("f", O_RDONLY);
    fds[D_DIR] = open("d", O_RDONLY | O_DIRECTORY);
    int p[2];
    pipe(p);
    write(p[1], "pipe data\n", 10);
    fds[D_PIPE_R] = p[0]; fds[D_PIPE_W] = p[1];
    fds[D_EVENTFD] = eventfd(1, 0);
    fds[D_EPOLL] = epoll_create1(0);
    fds[D_NULL] = open("/dev/null", O_RDWR);
    fds[D_CLOSED] = dup(f);
    close(fds[D_CLOSED]);
    fds[D_MINUS1] = -1; fds[D_INTMIN] = INT_MIN; fds[D_9999] = 9999; fds[D_HUGE] = 1 << 20;
    memset(buf, 0, PAGE);
    region = mmap(NULL, 10 * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    own = region + PAGE;
    mmap(own, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
}

static void teardown(void) {
    munmap(region, 10 * PAGE);
    for (int fd = 3; fd < 64; fd++) close(fd);
    close(100);
    close(9999);
    close(INT_MAX);
    close(1 << 20);
}

enum { R_NUM, R_FD, R_ADDR };
static int rkind;
static uint64_t maplen;

static const long openflags[] = {O_RDONLY, O_RDWR | O_CREAT, O_WRONLY | O_TRUNC, O_RDONLY | O_DIRECTORY,
                                 O_RDONLY | O_NOFOLLOW, O_PATH, O_RDWR | O_CREAT | O_EXCL, 3, -1,
                                 O_TMPFILE | O_RDWR, O_RDWR | O_APPEND};
static const char *const openflagn[] = {"O_RDONLY", "O_RDWR|O_CREAT", "O_WRONLY|O_TRUNC", "O_DIRECTORY",
                                        "O_NOFOLLOW", "O_PATH", "O_CREAT|O_EXCL", "3", "-1", "O_TMPFILE|O_RDWR",
                                        "O_APPEND"};
static const long atflags[] = {0, AT_SYMLINK_NOFOLLOW, AT_EMPTY_PATH, -1, 0x10000000, AT_REMOVEDIR};
static const char *const atflagn[] = {"0", "AT_SYMLINK_NOFOLLOW", "AT_EMPTY_PATH", "-1", "0x10000000",
                                      "AT_REMOVEDIR"};
static const long offs[] = {0, 1, 100, -1, INT64_MAX, INT64_MIN, 4096};
static const char *const offn[] = {"0", "1", "100", "-1", "INT64_MAX", "INT64_MIN", "4096"};
static const long whences[] = {SEEK_SET, SEEK_CUR, SEEK_END, SEEK_DATA, SEEK_HOLE, -1, 99};
static const char *const whencen[] = {"SET", "CUR", "END", "DATA", "HOLE", "-1", "99"};
static const long fcmds[] = {F_GETFD, F_SETFD, F_GETFL, F_SETFL, F_DUPFD, F_DUPFD_CLOEXEC, 9999, -1,
                             F_GETPIPE_SZ};
static const char *const fcmdn[] = {"F_GETFD", "F_SETFD", "F_GETFL", "F_SETFL", "F_DUPFD", "F_DUPFD_CLOEXEC",
                                    "9999", "-1", "F_GETPIPE_SZ"};
static const long fargs[] = {0, -1, INT_MIN, 5, O_NONBLOCK, 1 << 20, FD_CLOEXEC, 100};
static const char *const fargn[] = {"0", "-1", "INT_MIN", "5", "O_NONBLOCK", "1<<20", "FD_CLOEXEC", "100"};
static const long newfds[] = {100, -1, 1 << 20, INT_MAX, 63};
static const char *const newfdn[] = {"100", "-1", "1<<20", "INT_MAX", "63"};
static const long cloexecs[] = {0, O_CLOEXEC, -1, 1};
static const char *const cloexecn[] = {"0", "O_CLOEXEC", "-1", "1"};
static const long pipeflags[] = {0, O_NONBLOCK, O_CLOEXEC, -1, O_DIRECT, 1};
static const char *const pipeflagn[] = {"0", "O_NONBLOCK", "O_CLOEXEC", "-1", "O_DIRECT", "1"};
static const long efdflags[] = {0, EFD_NONBLOCK, EFD_SEMAPHORE, -1, 2};
static const char *const efdflagn[] = {"0", "EFD_NONBLOCK", "EFD_SEMAPHORE", "-1", "2"};
static const long epops[] = {EPOLL_CTL_ADD, EPOLL_CTL_DEL, EPOLL_CTL_MOD, 99, -1};
static const char *const epopn[] = {"ADD", "DEL", "MOD", "99", "-1"};
static const long counts[] = {0, 1, 2, -1, 1025, 16, INT_MAX};
static const char *const countn[] = {"0", "1", "2", "-1", "1025", "16", "INT_MAX"};
static const long futexops[] = {FUTEX_WAIT, FUTEX_WAKE, FUTEX_WAIT | FUTEX_PRIVATE_FLAG,
                                FUTEX_WAKE | FUTEX_PRIVATE_FLAG, FUTEX_WAIT_BITSET, FUTEX_WAKE_BITSET, 99, -1};
static const char *const futexopn[] = {"WAIT", "WAKE", "WAIT_PRIVATE", "WAKE_PRIVATE", "WAIT_BITSET",
                                       "WAKE_BITSET", "99", "-1"};
static const long clocks[] = {CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_BOOTTIME, CLOCK_MONOTONIC_COARSE,
                              CLOCK_PROCESS_CPUTIME_ID, -1, 99, INT_MIN};
static const char *const clockn[] = {"REALTIME", "MONOTONIC", "BOOTTIME", "MONOTONIC_COARSE", "PROCESS_CPUTIME",
                                     "-1", "99", "INT_MIN"};
// No CPU-time clock: a CPU-time sleep of an idle process never ends.
static const long nsclocks[] = {CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_BOOTTIME, -1, 99, INT_MIN};
static const char *const nsclockn[] = {"REALTIME", "MONOTONIC", "BOOTTIME", "-1", "99", "INT_MIN"};
static const long prots[] = {PROT_NONE, PROT_READ, PROT_READ | PROT_WRITE, -1, PROT_READ | PROT_EXEC, 0x10};
static const char *const protn[] = {"NONE", "R", "RW", "-1", "RX", "0x10"};
static const long mapflags[] = {MAP_PRIVATE | MAP_ANONYMOUS, MAP_SHARED | MAP_ANONYMOUS, MAP_PRIVATE, MAP_SHARED,
                                MAP_ANONYMOUS, 0, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE};
static const char *const mapflagn[] = {"PRIVATE|ANON", "SHARED|ANON", "PRIVATE", "SHARED", "ANON", "0",
                                       "PRIVATE|ANON|FIXED_NOREPLACE"};
static const long mlens[] = {0, 4096, 4097, 16384, 28672, -1, 1L << 47};
static const char *const mlenn[] = {"0", "4096", "4097", "16384", "28672", "-1", "1<<47"};
static const long mremapflags[] = {0, MREMAP_MAYMOVE, -1, MREMAP_FIXED, 8};
static const char *const mremapflagn[] = {"0", "MAYMOVE", "-1", "FIXED", "8"};

// A pointer into the program's own mapping, for munmap/mprotect/mremap/mmap(MAP_FIXED).
static char *ownarg(void) {
    switch (pick(5)) {
    case 0: case 1: say("own"); return own;
    case 2: say("own+1"); return own + 1;
    case 3: say("own+4096"); return own + PAGE;
    default: say("NULL"); return NULL;
    }
}

// An iovec array of up to 4 entries with bases and lengths of every kind.
static char *iovarg(void) {
    unsigned k = pick(4);
    if (k == 3) return ptrarg();
    struct iovec *v = (struct iovec *)iovpage;
    say("[");
    for (int i = 0; i < 4; i++) {
        if (i) say(" ");
        unsigned p = pick(3) ? P_VALID : pick(P_COUNT);
        v[i].iov_base = ptrof(p);
        say("%s:", pname[p]);
        unsigned l = pick(3) ? pick(4) : pick(10);
        v[i].iov_len = lens[l];
        say("%s", lname[l]);
    }
    say("]");
    return (char *)v;
}

static struct timespec *tsarg(void) {
    struct timespec *t = (struct timespec *)(buf + 512);
    switch (pick(5)) {
    case 0: case 1: say("{0,1ms}"); t->tv_sec = 0; t->tv_nsec = 1000000; return t;
    case 2: say("{0,-1}"); t->tv_sec = 0; t->tv_nsec = -1; return t;
    case 3: say("{-1,0}"); t->tv_sec = -1; t->tv_nsec = 0; return t;
    default: say("kernel"); return (struct timespec *)0xffff880000001000ULL;
    }
}

#define ARG(x) (say(", "), (x))
static long fuzz_one(void) {
    rkind = R_NUM;
    errno = 0;
    switch (pick(44)) {
    case 0: say("read("); { long a = fdarg(); char *b = ARG(ptrarg()); uint64_t l = ARG(lenarg()); say(")"); return syscall(SYS_read, a, b, l); }
    case 1: say("write("); { long a = fdarg(); char *b = ARG(ptrarg()); uint64_t l = ARG(lenarg()); say(")"); return syscall(SYS_write, a, b, l); }
    case 2: say("pread64("); { long a = fdarg(); char *b = ARG(ptrarg()); uint64_t l = ARG(lenarg()); long o = ARG(FLAGS(offs, offn)); say(")"); return syscall(SYS_pread64, a, b, l, o); }
    case 3: say("pwrite64("); { long a = fdarg(); char *b = ARG(ptrarg()); uint64_t l = ARG(lenarg()); long o = ARG(FLAGS(offs, offn)); say(")"); return syscall(SYS_pwrite64, a, b, l, o); }
    case 4: say("readv("); { long a = fdarg(); char *v = ARG(iovarg()); long c = ARG(FLAGS(counts, countn)); say(")"); return syscall(SYS_readv, a, v, c); }
    case 5: say("writev("); { long a = fdarg(); char *v = ARG(iovarg()); long c = ARG(FLAGS(counts, countn)); say(")"); return syscall(SYS_writev, a, v, c); }
    case 6: say("preadv("); { long a = fdarg(); char *v = ARG(iovarg()); long c = ARG(FLAGS(counts, countn)); long o = ARG(FLAGS(offs, offn)); say(")"); return syscall(SYS_preadv, a, v, c, o, 0); }
    case 7: say("lseek("); { long a = fdarg(); long o = ARG(FLAGS(offs, offn)); long w = ARG(FLAGS(whences, whencen)); say(")"); return syscall(SYS_lseek, a, o, w); }
    case 8: say("fstat("); { long a = fdarg(); char *b = ARG(sptrarg()); say(")"); return syscall(SYS_fstat, a, b); }
    case 9: say("newfstatat("); { long d = dirfdarg(); const char *p = ARG(patharg()); char *b = ARG(sptrarg()); long f = ARG(FLAGS(atflags, atflagn)); say(")"); return syscall(SYS_newfstatat, d, p, b, f); }
    case 10: say("statx("); { long d = dirfdarg(); const char *p = ARG(patharg()); long f = ARG(FLAGS(atflags, atflagn)); char *b = ARG(sptrarg()); say(", 0x7ff)"); return syscall(SYS_statx, d, p, f, 0x7ff, b); }
    case 11: say("stat("); { const char *p = patharg(); char *b = ARG(sptrarg()); say(")"); return syscall(SYS_stat, p, b); }
    case 12: say("lstat("); { const char *p = patharg(); char *b = ARG(sptrarg()); say(")"); return syscall(SYS_lstat, p, b); }
    case 13: say("fcntl("); { long a = fdarg(); long c = ARG(FLAGS(fcmds, fcmdn)); long x = ARG(FLAGS(fargs, fargn)); say(")");
        if (c == F_DUPFD || c == F_DUPFD_CLOEXEC) rkind = R_FD;
        return syscall(SYS_fcntl, a, c, x); }
    case 14: say("dup("); { long a = fdarg(); say(")"); rkind = R_FD; return syscall(SYS_dup, a); }
    case 15: say("dup2("); { long a = fdarg(); long n = ARG(pick(3) ? FLAGS(newfds, newfdn) : fdarg()); say(")"); rkind = R_FD; return syscall(SYS_dup2, a, n); }
    case 16: say("dup3("); { long a = fdarg(); long n = ARG(pick(3) ? FLAGS(newfds, newfdn) : fdarg()); long f = ARG(FLAGS(cloexecs, cloexecn)); say(")"); rkind = R_FD; return syscall(SYS_dup3, a, n, f); }
    case 17: say("getdents64("); { long a = fdarg(); char *b = ARG(ptrarg()); uint64_t l = ARG(lenarg()); say(")"); return syscall(SYS_getdents64, a, b, l); }
    case 18: say("openat("); { long d = dirfdarg(); const char *p = ARG(patharg()); long f = ARG(FLAGS(openflags, openflagn)); say(", 0600)"); rkind = R_FD; return syscall(SYS_openat, d, p, f, 0600); }
    case 19: say("close("); { long a = fdarg(); say(")"); return syscall(SYS_close, a); }
    case 20: say("ftruncate("); { long a = fdarg(); long o = ARG(FLAGS(offs, offn)); say(")"); return syscall(SYS_ftruncate, a, o); }
    case 21: say("fsync("); { long a = fdarg(); say(")"); return syscall(SYS_fsync, a); }
    case 22: say("eventfd2("); { long v = FLAGS(fargs, fargn); long f = ARG(FLAGS(efdflags, efdflagn)); say(")"); rkind = R_FD; return syscall(SYS_eventfd2, v, f); }
    case 23: say("epoll_create1("); { long f = FLAGS(cloexecs, cloexecn); say(")"); rkind = R_FD; return syscall(SYS_epoll_create1, f); }
    case 24: say("epoll_ctl("); { long e = fdarg(); long o = ARG(FLAGS(epops, epopn)); long a = ARG(fdarg()); char *ev = ARG(sptrarg()); say(")");
        if (ev == buf) { struct epoll_event *x = (struct epoll_event *)buf; x->events = EPOLLIN; x->data.u64 = 7; }
        return syscall(SYS_epoll_ctl, e, o, a, ev); }
    case 25: say("epoll_wait("); { long e = fdarg(); char *ev = ARG(sptrarg()); long n = ARG(FLAGS(counts, countn)); say(", 0)"); return syscall(SYS_epoll_wait, e, ev, n, 0); }
    case 26: say("futex("); { unsigned k = pick(4); char *u = k == 0 ? buf : k == 1 ? buf + 1 : k == 2 ? NULL : rdonly;
        say("%s", k == 0 ? "buf" : k == 1 ? "buf+1" : k == 2 ? "NULL" : "rdonly");
        long op = ARG(FLAGS(futexops, futexopn)); long v = pick(2); say(", %ld, ", v); struct timespec *t = tsarg(); say(")");
        return syscall(SYS_futex, u, op, v, t, NULL, op == FUTEX_WAIT_BITSET || op == FUTEX_WAKE_BITSET ? (long)pick(2) : 0); }
    case 27: say("pipe2("); { char *p = sptrarg(); long f = ARG(FLAGS(pipeflags, pipeflagn)); say(")"); return syscall(SYS_pipe2, p, f); }
    case 28: say("clock_gettime("); { long c = FLAGS(clocks, clockn); char *t = ARG(sptrarg()); say(")"); return syscall(SYS_clock_gettime, c, t); }
    case 29: say("clock_getres("); { long c = FLAGS(clocks, clockn); char *t = ARG(sptrarg()); say(")"); return syscall(SYS_clock_getres, c, t); }
    case 30: say("gettimeofday("); { char *t = sptrarg(); char *z = ARG(pick(2) ? (say("NULL"), NULL) : ptrarg()); say(")"); return syscall(SYS_gettimeofday, t, z); }
    case 31: say("nanosleep("); { struct timespec *t = tsarg(); char *r = ARG(pick(2) ? (say("NULL"), NULL) : sptrarg()); say(")"); return syscall(SYS_nanosleep, t, r); }
    case 32: say("clock_nanosleep("); { long c = FLAGS(nsclocks, nsclockn); long f = pick(3) ? 0 : 99; say(", %ld, ", f); struct timespec *t = tsarg(); say(")");
        long r = syscall(SYS_clock_nanosleep, c, f, t, NULL); if (r > 0) { errno = (int)r; return -1; } return r; }
    case 33: say("mmap(NULL, "); { long l = FLAGS(mlens, mlenn); long p = ARG(FLAGS(prots, protn)); long f = ARG(FLAGS(mapflags, mapflagn)); long d = ARG(pick(2) ? (say("-1"), -1) : fdarg());
        long o = ARG(pick(3) ? (say("0"), 0) : FLAGS(offs, offn)); say(")"); rkind = R_ADDR; maplen = l; return syscall(SYS_mmap, NULL, l, p, f, d, o); }
    case 34: say("mmap(FIXED "); { char *a = ownarg(); long l = pick(2) ? 4096 : 16384; say(", %ld", l); long p = ARG(FLAGS(prots, protn)); say(", PRIVATE|ANON|FIXED)");
        rkind = R_ADDR; maplen = l; if (a == NULL) return errno = EPERM, -1;  // never map page 0
        return syscall(SYS_mmap, a, l, p, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0); }
    case 35: say("munmap("); { char *a = ownarg(); long l = ARG(FLAGS(mlens, mlenn)); say(")"); return syscall(SYS_munmap, a, l); }
    case 36: say("mprotect("); { char *a = ownarg(); long l = ARG(FLAGS(mlens, mlenn)); long p = ARG(FLAGS(prots, protn)); say(")");
        if (l == 1L << 47) { say(" (skipped)"); return 0; } return syscall(SYS_mprotect, a, l, p); }
    case 37: say("mremap("); { char *a = ownarg(); long o = ARG(FLAGS(mlens, mlenn)); long n = ARG(FLAGS(mlens, mlenn)); long f = ARG(FLAGS(mremapflags, mremapflagn)); say(")");
        rkind = R_ADDR; maplen = n; return syscall(SYS_mremap, a, o, n, f, own + 2 * PAGE); }
    case 38: say("readlinkat("); { long d = dirfdarg(); const char *p = ARG(patharg()); char *b = ARG(ptrarg()); uint64_t l = ARG(lenarg()); say(")"); return syscall(SYS_readlinkat, d, p, b, l); }
    case 39: say("mkdirat("); { long d = dirfdarg(); const char *p = ARG(patharg()); say(", 0700)"); return syscall(SYS_mkdirat, d, p, 0700); }
    case 40: say("unlinkat("); { long d = dirfdarg(); const char *p = ARG(patharg()); long f = ARG(FLAGS(atflags, atflagn)); say(")"); return syscall(SYS_unlinkat, d, p, f); }
    case 41: say("faccessat("); { long d = dirfdarg(); const char *p = ARG(patharg()); long m = pick(3) ? R_OK : -1; say(", %ld)", m); return syscall(SYS_faccessat, d, p, m); }
    case 42: say("poll("); { char *p = sptrarg(); long n = ARG(FLAGS(counts, countn)); say(", 0)");
        if (p == buf) {  // the rest ignored (fd -1): not the test runner's stdin
            struct pollfd *x = (struct pollfd *)buf;
            for (int k = 0; k < 16; k++) x[k].fd = -1;
            x[0].fd = fds[pick(D_COUNT)]; x[0].events = POLLIN; x[1].fd = fds[D_PIPE_R]; x[1].events = POLLIN;
        }
        return syscall(SYS_poll, p, n, 0); }
    default: say("getcwd("); { char *b = ptrarg(); uint64_t l = ARG(lenarg()); say(")"); return syscall(SYS_getcwd, b, l); }
    }
}

int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: fuzz SEED [CALLS]\n"); return 2; }
    unsigned long seed = strtoul(argv[1], NULL, 0);
    int calls = argc > 2 ? atoi(argv[2]) : 300;
    rng = seed * 0x9E3779B97F4A7C15ULL + 1;
    // tmpfs where there is one: fsync on a disk would dominate the run.
    char dir[] = "/dev/shm/junction-fuzz-XXXXXX";
    if (access("/dev/shm", W_OK) != 0) memcpy(dir, "/tmp/jfuzz", 10);
    if (!mkdtemp(dir) || chdir(dir) != 0) { perror("scratch"); return 1; }
    // Every relative name below is the scratch directory's: stop if the cwd is not it.
    char cwd[sizeof dir + 1];
    if (!getcwd(cwd, sizeof cwd) || strcmp(cwd, dir) != 0) { fprintf(stderr, "fuzz: cwd is not the scratch directory\n"); return 1; }
    snprintf(absf, sizeof absf, "%s/f", dir);
    buf = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    // PROT_NONE rather than unmapped: a hole could be filled by a later mapping.
    mprotect(buf + PAGE, PAGE, PROT_NONE);
    // Followed by an inaccessible page too: what lies past it must not depend on where the
    // loader or the libOS put other mappings (a partial transfer stops at the same byte).
    rdonly = mmap(NULL, 2 * PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    mprotect(rdonly + PAGE, PAGE, PROT_NONE);
    iovpage = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    memset(longpath, 'a', sizeof longpath - 1);
    // stdin from /dev/null: a stray pollfd of fd 0 must not depend on the runner's stdin.
    int z = open("/dev/null", O_RDONLY);
    dup2(z, 0);
    close(z);
    struct sigaction sa = {0};
    sa.sa_handler = onalarm;  // no SA_RESTART: a blocked call returns EINTR
    sigaction(SIGALRM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    for (int i = 0; i < calls; i++) {
        setup();
        pos = 0;
        say("%d ", i);
        alarm(2);
        long r = fuzz_one();
        int e = errno;
        alarm(0);
        if (r == -1) printf("%s = -1 %s\n", line, strerrorname_np(e));
        else if (rkind == R_FD) printf("%s = fd\n", line);
        else if (rkind == R_ADDR) printf("%s = addr\n", line);
        else printf("%s = %ld\n", line, r);
        if (rkind == R_ADDR && r != -1 && (char *)r != own) munmap((void *)r, maplen);
        teardown();
    }
    chdir("/");
    nftw(dir, removeone, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
    if (access(dir, F_OK) == 0) printf("scratch left behind\n");
    return 0;
}
