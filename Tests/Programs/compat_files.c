// compat_files.c: file calls of the compatibility sweep, run natively and under
// junction in a fresh directory (argv[1]): umask on created files, mknod/mkfifo and
// FIFO open rules, close_range, preadv/pwritev(2), copy_file_range, fallocate,
// fadvise64, splice/vmsplice, memfd_create with mmap and seals, extended attributes,
// each with its errors. Prints one line per fact.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/select.h>
#include <sys/sendfile.h>
#include <sys/sysmacros.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/xattr.h>
#include <unistd.h>

#define SHOW(what, expr) do { errno = 0; long r_ = (long)(expr); \
    printf("%s = %ld%s%s\n", what, r_, r_ < 0 ? " " : "", r_ < 0 ? strerrorname_np(errno) : ""); } while (0)

static char dir[4096];
static char *at(const char *name) {
    static char buf[8][4200];
    static int i;
    i = (i + 1) % 8;
    snprintf(buf[i], sizeof buf[i], "%s/%s", dir, name);
    return buf[i];
}

static void mode_of(const char *label, const char *path) {
    struct stat st;
    if (lstat(path, &st) != 0) { printf("%s: %s\n", label, strerrorname_np(errno)); return; }
    printf("%s: %o\n", label, st.st_mode);
}

static void umask_tests(void) {
    umask(0);
    close(open(at("u666"), O_CREAT | O_WRONLY, 0666));
    mkdir(at("d777"), 0777);
    mkfifo(at("f666"), 0666);
    mode_of("umask 0 file", at("u666"));
    mode_of("umask 0 dir", at("d777"));
    mode_of("umask 0 fifo", at("f666"));
    printf("umask was %o\n", umask(027));
    close(open(at("u027"), O_CREAT | O_WRONLY, 0666));
    mkdir(at("d027"), 0777);
    mode_of("umask 027 file", at("u027"));
    mode_of("umask 027 dir", at("d027"));
    umask(022);
}

// The reader's results, printed by the main thread after the join (no interleaving).
static char reader_buf[32];
static ssize_t reader_first, reader_then;

static void *fifo_reader(void *arg) {
    int fd = open(arg, O_RDONLY);  // waits for the writer
    reader_first = read(fd, reader_buf, sizeof reader_buf - 1);
    char more[8];
    reader_then = read(fd, more, sizeof more);
    close(fd);
    return NULL;
}

static void fifo_tests(void) {
    const char *f = at("fifo");
    SHOW("mknod fifo", mknod(f, S_IFIFO | 0600, 0));
    SHOW("mknod again", mknod(f, S_IFIFO | 0600, 0));
    SHOW("mknod chr exists", mknod(f, S_IFCHR | 0600, makedev(1, 3)));
    SHOW("mknod dir", mknod(at("x"), S_IFDIR | 0600, 0));
    SHOW("mknod bad type", mknod(at("x"), 0170000 | 0600, 0));
    SHOW("mknod no parent", mknod(at("none/x"), S_IFIFO | 0600, 0));
    SHOW("mknodat regular", mknodat(AT_FDCWD, at("reg"), S_IFREG | 0640, 0));
    mode_of("regular", at("reg"));
    mode_of("fifo", f);
    SHOW("open wronly nonblock, no reader", open(f, O_WRONLY | O_NONBLOCK));
    int r = open(f, O_RDONLY | O_NONBLOCK);
    printf("open rdonly nonblock: %s\n", r >= 0 ? "ok" : strerrorname_np(errno));
    char c;
    SHOW("read, no writer", read(r, &c, 1));
    int w = open(f, O_WRONLY | O_NONBLOCK);
    printf("open wronly nonblock with reader: %s\n", w >= 0 ? "ok" : strerrorname_np(errno));
    SHOW("read, writer but empty", read(r, &c, 1));
    SHOW("write", write(w, "z", 1));
    SHOW("read", read(r, &c, 1));
    close(w);
    close(r);
    int rw = open(f, O_RDWR);
    SHOW("rdwr write", write(rw, "ab", 2));
    SHOW("rdwr read", read(rw, &c, 1));
    close(rw);
    // Blocking opens rendezvous: a thread opens for reading, we open for writing.
    pthread_t t;
    pthread_create(&t, NULL, fifo_reader, (void *)f);
    int fd = open(f, O_WRONLY);
    SHOW("write to reader", write(fd, "hello", 5));
    close(fd);
    pthread_join(t, NULL);
    printf("reader got %zd '%s'\n", reader_first, reader_buf);
    printf("reader then %zd (writer gone)\n", reader_then);
    struct stat st;
    stat(f, &st);
    printf("fifo is S_ISFIFO: %d\n", S_ISFIFO(st.st_mode));
}

