// unix_fork.c: AF_UNIX socket pairs shared by a parent and its forked child (stream,
// seqpacket, datagram): bytes queued before the fork reach the child, data flows both
// ways after it, record boundaries hold, end of file when the other side closes.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static void check(int ok, const char *what) {
    if (!ok) { perror(what); exit(2); }
}

static void exchange(int type, const char *name) {
    int sv[2];
    check(socketpair(AF_UNIX, type, 0, sv) == 0, "socketpair");
    // Queued before the fork: the child must read it.
    check(write(sv[0], "early", 5) == 5, "write early");
    pid_t pid = fork();
    check(pid >= 0, "fork");
    char buf[256];
    if (pid == 0) {
        close(sv[0]);
        ssize_t n = read(sv[1], buf, sizeof buf);
        printf("%s child got %zd: %.*s\n", name, n, (int)(n > 0 ? n : 0), buf);
        for (int i = 0; i < 3; i++) {
            char msg[32];
            int len = snprintf(msg, sizeof msg, "reply-%d", i);
            check(write(sv[1], msg, len) == len, "child write");
            n = read(sv[1], buf, sizeof buf);  // the parent's ack for this reply
            printf("%s child ack %d: %.*s\n", name, i, (int)(n > 0 ? n : 0), buf);
        }
        fflush(stdout);
        _exit(0);
    }
    close(sv[1]);
    for (int i = 0; i < 3; i++) {
        ssize_t n = read(sv[0], buf, sizeof buf);
        printf("%s parent got %zd: %.*s\n", name, n, (int)(n > 0 ? n : 0), buf);
        fflush(stdout);
        char ack[32];
        int len = snprintf(ack, sizeof ack, "ack-%d", i);
        check(write(sv[0], ack, len) == len, "parent write");
    }
    int status;
    check(waitpid(pid, &status, 0) == pid, "waitpid");
    if (type != SOCK_DGRAM) {
        ssize_t n = read(sv[0], buf, sizeof buf);  // the child's end is closed everywhere
        printf("%s after exit: read %zd\n", name, n);
    }
    printf("%s child status %d\n", name, WEXITSTATUS(status));
    fflush(stdout);
    close(sv[0]);
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    exchange(SOCK_STREAM, "stream");
    exchange(SOCK_SEQPACKET, "seqpacket");
    exchange(SOCK_DGRAM, "dgram");
    // A big stream transfer from the child to the parent (more than a buffer's worth).
    int sv[2];
    check(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0, "socketpair");
    pid_t pid = fork();
    if (pid == 0) {
        close(sv[0]);
        static char block[65536];
        for (int i = 0; i < 32; i++) {
            memset(block, 'a' + i % 26, sizeof block);
            for (size_t off = 0; off < sizeof block;) {
                ssize_t n = write(sv[1], block + off, sizeof block - off);
                check(n > 0, "bulk write");
                off += n;
            }
        }
        _exit(0);
    }
    close(sv[1]);
    long total = 0, sum = 0;
    char buf[4096];
    ssize_t n;
    while ((n = read(sv[0], buf, sizeof buf)) > 0) {
        for (ssize_t i = 0; i < n; i++) sum += buf[i];
        total += n;
    }
    int status;
    waitpid(pid, &status, 0);
    printf("bulk %ld bytes, sum %ld, status %d\n", total, sum, WEXITSTATUS(status));
    return 0;
}
