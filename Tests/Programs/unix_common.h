/* unix_common.h: helpers for the AF_UNIX differential programs: print a call's result
   as "label: ok" or "label: ERRNO" so native and junction runs compare line by line. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <poll.h>
#include <unistd.h>
#include <linux/sockios.h>

static void report(const char *label, long r) {
    if (r < 0) printf("%s: %s\n", label, strerrorname_np(errno));
    else printf("%s: %ld\n", label, r);
    fflush(stdout);
}
#define TRY(label, expr) report(label, (long)(expr))

static socklen_t path_address(struct sockaddr_un *a, const char *dir, const char *name) {
    memset(a, 0, sizeof *a);
    a->sun_family = AF_UNIX;
    snprintf(a->sun_path, sizeof a->sun_path, "%s/%s", dir, name);
    return offsetof(struct sockaddr_un, sun_path) + strlen(a->sun_path) + 1;
}

static socklen_t abstract_address(struct sockaddr_un *a, const char *name) {
    memset(a, 0, sizeof *a);
    a->sun_family = AF_UNIX;
    size_t n = strlen(name);
    memcpy(a->sun_path + 1, name, n);
    return offsetof(struct sockaddr_un, sun_path) + 1 + n;
}

static const char *poll_bits(int fd) {
    static char buf[64];
    struct pollfd p = { .fd = fd, .events = POLLIN | POLLOUT | POLLRDHUP };
    poll(&p, 1, 0);
    snprintf(buf, sizeof buf, "%s%s%s%s%s", p.revents & POLLIN ? "IN " : "", p.revents & POLLOUT ? "OUT " : "",
             p.revents & POLLHUP ? "HUP " : "", p.revents & POLLERR ? "ERR " : "", p.revents & POLLRDHUP ? "RDHUP" : "");
    return buf;
}