static void close_range_tests(void) {
    int a = dup(1), b = dup(1), c = dup(1);
    SHOW("close_range bad flags", syscall(SYS_close_range, a, c, 0x80));
    SHOW("close_range first > last", syscall(SYS_close_range, c, a, 0));
    SHOW("close_range cloexec", syscall(SYS_close_range, a, a, CLOSE_RANGE_CLOEXEC));
    printf("cloexec now %d\n", fcntl(a, F_GETFD));
    SHOW("close_range", syscall(SYS_close_range, b, ~0U, 0));
    SHOW("fcntl closed b", fcntl(b, F_GETFD));
    SHOW("fcntl closed c", fcntl(c, F_GETFD));
    close(a);
}

static void vector_tests(void) {
    int fd = open(at("vec"), O_CREAT | O_RDWR | O_TRUNC, 0600);
    char a[] = "hello ", b[] = "world";
    struct iovec w[2] = {{a, 6}, {b, 5}};
    SHOW("pwritev", pwritev(fd, w, 2, 3));
    SHOW("offset unchanged", lseek(fd, 0, SEEK_CUR));
    char x[4] = {0}, y[8] = {0};
    struct iovec rv[2] = {{x, 3}, {y, 7}};
    SHOW("preadv", preadv(fd, rv, 2, 3));
    printf("read '%s' '%s'\n", x, y);
    SHOW("preadv negative offset", preadv(fd, rv, 2, -5));
    SHOW("preadv2 current", preadv2(fd, rv, 1, -1, 0));
    SHOW("offset moved", lseek(fd, 0, SEEK_CUR));
    SHOW("preadv2 bad flag", preadv2(fd, rv, 1, 0, 0x10000));
    SHOW("pwritev2 append flag", pwritev2(fd, w, 1, 0, RWF_APPEND));
    struct stat st;
    fstat(fd, &st);
    printf("size %ld\n", (long)st.st_size);
    int p[2];
    pipe(p);
    SHOW("preadv pipe", preadv(p[0], rv, 1, 0));
    SHOW("preadv bad fd", preadv(99, rv, 1, 0));
    close(p[0]); close(p[1]);
    close(fd);
}

static void select_tests(void) {
    int p[2];
    pipe(p);
    fd_set r, w;
    struct timeval tv = {0, 0};
    FD_ZERO(&r); FD_ZERO(&w);
    FD_SET(p[0], &r); FD_SET(p[1], &w);
    SHOW("select empty pipe", select(p[1] + 1, &r, &w, NULL, &tv));
    printf("readable %d writable %d\n", FD_ISSET(p[0], &r), FD_ISSET(p[1], &w));
    write(p[1], "s", 1);
    FD_ZERO(&r);
    FD_SET(p[0], &r);
    tv.tv_sec = 5;
    SHOW("select with data", select(p[0] + 1, &r, NULL, NULL, &tv));
    printf("readable %d\n", FD_ISSET(p[0], &r));
    FD_ZERO(&r);
    FD_SET(60, &r);
    SHOW("select closed fd", select(61, &r, NULL, NULL, &tv));
    sigset_t mask;
    sigemptyset(&mask);
    struct timespec ts = {0, 0};
    FD_ZERO(&r);
    FD_SET(p[0], &r);
    SHOW("pselect", pselect(p[0] + 1, &r, NULL, NULL, &ts, &mask));
    close(p[1]);
    char c;
    read(p[0], &c, 1);
    FD_ZERO(&r);
    FD_SET(p[0], &r);
    SHOW("select writer gone", select(p[0] + 1, &r, NULL, NULL, NULL));
    close(p[0]);
}

