// epoll_levels.c: what epoll_wait reports for TCP sockets on 127.0.0.1 as readiness comes
// and goes: a level-triggered listener and connection stay reported while ready and stop
// when drained, edge-triggered ones once per change, EPOLLONESHOT once until
// EPOLL_CTL_MOD, maxevents 1 goes round every ready descriptor (none is starved), a closed
// descriptor's registration ends, and a parked wait returns when data arrives. Run
// natively and under junction (NetStack's ready list), the output must be the same.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define T(x) do { if ((x) < 0) { perror(#x); exit(1); } } while (0)

static struct sockaddr_in addr;

static int listener(void) {
    int l = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    T(setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one));
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    T(bind(l, (struct sockaddr *)&addr, sizeof addr));
    socklen_t len = sizeof addr;
    T(getsockname(l, (struct sockaddr *)&addr, &len));
    T(listen(l, 16));
    return l;
}

static int dial(void) {
    int c = socket(AF_INET, SOCK_STREAM, 0);
    T(connect(c, (struct sockaddr *)&addr, sizeof addr));
    int one = 1;
    T(setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one));
    return c;
}

/// Waits (up to 10 s) until `fd` has `n` bytes to read, so the tests below never depend
/// on how fast loopback delivers.
static void arrived(int fd, int n) {
    char buf[64];
    for (int i = 0; i < 10000; i++) {
        if (recv(fd, buf, sizeof buf, MSG_PEEK | MSG_DONTWAIT) >= n) return;
        usleep(1000);
    }
    puts("data never arrived");
    exit(1);
}

/// What one epoll_wait(timeout 0) reports: "name:events" for each descriptor.
static void show(const char *what, int ep, int max) {
    struct epoll_event ev[16];
    int n = epoll_wait(ep, ev, max, 0);
    // In name order: the order of a wait's events is not part of the contract.
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && strcmp(ev[j - 1].data.ptr, ev[j].data.ptr) > 0; j--) {
            struct epoll_event t = ev[j]; ev[j] = ev[j - 1]; ev[j - 1] = t;
        }
    printf("%s: %d", what, n);
    for (int i = 0; i < n; i++) printf(" %s:%#x", (char *)ev[i].data.ptr, ev[i].events);
    printf("\n");
}

static void add(int ep, int fd, unsigned events, const char *name) {
    struct epoll_event ev = { .events = events, .data.ptr = (void *)name };
    T(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev));
}

static int writer_fd;
static void *late_writer(void *arg) {
    (void)arg;
    usleep(20000);   // not synchronization: the wait returns whichever comes first
    T(write(writer_fd, "late", 4));
    return NULL;
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    char buf[64];

    puts("-- level-triggered listener");
    int l = listener();
    int ep = epoll_create1(0);
    add(ep, l, EPOLLIN, "listener");
    show("nothing pending", ep, 16);
    int c1 = dial(), c2 = dial();
    // Both handshakes are done once both accepts could run; wait until the second is queued.
    struct epoll_event got;
    T(epoll_wait(ep, &got, 1, 10000));
    show("two pending", ep, 16);
    int s1 = accept(l, NULL, NULL);
    for (int i = 0; i < 10000; i++) {
        // The second connection may still be in its handshake: poll until it is queued.
        struct epoll_event e;
        if (epoll_wait(ep, &e, 1, 0) == 1) break;
        usleep(1000);
    }
    show("one left", ep, 16);
    int s2 = accept(l, NULL, NULL);
    show("none left", ep, 16);

    puts("-- level-triggered connection");
    int ep2 = epoll_create1(0);
    add(ep2, s1, EPOLLIN | EPOLLRDHUP, "s1");
    show("no data", ep2, 16);
    T(write(c1, "0123456789", 10));
    arrived(s1, 10);
    show("ten bytes", ep2, 16);
    T(read(s1, buf, 4));
    show("six left", ep2, 16);
    show("six left, again", ep2, 16);
    T(read(s1, buf, 6));
    show("drained", ep2, 16);

    puts("-- edge-triggered connection");
    int ep3 = epoll_create1(0);
    add(ep3, s2, EPOLLIN | EPOLLET, "s2");
    show("registered (an edge: Linux checks at ADD)", ep3, 16);
    T(write(c2, "ab", 2));
    arrived(s2, 2);
    show("data", ep3, 16);
    show("same data, no new edge", ep3, 16);
    T(write(c2, "cd", 2));
    arrived(s2, 4);
    show("more data", ep3, 16);
    T(read(s2, buf, sizeof buf));
    show("drained", ep3, 16);

    puts("-- oneshot");
    int ep4 = epoll_create1(0);
    add(ep4, c1, EPOLLOUT | EPOLLONESHOT, "c1");
    show("writable", ep4, 16);
    show("disabled", ep4, 16);
    struct epoll_event mod = { .events = EPOLLOUT | EPOLLONESHOT, .data.ptr = "c1" };
    T(epoll_ctl(ep4, EPOLL_CTL_MOD, c1, &mod));
    show("re-armed", ep4, 16);

    puts("-- maxevents 1 goes round");
    int ep5 = epoll_create1(0);
    static const char *names[] = { "a", "b", "c" };
    int fds[3] = { c1, c2, s1 };
    for (int i = 0; i < 3; i++) add(ep5, fds[i], EPOLLOUT, names[i]);
    int seen[3] = { 0, 0, 0 };
    for (int round = 0; round < 3; round++) {
        struct epoll_event e;
        if (epoll_wait(ep5, &e, 1, 0) != 1) { puts("nothing ready"); continue; }
        for (int i = 0; i < 3; i++) if (strcmp(e.data.ptr, names[i]) == 0) seen[i]++;
    }
    printf("three waits of one event saw a %d, b %d, c %d\n", seen[0], seen[1], seen[2]);

    puts("-- a closed descriptor's registration ends");
    int c3 = dial();
    int s3 = accept(l, NULL, NULL);
    int ep6 = epoll_create1(0);
    add(ep6, s3, EPOLLIN, "s3");
    add(ep6, c2, EPOLLOUT, "c2");
    T(write(c3, "x", 1));
    arrived(s3, 1);
    show("both", ep6, 16);
    close(s3);
    show("s3 closed", ep6, 16);
    close(c3);

    puts("-- a parked wait returns when data arrives");
    int ep7 = epoll_create1(0);
    add(ep7, s2, EPOLLIN, "s2");
    writer_fd = c2;
    pthread_t t;
    pthread_create(&t, NULL, late_writer, NULL);
    int n = epoll_wait(ep7, &got, 1, 10000);
    printf("woke: %d %s:%#x\n", n, n == 1 ? (char *)got.data.ptr : "-", n == 1 ? got.events : 0);
    pthread_join(t, NULL);

    puts("-- peer closes");
    close(c1);
    for (int i = 0; i < 10000; i++) {
        if (recv(s1, buf, 1, MSG_PEEK | MSG_DONTWAIT) == 0) break;
        usleep(1000);
    }
    show("hung up", ep2, 16);
    show("hung up, again", ep2, 16);
    puts("done");
    return 0;
}
