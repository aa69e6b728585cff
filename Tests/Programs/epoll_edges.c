// epoll_edges.c: edge-triggered epoll on a connected loopback TCP pair, as CPython's
// test_epoll test_control_and_wait does: the first wait reports EPOLLOUT for both; then
// nothing; after a send each way, one wait reports EPOLLIN|EPOLLOUT for both (the data's
// arrival is an edge, and an edge reports all that is ready); EPOLL_CTL_MOD re-arms.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

static void show(const char *what, int epfd, int timeout, int client, int server) {
    struct epoll_event ev[4];
    int n = epoll_wait(epfd, ev, 4, timeout);
    // Sorted by descriptor, as the Python test sorts them.
    int order[4] = {0, 1, 2, 3};
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++)
            if (ev[order[j]].data.fd < ev[order[i]].data.fd) { int t = order[i]; order[i] = order[j]; order[j] = t; }
    printf("%s: %d", what, n);
    for (int i = 0; i < n; i++) {
        struct epoll_event *e = &ev[order[i]];
        printf(" %s=%s%s%s", e->data.fd == client ? "client" : e->data.fd == server ? "server" : "?",
               e->events & EPOLLIN ? "IN" : "", e->events & EPOLLOUT ? "OUT" : "",
               e->events & ~(EPOLLIN | EPOLLOUT) ? "+other" : "");
    }
    printf("\n");
}

static void add(int epfd, int op, int fd, unsigned events) {
    struct epoll_event ev = { .events = events, .data.fd = fd };
    if (epoll_ctl(epfd, op, fd, &ev) != 0) perror("epoll_ctl");
}

int main(void) {
    int listener = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof a;
    if (bind(listener, (struct sockaddr *)&a, sizeof a) || listen(listener, 1) || getsockname(listener, (struct sockaddr *)&a, &len)) {
        perror("listen");
        return 1;
    }
    int client = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(client, (struct sockaddr *)&a, sizeof a)) { perror("connect"); return 1; }
    int server = accept(listener, NULL, NULL);
    int epfd = epoll_create1(0);
    add(epfd, EPOLL_CTL_ADD, server, EPOLLIN | EPOLLOUT | EPOLLET);
    add(epfd, EPOLL_CTL_ADD, client, EPOLLIN | EPOLLOUT | EPOLLET);
    show("first wait", epfd, 1000, client, server);
    show("again, no new edge", epfd, 100, client, server);
    if (send(client, "Hello!", 6, 0) != 6 || send(server, "world!!!", 8, 0) != 8) return 1;
    show("after a send each way", epfd, 1000, client, server);
    show("again, no new edge", epfd, 100, client, server);
    epoll_ctl(epfd, EPOLL_CTL_DEL, client, NULL);
    add(epfd, EPOLL_CTL_MOD, server, EPOLLOUT);
    show("server re-armed, level-triggered EPOLLOUT", epfd, 1000, client, server);
    add(epfd, EPOLL_CTL_MOD, server, EPOLLOUT | EPOLLET);
    show("server re-armed edge-triggered", epfd, 1000, client, server);
    show("again, no new edge", epfd, 100, client, server);
    char buf[16];
    if (recv(client, buf, sizeof buf, 0) != 8) return 1;
    // The server's own edges from here (the acknowledgement of what it sends) are timing.
    epoll_ctl(epfd, EPOLL_CTL_DEL, server, NULL);
    add(epfd, EPOLL_CTL_ADD, client, EPOLLIN | EPOLLET);
    show("client added for EPOLLIN, nothing to read", epfd, 100, client, server);
    if (send(server, "more", 4, 0) != 4) return 1;
    show("more data for the client", epfd, 1000, client, server);
    return 0;
}
