// reopen.c: opening /proc/self/fd/N (and /dev/stdin, /dev/stdout, /dev/stderr, /dev/fd/N,
// symlinks to it) opens the file descriptor N refers to again: the same pipe, a new open
// file description of the same regular file (its own offset and the new flags, even
// once unlinked), ENXIO for a socket. argv[1] and argv[2]: two empty directories.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static int reopen(int fd, int flags) {
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    return open(path, flags);
}

static void show_open(const char *what, int fd) {
    int e = errno;
    if (fd < 0) printf("%s: -1 %s\n", what, strerror(e));
    else printf("%s: ok\n", what);
}

static void show_read(const char *what, int fd) {
    char buf[64];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    int e = errno;
    if (n < 0) { printf("%s: read -1 %s\n", what, strerror(e)); return; }
    buf[n] = 0;
    printf("%s: read %zd '%s'\n", what, n, buf);
}

static void show_link(const char *path) {
    char buf[256];
    ssize_t n = readlink(path, buf, sizeof buf - 1);
    if (n < 0) { printf("readlink %s: -1\n", path); return; }
    buf[n] = 0;
    printf("readlink %s: %s\n", path, buf);
}

static void same_inode(const char *what, int a, int b) {
    struct stat sa, sb;
    if (fstat(a, &sa) || fstat(b, &sb)) { printf("%s: fstat failed\n", what); return; }
    printf("%s: same inode %d, same type %d\n", what, sa.st_ino == sb.st_ino && sa.st_dev == sb.st_dev,
           (sa.st_mode & S_IFMT) == (sb.st_mode & S_IFMT));
}

static void regular(const char *dir, const char *label) {
    char path[4096], what[128];
    snprintf(path, sizeof path, "%s/file", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (write(fd, "0123456789", 10) != 10) printf("write failed\n");
    lseek(fd, 5, SEEK_SET);
    int r = reopen(fd, O_RDONLY);
    snprintf(what, sizeof what, "%s O_RDONLY", label); show_open(what, r);
    printf("%s: new offset %ld, old offset %ld, mode %d\n", label, (long)lseek(r, 0, SEEK_CUR),
           (long)lseek(fd, 0, SEEK_CUR), fcntl(r, F_GETFL) & O_ACCMODE);
    snprintf(what, sizeof what, "%s reopened", label); show_read(what, r);
    ssize_t n = write(r, "x", 1);
    int e = errno;
    printf("%s: write on the O_RDONLY reopen %zd %s\n", label, n, n < 0 ? strerror(e) : "");
    same_inode(label, fd, r);
    int a = reopen(fd, O_WRONLY | O_APPEND);
    snprintf(what, sizeof what, "%s O_WRONLY|O_APPEND", label); show_open(what, a);
    if (write(a, "AB", 2) != 2) printf("append failed\n");
    printf("%s: size after append %ld\n", label, (long)lseek(fd, 0, SEEK_END));
    unlink(path);
    int u = reopen(fd, O_RDONLY);
    snprintf(what, sizeof what, "%s unlinked", label); show_open(what, u);
    snprintf(what, sizeof what, "%s unlinked", label); show_read(what, u);
    int t = reopen(fd, O_RDWR | O_TRUNC);
    snprintf(what, sizeof what, "%s O_TRUNC", label); show_open(what, t);
    struct stat st;
    fstat(fd, &st);
    printf("%s: size after O_TRUNC %ld\n", label, (long)st.st_size);
    int pathfd = open(dir, O_PATH | O_DIRECTORY);
    int d = reopen(pathfd, O_RDONLY | O_DIRECTORY);
    snprintf(what, sizeof what, "%s directory from O_PATH", label); show_open(what, d);
    same_inode(what, pathfd, d);
    close(fd); close(r); close(a); close(u); close(t); close(pathfd); close(d);
}

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: reopen DIR DIR\n"); return 2; }
    setvbuf(stdout, NULL, _IONBF, 0);
    // The standard input the program was started with.
    int s = open("/dev/stdin", O_RDONLY);
    show_open("/dev/stdin at start", s);
    show_read("/dev/stdin at start", s);
    close(s);
    show_link("/dev/stdin"); show_link("/dev/stdout"); show_link("/dev/stderr"); show_link("/dev/fd");

    int p[2];
    if (pipe(p)) return 1;
    if (write(p[1], "hello", 5) != 5) return 1;
    int r = reopen(p[0], O_RDONLY);
    show_open("pipe read end O_RDONLY", r);
    show_read("pipe reopened", r);
    same_inode("pipe", p[0], r);
    int w = reopen(p[0], O_WRONLY);
    show_open("pipe read end O_WRONLY", w);
    if (write(w, "via-reopen", 10) != 10) printf("write failed\n");
    show_read("pipe after a write through the reopened end", p[0]);
    int rw = reopen(p[1], O_RDWR | O_NONBLOCK);
    show_open("pipe write end O_RDWR|O_NONBLOCK", rw);
    show_read("pipe O_RDWR on an empty pipe", rw);
    close(r); close(w); close(rw);

    // fd 0 as a pipe: /dev/stdin is the pipe, not the stdin the program started with.
    int saved = dup(0);
    dup2(p[0], 0);
    if (write(p[1], "stdin-data", 10) != 10) return 1;
    s = open("/dev/stdin", O_RDONLY);
    show_open("/dev/stdin on a pipe", s);
    show_read("/dev/stdin on a pipe", s);
    close(s);
    if (write(p[1], "fd-data", 7) != 7) return 1;
    s = open("/dev/fd/0", O_RDONLY);
    show_open("/dev/fd/0", s);
    show_read("/dev/fd/0", s);
    close(s);
    dup2(saved, 0);
    close(saved);

    int q[2];
    if (pipe(q)) return 1;
    saved = dup(1);
    dup2(q[1], 1);
    int o = open("/dev/stdout", O_WRONLY);
    int oe = errno;
    if (o >= 0 && write(o, "to-stdout", 9) != 9) return 1;
    dup2(saved, 1);
    close(saved);
    errno = oe;
    show_open("/dev/stdout on a pipe", o);
    show_read("/dev/stdout on a pipe", q[0]);
    close(o);
    saved = dup(2);
    dup2(q[1], 2);
    o = open("/dev/stderr", O_WRONLY);
    oe = errno;
    if (o >= 0 && write(o, "to-stderr", 9) != 9) return 1;
    dup2(saved, 2);
    close(saved);
    errno = oe;
    show_open("/dev/stderr on a pipe", o);
    show_read("/dev/stderr on a pipe", q[0]);
    close(o);

    regular(argv[1], "first directory");
    regular(argv[2], "second directory");

    int m = memfd_create("reopen", 0);
    if (write(m, "memfd-data", 10) != 10) return 1;
    r = reopen(m, O_RDONLY);
    show_open("memfd", r);
    show_read("memfd", r);
    same_inode("memfd", m, r);

    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    show_open("socketpair", reopen(sv[0], O_RDWR));
    int tcp = socket(AF_INET, SOCK_STREAM, 0);
    show_open("tcp socket", reopen(tcp, O_RDWR));
    int ev = eventfd(3, 0);
    r = reopen(ev, O_RDWR);
    show_open("eventfd", r);
    int ep = epoll_create1(0);
    show_open("epoll", reopen(ep, O_RDWR));
    int n = open("/dev/null", O_RDONLY);
    r = reopen(n, O_WRONLY);
    show_open("/dev/null O_WRONLY", r);
    printf("/dev/null write %zd\n", write(r, "x", 1));
    show_open("a closed descriptor", reopen(999, O_RDONLY));
    return 0;
}
