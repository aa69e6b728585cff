// conn10k.c: N TCP connections open at the same time (issue 21: a server with 10,000
// connections must be able to run). The server accepts all N before it answers any, then
// serves them through one epoll set; the client opens all N before it sends on any, so
// each side holds N descriptors at once (RLIMIT_NOFILE raised with setrlimit, as a server
// does). Every connection carries its index and gets index + 1 back; then the client
// closes them all and the server sees end-of-file on each.
//
//   conn10k pair N              server and a forked client over 127.0.0.1 (kernel port)
//   conn10k serve ADDR PORT N   the server alone
//   conn10k connect ADDR PORT N [leave-open]
//                               the client alone (retries the first connect for 60 s);
//                               leave-open: exits without closing its connections
//
// Output (stdout, the same natively and under junction): one line per side, saying
// whether its N descriptors were consecutive numbers (the lowest free ones, as Linux
// hands them out; where the run starts depends on what the caller left open).
// Descriptors the caller left open beyond 0-2 are closed first (close_range).
// Errors: a line on stderr and exit status 1.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void die(const char *what, int i) {
    fprintf(stderr, "conn10k: %s (connection %d): %s\n", what, i, strerror(errno));
    exit(1);
}

static void raise_limit(int n) {
    struct rlimit r;
    if (getrlimit(RLIMIT_NOFILE, &r) != 0) die("getrlimit", -1);
    rlim_t want = (rlim_t)n + 64;
    if (r.rlim_cur >= want) return;
    if (r.rlim_max < want) {
        fprintf(stderr, "conn10k: RLIMIT_NOFILE hard limit %llu < %llu\n",
                (unsigned long long)r.rlim_max, (unsigned long long)want);
        exit(1);
    }
    r.rlim_cur = want;
    if (setrlimit(RLIMIT_NOFILE, &r) != 0) die("setrlimit", -1);
}

static void full(int fd, void *buf, size_t len, int writing, int i) {
    char *p = buf;
    while (len > 0) {
        ssize_t k = writing ? write(fd, p, len) : read(fd, p, len);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) die(writing ? "write" : "read", i);
        if (k == 0) { errno = ECONNRESET; die("early end of file", i); }
        p += k;
        len -= (size_t)k;
    }
}

static void serve(int lfd, int n) {
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) die("epoll_create1", -1);
    int *fds = calloc((size_t)n, sizeof(int));
    int lowest = -1, highest = -1;
    for (int i = 0; i < n; i++) {
        int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) die("accept4", i);
        fds[i] = fd;
        if (lowest < 0 || fd < lowest) lowest = fd;
        if (fd > highest) highest = fd;
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) die("epoll_ctl ADD", i);
    }
    // Accept order need not be connect order (a SYN cookie's connection is made when its
    // ACK arrives): each index must come exactly once.
    char *seen = calloc((size_t)n, 1);
    int served = 0;
    struct epoll_event events[512];
    while (served < n) {
        int k = epoll_wait(ep, events, 512, 60000);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) die("epoll_wait", served);
        if (k == 0) { errno = ETIMEDOUT; die("epoll_wait: nothing ready for 60 s", served); }
        for (int e = 0; e < k; e++) {
            int i = (int)events[e].data.u32;
            uint32_t v;
            full(fds[i], &v, sizeof v, 0, i);
            if (v >= (uint32_t)n || seen[v]) { errno = EPROTO; die("an index out of range or seen twice", i); }
            seen[v] = 1;
            v += 1;
            full(fds[i], &v, sizeof v, 1, i);
            if (epoll_ctl(ep, EPOLL_CTL_DEL, fds[i], NULL) != 0) die("epoll_ctl DEL", i);
            served++;
        }
    }
    for (int i = 0; i < n; i++) {
        char c;
        ssize_t k;
        do k = read(fds[i], &c, 1); while (k < 0 && errno == EINTR);
        if (k != 0) { if (k > 0) errno = EPROTO; die("no end of file after the client closed", i); }
        if (close(fds[i]) != 0) die("close", i);
    }
    close(ep);
    printf("server: %d connections open at once on %s descriptors, %d answered through epoll, %d ends of file\n",
           n, highest - lowest + 1 == n ? "consecutive" : "scattered", served, n);
    fflush(stdout);
}

