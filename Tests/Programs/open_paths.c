// open_paths.c: open(2) of existing host files by many spellings of their paths: plain,
// relative to a directory fd and to the cwd, through symlinks to directories and files
// (followed, O_NOFOLLOW), with ".", ".." and doubled slashes, O_DIRECTORY on a file, a
// directory for writing, a FIFO (non-blocking), missing names. Prints what each open
// gives (the kind and size fstat sees, or the errno name) and what reads return. Run
// natively and under junction (whose open of a plain host path takes one openat2), the
// output must be the same.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *name(int e) {
    switch (e) {
    case ENOENT: return "ENOENT";
    case ENOTDIR: return "ENOTDIR";
    case EISDIR: return "EISDIR";
    case ELOOP: return "ELOOP";
    case EACCES: return "EACCES";
    case ENXIO: return "ENXIO";
    default: return "other";
    }
}

static const char *kind(mode_t m) {
    if (S_ISREG(m)) return "file";
    if (S_ISDIR(m)) return "dir";
    if (S_ISFIFO(m)) return "fifo";
    if (S_ISLNK(m)) return "symlink";
    return "other";
}

static void try_open(int dirfd, const char *path, int flags) {
    int fd = openat(dirfd, path, flags);
    if (fd < 0) {
        int e = errno;
        printf("%-28s %#8o -> %s\n", path, flags, name(e));
        return;
    }
    struct stat st;
    fstat(fd, &st);
    char buf[64] = { 0 };
    ssize_t n = S_ISREG(st.st_mode) ? read(fd, buf, sizeof buf - 1) : 0;
    int fl = fcntl(fd, F_GETFL);
    printf("%-28s %#8o -> %s size %lld read %zd \"%s\" flags %#o\n", path, flags, kind(st.st_mode),
           S_ISREG(st.st_mode) ? (long long)st.st_size : 0LL, n, buf, fl);
    close(fd);
}

int main(void) {
    char root[] = "/tmp/open_paths_XXXXXX";
    if (!mkdtemp(root)) { perror("mkdtemp"); return 1; }
    if (chdir(root) != 0) { perror("chdir"); return 1; }
    mkdir("d", 0755);
    mkdir("d/e", 0755);
    FILE *f = fopen("d/e/f.txt", "w");
    fputs("hello", f);
    fclose(f);
    symlink("d", "ld");                 // a relative link to a directory
    symlink("e/f.txt", "d/lf");         // a relative link to a file
    char abs[256];
    snprintf(abs, sizeof abs, "%s/d/e", root);
    symlink(abs, "la");                 // an absolute link to a directory
    mkfifo("d/p", 0644);

    const char *paths[] = {
        "d/e/f.txt", "./d/e/f.txt", "d//e/f.txt", "d/e/../e/f.txt", "d/e/f.txt/", "d/e/missing",
        "ld/e/f.txt", "d/lf", "la/f.txt", "d/e", "d/e/", "d/./e", "missing/f.txt", "d/e/f.txt/x",
    };
    for (size_t i = 0; i < sizeof paths / sizeof *paths; i++) try_open(AT_FDCWD, paths[i], O_RDONLY);
    try_open(AT_FDCWD, "d/lf", O_RDONLY | O_NOFOLLOW);
    try_open(AT_FDCWD, "ld", O_RDONLY | O_NOFOLLOW);
    try_open(AT_FDCWD, "d/e/f.txt", O_RDONLY | O_DIRECTORY);
    try_open(AT_FDCWD, "d/e", O_RDWR);
    try_open(AT_FDCWD, "d/e", O_RDONLY | O_DIRECTORY);
    try_open(AT_FDCWD, "d/e/f.txt", O_RDONLY | O_NONBLOCK);
    try_open(AT_FDCWD, "d/e/f.txt", O_RDWR | O_APPEND);
    try_open(AT_FDCWD, "d/p", O_RDONLY | O_NONBLOCK);
    try_open(AT_FDCWD, "d/p", O_WRONLY | O_NONBLOCK);

    // Absolute paths and a directory fd.
    char path[300];
    snprintf(path, sizeof path, "%s/d/e/f.txt", root);
    int fd = open(path, O_RDONLY);
    char buf[8] = { 0 };
    printf("absolute: %s\n", fd >= 0 && read(fd, buf, 5) == 5 ? buf : "failed");
    if (fd >= 0) close(fd);
    snprintf(path, sizeof path, "%s/ld/lf", root);
    fd = open(path, O_RDONLY);
    printf("absolute through two links: %s\n", fd >= 0 ? "opened" : name(errno));
    if (fd >= 0) close(fd);
    int dfd = open("d", O_RDONLY | O_DIRECTORY);
    try_open(dfd, "e/f.txt", O_RDONLY);
    try_open(dfd, "lf", O_RDONLY);
    try_open(dfd, "../d/e/f.txt", O_RDONLY);
    close(dfd);

    unlink("d/p"); unlink("la"); unlink("d/lf"); unlink("ld"); unlink("d/e/f.txt");
    rmdir("d/e"); rmdir("d");
    if (chdir("/") == 0) rmdir(root);
    puts("done");
    return 0;
}
