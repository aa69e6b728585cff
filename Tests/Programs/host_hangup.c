// host_hangup.c: poll and epoll on standard streams that are host pipes (issue 21): a
// pipe whose writers are gone reports POLLHUP/EPOLLHUP even to a poll for no events,
// a wait on a pipe with nothing in it yet ends when data or the hang-up comes, and the
// write end a reader still holds is writable. Run with stdin a pipe the writer fills
// and closes, and stdout a pipe; the output must match Linux's.
#define _GNU_SOURCE
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

static void show_poll(const char *what, int fd, short events, int timeout) {
    struct pollfd p = { .fd = fd, .events = events };
    int n = poll(&p, 1, timeout);
    printf("%s: poll = %d revents = %#x\n", what, n, (unsigned)(unsigned short)p.revents);
}

static void show_epoll(const char *what, int fd, unsigned events) {
    int ep = epoll_create1(0);
    struct epoll_event ev = { .events = events, .data.u64 = 7 }, got;
    memset(&got, 0, sizeof got);
    int rc = epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    int n = epoll_wait(ep, &got, 1, 0);
    printf("%s: ctl = %d epoll_wait = %d events = %#x\n", what, rc, n, n > 0 ? got.events : 0);
    close(ep);
}

int main(void) {
    // Waits (the writer may not have written yet): ends with data or the hang-up.
    struct pollfd p = { .fd = 0, .events = POLLIN };
    int n = poll(&p, 1, -1);
    printf("first wait: poll = %d readable %s\n", n, p.revents & POLLIN ? "yes" : "no");
    char buf[64];
    long total = 0, r;
    while ((r = read(0, buf, sizeof buf)) > 0) total += r;
    printf("read %ld bytes, then %ld\n", total, r);
    // End of file: every writer is gone.
    show_poll("stdin, no events", 0, 0, 0);
    show_poll("stdin, POLLIN", 0, POLLIN, -1);
    show_poll("stdin, POLLOUT", 0, POLLOUT, 0);
    show_epoll("stdin epoll, no events", 0, 0);
    show_epoll("stdin epoll, EPOLLIN", 0, EPOLLIN);
    fflush(stdout);
    show_poll("stdout, POLLOUT", 1, POLLOUT, 0);
    show_poll("stdout, no events", 1, 0, 0);
    return 0;
}