// Files without a name: O_TMPFILE and unlinked files keep their size, offsets and fstat;
// statfs of a relative path is the cwd's, fstatfs takes the application's descriptor.
static void nameless_tests(void) {
    int t = open(dir, O_TMPFILE | O_RDWR, 0600);
    SHOW("tmpfile write", write(t, "0123456789", 10));
    SHOW("tmpfile seek end", lseek(t, -3, SEEK_END));
    // Read back (python's tempfile.TemporaryFile): a regular file, not its directory.
    char tb[16] = {0};
    SHOW("tmpfile read", read(t, tb, sizeof tb));
    printf("tmpfile read %s\n", tb);
    SHOW("tmpfile pread", pread(t, tb, 4, 2));
    struct iovec tv = { tb, 5 };
    SHOW("tmpfile preadv", preadv(t, &tv, 1, 0));
    int tp[2];
    if (pipe(tp) == 0) {
        off_t toff = 1;
        SHOW("tmpfile sendfile", sendfile(tp[1], t, &toff, 4));
        SHOW("tmpfile sendfile read", read(tp[0], tb, sizeof tb));
        close(tp[0]); close(tp[1]);
    }
    SHOW("directory read", read(open(dir, O_RDONLY | O_DIRECTORY), tb, 1));
    struct stat st;
    fstat(t, &st);
    printf("tmpfile size %ld\n", (long)st.st_size);
    close(t);
    int u = open(at("gone"), O_CREAT | O_RDWR, 0600);
    write(u, "abc", 3);
    unlink(at("gone"));
    SHOW("fstat unlinked", fstat(u, &st));
    printf("unlinked size %ld links %ld\n", (long)st.st_size, (long)st.st_nlink);
    SHOW("fchmod unlinked", fchmod(u, 0640));
    SHOW("fchown unlinked", fchown(u, -1, -1));
    fstat(u, &st);
    printf("unlinked mode %o\n", st.st_mode & 0777);
    close(u);
    char cwd[4096];
    getcwd(cwd, sizeof cwd);
    chdir(dir);
    struct statfs sf;
    SHOW("statfs relative", statfs("vec", &sf));
    SHOW("statfs missing", statfs("none", &sf));
    SHOW("fstatfs bad fd", fstatfs(99, &sf));
    chdir(cwd);
}

static void copy_tests(void) {
    int in = open(at("vec"), O_RDONLY), out = open(at("copy"), O_CREAT | O_RDWR | O_TRUNC, 0600);
    loff_t oi = 3, oo = 0;
    SHOW("copy_file_range", copy_file_range(in, &oi, out, &oo, 100, 0));
    printf("offsets %ld %ld\n", (long)oi, (long)oo);
    SHOW("copy_file_range flags", copy_file_range(in, NULL, out, NULL, 10, 1));
    SHOW("copy_file_range fd positions", copy_file_range(in, NULL, out, NULL, 4, 0));
    printf("positions %ld %ld\n", (long)lseek(in, 0, SEEK_CUR), (long)lseek(out, 0, SEEK_CUR));
    SHOW("copy_file_range to read-only", copy_file_range(out, NULL, in, NULL, 4, 0));
    int d = open(dir, O_RDONLY | O_DIRECTORY);
    SHOW("copy_file_range dir", copy_file_range(d, NULL, out, NULL, 4, 0));
    close(d);
    char buf[64] = {0};
    pread(out, buf, sizeof buf - 1, 0);
    printf("copy holds '%s'\n", buf);
    SHOW("fallocate", fallocate(out, 0, 0, 8192));
    struct stat st;
    fstat(out, &st);
    printf("size after fallocate %ld\n", (long)st.st_size);
    SHOW("fallocate keep size", fallocate(out, FALLOC_FL_KEEP_SIZE, 0, 100000));
    fstat(out, &st);
    printf("size kept %ld\n", (long)st.st_size);
    SHOW("fallocate bad len", fallocate(out, 0, 0, 0));
    SHOW("fallocate read-only", fallocate(in, 0, 0, 10));
    int p[2];
    pipe(p);
    SHOW("fallocate pipe", fallocate(p[1], 0, 0, 10));
    SHOW("fadvise", posix_fadvise(out, 0, 0, POSIX_FADV_SEQUENTIAL));
    SHOW("fadvise bad advice", posix_fadvise(out, 0, 0, 77));
    SHOW("fadvise pipe", posix_fadvise(p[0], 0, 0, POSIX_FADV_NORMAL));
    // splice: file -> pipe -> file.
    loff_t off = 0;
    SHOW("splice file to pipe", splice(in, &off, p[1], NULL, 5, 0));
    printf("splice offset %ld\n", (long)off);
    int dst = open(at("spliced"), O_CREAT | O_RDWR | O_TRUNC, 0600);
    SHOW("splice pipe to file", splice(p[0], NULL, dst, NULL, 100, 0));
    memset(buf, 0, sizeof buf);
    pread(dst, buf, sizeof buf - 1, 0);
    printf("spliced '%s'\n", buf);
    SHOW("splice no pipe", splice(in, NULL, dst, NULL, 5, 0));
    SHOW("splice pipe offset", splice(p[0], &off, dst, NULL, 5, 0));
    SHOW("splice empty nonblock", splice(p[0], NULL, dst, NULL, 5, SPLICE_F_NONBLOCK));
    int q[2];
    pipe(q);
    write(p[1], "teed", 4);
    SHOW("tee", tee(p[0], q[1], 100, 0));
    SHOW("tee not pipe", tee(p[0], dst, 4, 0));
    SHOW("tee same pipe", tee(p[0], p[1], 4, 0));
    memset(buf, 0, sizeof buf);
    read(q[0], buf, sizeof buf - 1);
    printf("tee copy '%s'\n", buf);
    memset(buf, 0, sizeof buf);
    read(p[0], buf, 4);
    printf("tee left '%s'\n", buf);
    close(q[0]); close(q[1]);
    struct iovec v = {"vmspliced", 9};
    SHOW("vmsplice", vmsplice(p[1], &v, 1, 0));
    SHOW("vmsplice not pipe", vmsplice(dst, &v, 1, 0));
    memset(buf, 0, sizeof buf);
    SHOW("read back", read(p[0], buf, sizeof buf - 1));
    printf("'%s'\n", buf);
    close(p[0]); close(p[1]); close(in); close(out); close(dst);
}

