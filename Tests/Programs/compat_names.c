// compat_names.c: file names that are bytes, not UTF-8 (created, listed, stat'ed, opened,
// renamed, linked to, a working directory), in the directory argv[1]; then
// pseudo-terminals: posix_openpt/grantpt/unlockpt/ptsname, openpty (TIOCGPTPEER), a
// line through the line discipline both ways, TIOCGPTN, and errors.
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pty.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#define SHOW(what, expr) do { errno = 0; long r_ = (long)(expr); \
    printf("%s = %ld%s%s\n", what, r_ < 0 ? -1L : r_ > 0 ? 1L : 0L, r_ < 0 ? " " : "", r_ < 0 ? strerrorname_np(errno) : ""); } while (0)

static void hex(const char *label, const char *s, size_t n) {
    printf("%s ", label);
    for (size_t i = 0; i < n; i++) printf("%02x", (unsigned char)s[i]);
    printf("\n");
}

static int compare(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void list(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) { printf("opendir %s\n", strerrorname_np(errno)); return; }
    char *names[32];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < 32) names[n++] = strdup(e->d_name);
    closedir(d);
    qsort(names, n, sizeof names[0], compare);
    for (int i = 0; i < n; i++) { hex("  entry", names[i], strlen(names[i])); free(names[i]); }
}

static void names(const char *dir) {
    // Invalid UTF-8 (a lone 0xff, Latin-1 "caf\xe9", a truncated sequence, an encoded
    // surrogate) and a valid plane-16 private-use character, which the libOS's escape
    // scheme must keep apart from the escapes.
    const char *odd[] = {"\xff", "caf\xe9", "x\xe2\x82", "\xed\xa0\x80", "\xf4\x8f\xb9\x81", "plain"};
    char path[4096];
    int count = sizeof odd / sizeof odd[0];
    for (int i = 0; i < count; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, odd[i]);
        int fd = open(path, O_CREAT | O_EXCL | O_WRONLY, 0644);
        SHOW("create", fd);
        if (fd >= 0) { dprintf(fd, "%d", i); close(fd); }
    }
    list(dir);
    for (int i = 0; i < count; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, odd[i]);
        struct stat st;
        SHOW("stat", stat(path, &st));
        printf("  size %ld\n", (long)st.st_size);
    }
    // A symlink whose target is not UTF-8, and a rename to another odd name.
    snprintf(path, sizeof path, "%s/link", dir);
    SHOW("symlink", symlink("caf\xe9", path));
    char target[64] = {0};
    long n = readlink(path, target, sizeof target);
    hex("readlink", target, n > 0 ? n : 0);
    char from[4096], to[4096];
    snprintf(from, sizeof from, "%s/\xff", dir);
    snprintf(to, sizeof to, "%s/\xfe\xfd", dir);
    SHOW("rename", rename(from, to));
    SHOW("open renamed", open(to, O_RDONLY));
    SHOW("open old name", open(from, O_RDONLY));
    // A directory with an odd name as the working directory.
    snprintf(path, sizeof path, "%s/d\xe9", dir);
    SHOW("mkdir", mkdir(path, 0755));
    char saved[4096], cwd[4096];
    getcwd(saved, sizeof saved);
    SHOW("chdir", chdir(path));
    if (getcwd(cwd, sizeof cwd)) {
        size_t len = strlen(cwd), dl = strlen(dir);
        hex("cwd tail", cwd + (len >= dl ? dl : 0), len >= dl ? len - dl : 0);
    }
    chdir(saved);
    list(dir);
    // 255 bytes of 0xff are one legal name; 256 are not.
    char longname[300];
    memset(longname, 0xff, 255);
    longname[255] = 0;
    snprintf(path, sizeof path, "%s/%s", dir, longname);
    SHOW("255-byte name", open(path, O_CREAT | O_WRONLY, 0644));
    memset(longname, 0xff, 256);
    longname[256] = 0;
    snprintf(path, sizeof path, "%s/%s", dir, longname);
    SHOW("256-byte name", open(path, O_CREAT | O_WRONLY, 0644));
}

static void noecho(int slave) {
    // Without echo, what the master reads is the slave's output alone (not a race
    // between the echo and the output).
    struct termios t;
    tcgetattr(slave, &t);
    t.c_lflag &= ~(ECHO | ECHONL);
    SHOW("tcsetattr no echo", tcsetattr(slave, TCSANOW, &t));
}

static void line(int from, int to, const char *what) {
    char buf[64] = {0};
    write(from, "hello\n", 6);
    long n = read(to, buf, sizeof buf - 1);
    // The master sees the slave's output with ONLCR: "\r\n".
    for (long i = 0; i < n; i++) if (buf[i] == '\r' || buf[i] == '\n') buf[i] = '.';
    printf("%s: %ld %s\n", what, n, buf);
}

static void ptys(void) {
    int m = posix_openpt(O_RDWR | O_NOCTTY);
    SHOW("posix_openpt", m);
    SHOW("isatty master", isatty(m));
    SHOW("grantpt", grantpt(m));
    SHOW("unlockpt", unlockpt(m));
    char *name = ptsname(m);
    printf("ptsname in /dev/pts %d\n", name && strncmp(name, "/dev/pts/", 9) == 0);
    unsigned number = 0;
    SHOW("TIOCGPTN", ioctl(m, TIOCGPTN, &number));
    char expect[64];
    snprintf(expect, sizeof expect, "/dev/pts/%u", number);
    printf("ptsname matches TIOCGPTN %d\n", name && strcmp(name, expect) == 0);
    int s = open(name, O_RDWR | O_NOCTTY);
    SHOW("open slave", s);
    struct stat st;
    SHOW("fstat slave", fstat(s, &st));
    printf("slave is a character device %d\n", S_ISCHR(st.st_mode));
    noecho(s);
    line(m, s, "master to slave");
    line(s, m, "slave to master");
    close(s);
    close(m);

    int master, slave;
    SHOW("openpty", openpty(&master, &slave, NULL, NULL, NULL));
    SHOW("isatty slave", isatty(slave));
    printf("cloexec master %d slave %d\n", (fcntl(master, F_GETFD) & FD_CLOEXEC) != 0, (fcntl(slave, F_GETFD) & FD_CLOEXEC) != 0);
    char *tty = ttyname(slave);
    printf("ttyname in /dev/pts %d\n", tty && strncmp(tty, "/dev/pts/", 9) == 0);
    struct termios t;
    SHOW("tcgetattr slave", tcgetattr(slave, &t));
    int peer = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
    SHOW("TIOCGPTPEER", peer);
    printf("peer cloexec %d\n", (fcntl(peer, F_GETFD) & FD_CLOEXEC) != 0);
    noecho(peer);
    line(master, peer, "master to peer");
    close(peer);
    close(slave);
    close(master);

    int fd = open("/dev/null", O_RDWR);
    SHOW("TIOCGPTN on /dev/null", ioctl(fd, TIOCGPTN, &number));
    SHOW("TIOCGPTPEER on /dev/null", ioctl(fd, TIOCGPTPEER, O_RDWR));
    close(fd);
    SHOW("TIOCGPTN on a bad fd", ioctl(99, TIOCGPTN, &number));
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc > 1) names(argv[1]);
    ptys();
    return 0;
}