static void client(const struct sockaddr_in *to, int n, int leaveOpen) {
    int *fds = calloc((size_t)n, sizeof(int));
    int lowest = -1, highest = -1;
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (int i = 0; i < n; i++) {
        int fd;
        for (;;) {
            fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
            if (fd < 0) die("socket", i);
            if (connect(fd, (const struct sockaddr *)to, sizeof *to) == 0) break;
            int e = errno;
            struct timespec now;
            clock_gettime(CLOCK_MONOTONIC, &now);
            // Only the first connection may wait for the server to come up.
            if (i > 0 || now.tv_sec - start.tv_sec > 60 ||
                (e != ECONNREFUSED && e != ETIMEDOUT && e != EHOSTUNREACH && e != ENETUNREACH)) {
                errno = e;
                die("connect", i);
            }
            close(fd);
            usleep(20000);
        }
        fds[i] = fd;
        if (lowest < 0 || fd < lowest) lowest = fd;
        if (fd > highest) highest = fd;
    }
    for (int i = 0; i < n; i++) {
        uint32_t v = (uint32_t)i;
        full(fds[i], &v, sizeof v, 1, i);
    }
    int right = 0;
    for (int i = 0; i < n; i++) {
        uint32_t v;
        full(fds[i], &v, sizeof v, 0, i);
        if (v == (uint32_t)i + 1) right++;
    }
    // Left open, the exit must close them as Linux's does: the server still sees each end.
    for (int i = 0; i < n && !leaveOpen; i++)
        if (close(fds[i]) != 0) die("close", i);
    printf("client: %d connections open at once on %s descriptors, %d answers right\n", n,
           highest - lowest + 1 == n ? "consecutive" : "scattered", right);
    fflush(stdout);
}

static struct sockaddr_in address(const char *ip, const char *port) {
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(port))};
    if (inet_pton(AF_INET, ip, &a.sin_addr) != 1) { fprintf(stderr, "conn10k: bad address %s\n", ip); exit(2); }
    return a;
}

static int listener(struct sockaddr_in *a) {
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (lfd < 0) die("socket", -1);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(lfd, (struct sockaddr *)a, sizeof *a) != 0) die("bind", -1);
    if (listen(lfd, 4096) != 0) die("listen", -1);
    socklen_t len = sizeof *a;
    if (getsockname(lfd, (struct sockaddr *)a, &len) != 0) die("getsockname", -1);
    return lfd;
}

int main(int argc, char **argv) {
    // Whatever the caller left open (a test runner's pipes) would split the runs.
    if (syscall(SYS_close_range, 3, ~0U, 0) != 0) die("close_range", -1);
    if (argc == 3 && strcmp(argv[1], "pair") == 0) {
        int n = atoi(argv[2]);
        raise_limit(n);
        struct sockaddr_in a = address("127.0.0.1", "0");
        int lfd = listener(&a);
        pid_t child = fork();
        if (child < 0) die("fork", -1);
        if (child == 0) {
            close(lfd);
            client(&a, n, 0);
            _exit(0);
        }
        serve(lfd, n);
        int status;
        if (waitpid(child, &status, 0) != child) die("waitpid", -1);
        printf("client exit status %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
        return 0;
    }
    if (argc == 5 && strcmp(argv[1], "serve") == 0) {
        int n = atoi(argv[4]);
        raise_limit(n);
        struct sockaddr_in a = address(argv[2], argv[3]);
        int lfd = listener(&a);
        fprintf(stderr, "listening on port %d\n", ntohs(a.sin_port));
        serve(lfd, n);
        return 0;
    }
    if ((argc == 5 || (argc == 6 && strcmp(argv[5], "leave-open") == 0)) && strcmp(argv[1], "connect") == 0) {
        int n = atoi(argv[4]);
        raise_limit(n);
        struct sockaddr_in a = address(argv[2], argv[3]);
        client(&a, n, argc == 6);
        return 0;
    }
    fprintf(stderr, "usage: conn10k pair N | serve ADDR PORT N | connect ADDR PORT N [leave-open]\n");
    return 2;
}