static void memfd_tests(void) {
    int fd = memfd_create("compat", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    printf("memfd: %s cloexec %d\n", fd >= 0 ? "ok" : strerrorname_np(errno), fcntl(fd, F_GETFD));
    SHOW("ftruncate", ftruncate(fd, 8192));
    char *m = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    printf("mmap: %s\n", m == MAP_FAILED ? strerrorname_np(errno) : "ok");
    strcpy(m + 4096, "through the mapping");
    char buf[32] = {0};
    SHOW("pread", pread(fd, buf, 19, 4096));
    printf("'%s'\n", buf);
    SHOW("write", write(fd, "start", 5));
    printf("mapping sees '%.5s'\n", m);
    struct stat st;
    fstat(fd, &st);
    printf("fstat size %ld regular %d mode %o\n", (long)st.st_size, S_ISREG(st.st_mode), st.st_mode & 0777);
    char link[256] = {0}, path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    readlink(path, link, sizeof link - 1);
    printf("link %s\n", link);
    SHOW("add seals", fcntl(fd, F_ADD_SEALS, F_SEAL_GROW | F_SEAL_SHRINK));
    SHOW("get seals", fcntl(fd, F_GET_SEALS));
    SHOW("grow sealed", ftruncate(fd, 100000));
    munmap(m, 8192);
    close(fd);
    SHOW("memfd bad flags", memfd_create("x", 0x1000));
    char longname[300];
    memset(longname, 'a', sizeof longname - 1);
    longname[299] = 0;
    SHOW("memfd long name", memfd_create(longname, 0));
    int plain = memfd_create("plain", 0);
    SHOW("seal unsealable", fcntl(plain, F_ADD_SEALS, F_SEAL_WRITE));
    printf("plain cloexec %d\n", fcntl(plain, F_GETFD));
    close(plain);
}

static void xattr_tests(void) {
    const char *f = at("vec");
    SHOW("setxattr", setxattr(f, "user.compat", "v1", 2, 0));
    SHOW("setxattr create existing", setxattr(f, "user.compat", "v2", 2, XATTR_CREATE));
    SHOW("setxattr replace missing", setxattr(f, "user.none", "v2", 2, XATTR_REPLACE));
    SHOW("setxattr bad flags", setxattr(f, "user.compat", "v2", 2, 8));
    SHOW("setxattr empty name", setxattr(f, "", "v2", 2, 0));
    char buf[64] = {0};
    SHOW("getxattr", getxattr(f, "user.compat", buf, sizeof buf));
    printf("value '%s'\n", buf);
    SHOW("getxattr size", getxattr(f, "user.compat", NULL, 0));
    SHOW("getxattr small", getxattr(f, "user.compat", buf, 1));
    SHOW("getxattr missing", getxattr(f, "user.none", buf, sizeof buf));
    int fd = open(f, O_RDWR);
    SHOW("fsetxattr", fsetxattr(fd, "user.second", "xyz", 3, 0));
    memset(buf, 0, sizeof buf);
    SHOW("flistxattr", flistxattr(fd, buf, sizeof buf));
    SHOW("fgetxattr", fgetxattr(fd, "user.second", buf, sizeof buf));
    SHOW("fremovexattr", fremovexattr(fd, "user.second"));
    SHOW("fremovexattr again", fremovexattr(fd, "user.second"));
    SHOW("removexattr", removexattr(f, "user.compat"));
    SHOW("listxattr empty", listxattr(f, buf, sizeof buf));
    SHOW("getxattr no file", getxattr(at("none"), "user.a", buf, sizeof buf));
    SHOW("fgetxattr bad fd", fgetxattr(99, "user.a", buf, sizeof buf));
    symlink("vec", at("lnk"));
    SHOW("lsetxattr on symlink", lsetxattr(at("lnk"), "user.a", "1", 1, 0));
    close(fd);
}

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    snprintf(dir, sizeof dir, "%s", argv[1]);
    setvbuf(stdout, NULL, _IONBF, 0);
    umask_tests();
    fifo_tests();
    close_range_tests();
    vector_tests();
    copy_tests();
    nameless_tests();
    select_tests();
    memfd_tests();
    xattr_tests();
    return 0;
}
