// pty_nonblock.c: a pseudo-terminal master made non-blocking by FIONBIO or O_NONBLOCK
// reads EAGAIN when nothing is there (CPython's test_pty test_openpty hung on it), then
// what the slave wrote.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

static void try_read(const char *what, int fd) {
    char buf[64];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    int e = errno;
    if (n < 0) { printf("%s: -1 %s\n", what, strerror(e)); return; }
    buf[n] = 0;
    printf("%s: %zd", what, n);
    for (ssize_t i = 0; i < n; i++) printf(" %02x", (unsigned char)buf[i]);
    printf("\n");
}

int main(void) {
    int master = posix_openpt(O_RDWR | O_NOCTTY);
    if (master < 0 || grantpt(master) || unlockpt(master)) { printf("no pty\n"); return 0; }
    int on = 1;
    printf("FIONBIO on: %d\n", ioctl(master, FIONBIO, &on));
    printf("O_NONBLOCK in F_GETFL: %d\n", (fcntl(master, F_GETFL) & O_NONBLOCK) != 0);
    try_read("empty master, FIONBIO", master);
    on = 0;
    ioctl(master, FIONBIO, &on);
    fcntl(master, F_SETFL, fcntl(master, F_GETFL) | O_NONBLOCK);
    try_read("empty master, O_NONBLOCK", master);
    int slave = open(ptsname(master), O_RDWR | O_NOCTTY);
    if (slave < 0) { printf("no slave\n"); return 0; }
    if (write(slave, "hi\n", 3) != 3) return 1;
    // The line discipline hands the bytes over asynchronously: wait for them.
    fcntl(master, F_SETFL, fcntl(master, F_GETFL) & ~O_NONBLOCK);
    try_read("master after the slave wrote", master);
    fcntl(master, F_SETFL, fcntl(master, F_GETFL) | O_NONBLOCK);
    try_read("empty again", master);
    return 0;
}
