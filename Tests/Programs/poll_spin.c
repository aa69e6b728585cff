// poll_spin.c: a TCP exchange over 127.0.0.1 driven only by zero-timeout poll and select
// (a program that never blocks: it spins until each step is ready). Under junction --net
// the in-stack loopback is served by the kthread's poll hooks; a program that never parks
// must still see its connection progress (the hooks run from poll and select too).
// Prints the same lines natively and under junction; "gave up" if a step never completes.
// `poll_spin serve PORT`: accepts one connection on PORT (any address) and answers its
// "ping" with "pong", spinning the same way (frames from a device, not the loopback).
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <stdlib.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <unistd.h>

#define SPINS 20000000L

static int spin_poll(int fd, short events) {
    for (long i = 0; i < SPINS; i++) {
        struct pollfd p = { .fd = fd, .events = events };
        int n = poll(&p, 1, 0);
        if (n < 0) return -1;
        if (n == 1 && (p.revents & events)) return 0;
    }
    return -1;
}

static int spin_select(int fd, int write) {
    for (long i = 0; i < SPINS; i++) {
        fd_set s;
        FD_ZERO(&s);
        FD_SET(fd, &s);
        struct timeval tv = { 0, 0 };
        int n = write ? select(fd + 1, NULL, &s, NULL, &tv) : select(fd + 1, &s, NULL, NULL, &tv);
        if (n < 0) return -1;
        if (n == 1) return 0;
    }
    return -1;
}

static int round_trip(const char *how, int use_select) {
    int l = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof a;
    if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof a) < 0 || listen(l, 4) < 0 ||
        getsockname(l, (struct sockaddr *)&a, &len) < 0) { printf("%s: setup failed\n", how); return 1; }
    int c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int r = connect(c, (struct sockaddr *)&a, sizeof a);
    int connect_errno = errno;
    if (r < 0 && connect_errno != EINPROGRESS) { printf("%s: connect failed\n", how); return 1; }
    // Accept, finish the connect, send, receive the echo: every step by spinning.
    if ((use_select ? spin_select(l, 0) : spin_poll(l, POLLIN)) < 0) { printf("%s: gave up on accept\n", how); return 1; }
    int s = accept4(l, NULL, NULL, SOCK_NONBLOCK);
    if (s < 0) { printf("%s: accept failed\n", how); return 1; }
    if ((use_select ? spin_select(c, 1) : spin_poll(c, POLLOUT)) < 0) { printf("%s: gave up on connect\n", how); return 1; }
    if (write(c, "ping", 4) != 4) { printf("%s: write failed\n", how); return 1; }
    if ((use_select ? spin_select(s, 0) : spin_poll(s, POLLIN)) < 0) { printf("%s: gave up on the request\n", how); return 1; }
    char buf[16] = {0};
    ssize_t n = read(s, buf, sizeof buf - 1);
    if (n != 4 || write(s, "pong", 4) != 4) { printf("%s: server side failed\n", how); return 1; }
    if ((use_select ? spin_select(c, 0) : spin_poll(c, POLLIN)) < 0) { printf("%s: gave up on the answer\n", how); return 1; }
    memset(buf, 0, sizeof buf);
    n = read(c, buf, sizeof buf - 1);
    printf("%s: %s\n", how, n == 4 ? buf : "short answer");
    close(c); close(s); close(l);
    return 0;
}

static int serve(int port) {
    int l = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int one = 1;
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
    if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof a) < 0 || listen(l, 4) < 0) { printf("serve: setup failed\n"); return 1; }
    printf("listening\n");
    if (spin_poll(l, POLLIN) < 0) { printf("serve: gave up on accept\n"); return 1; }
    int s = accept4(l, NULL, NULL, SOCK_NONBLOCK);
    char buf[16] = {0};
    if (s < 0 || spin_select(s, 0) < 0) { printf("serve: gave up on the request\n"); return 1; }
    ssize_t n = read(s, buf, sizeof buf - 1);
    if (n != 4 || write(s, "pong", 4) != 4) { printf("serve: failed\n"); return 1; }
    printf("served %s\n", buf);
    close(s); close(l);
    return 0;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc == 3 && strcmp(argv[1], "serve") == 0) return serve(atoi(argv[2]));
    int bad = round_trip("poll", 0);
    bad |= round_trip("select", 1);
    return bad;
}
