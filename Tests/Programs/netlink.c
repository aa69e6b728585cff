// netlink.c: NETLINK_ROUTE as glibc and iproute2 use it. `netlink proto` prints what a
// netlink socket does that is the same on every machine (errnos, port ids, acks, dump
// framing, lo at index 1): its output is compared with the native run. `netlink addrs`
// prints getifaddrs() and if_nameindex(): compared with the instance's own interfaces.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netpacket/packet.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#define CHECK(expr) do { errno = 0; long r_ = (long)(expr); printf("%-60s = %ld%s%s\n", #expr, r_ < 0 ? -1L : r_ > 0 ? 1L : 0L, r_ < 0 ? " " : "", r_ < 0 ? strerrorname_np(errno) : ""); } while (0)

static unsigned seq = 100;

static int request(int fd, unsigned short type, unsigned short flags, const void *body, size_t len) {
    char buf[256] = {0};
    struct nlmsghdr *h = (struct nlmsghdr *)buf;
    h->nlmsg_len = NLMSG_LENGTH(len);
    h->nlmsg_type = type;
    h->nlmsg_flags = flags;
    h->nlmsg_seq = ++seq;
    memcpy(NLMSG_DATA(h), body, len);
    struct sockaddr_nl k = {.nl_family = AF_NETLINK};
    return sendto(fd, buf, h->nlmsg_len, 0, (struct sockaddr *)&k, sizeof k) == (ssize_t)h->nlmsg_len ? 0 : -1;
}

static unsigned portid(int fd) {
    struct sockaddr_nl a;
    socklen_t n = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &n);
    return a.nl_pid;
}

// Reads replies to the last request until NLMSG_DONE or an NLMSG_ERROR; prints a summary.
static void replies(int fd, const char *what) {
    char buf[32768];
    int links = 0, addrs = 0, done = 0, datagrams = 0, lo = 0, wrong = 0;
    while (!done && datagrams < 50) {
        struct sockaddr_nl from;
        struct iovec iov = {buf, sizeof buf};
        struct msghdr m = {.msg_name = &from, .msg_namelen = sizeof from, .msg_iov = &iov, .msg_iovlen = 1};
        ssize_t n = recvmsg(fd, &m, 0);
        if (n < 0) { printf("%s: recvmsg %s\n", what, strerrorname_np(errno)); return; }
        datagrams++;
        if (from.nl_pid != 0 || m.msg_namelen != sizeof from || (m.msg_flags & MSG_TRUNC)) wrong++;
        for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, n); h = NLMSG_NEXT(h, n)) {
            if (h->nlmsg_seq != seq || h->nlmsg_pid != portid(fd)) wrong++;
            if (h->nlmsg_type == NLMSG_DONE) { done = 1; if (!(h->nlmsg_flags & NLM_F_MULTI)) wrong++; }
            else if (h->nlmsg_type == NLMSG_ERROR) {
                struct nlmsgerr *e = NLMSG_DATA(h);
                printf("%s: error %s capped %d len %u orig seq ok %d\n", what, e->error ? strerrorname_np(-e->error) : "0",
                       !!(h->nlmsg_flags & NLM_F_CAPPED), h->nlmsg_len, e->msg.nlmsg_seq == seq);
                done = 1;
            } else if (h->nlmsg_type == RTM_NEWLINK) {
                struct ifinfomsg *i = NLMSG_DATA(h);
                links++;
                int left = IFLA_PAYLOAD(h);
                for (struct rtattr *a = IFLA_RTA(i); RTA_OK(a, left); a = RTA_NEXT(a, left))
                    if (a->rta_type == IFLA_IFNAME && i->ifi_index == 1 && !strcmp(RTA_DATA(a), "lo")) lo++;
                if (!(h->nlmsg_flags & NLM_F_MULTI)) done = 1, printf("%s: single link %d up %d loopback %d\n", what,
                    i->ifi_index, !!(i->ifi_flags & IFF_UP), !!(i->ifi_flags & IFF_LOOPBACK));
            } else if (h->nlmsg_type == RTM_NEWADDR) {
                struct ifaddrmsg *a = NLMSG_DATA(h);
                addrs++;
                int left = IFA_PAYLOAD(h);
                for (struct rtattr *t = IFA_RTA(a); RTA_OK(t, left); t = RTA_NEXT(t, left))
                    if (t->rta_type == IFA_LOCAL && a->ifa_family == AF_INET && *(uint32_t *)RTA_DATA(t) == htonl(INADDR_LOOPBACK))
                        printf("%s: 127.0.0.1/%d index %d scope %d\n", what, a->ifa_prefixlen, a->ifa_index, a->ifa_scope);
            }
        }
    }
    printf("%s: links>0 %d addrs>0 %d lo %d done %d wrong %d\n", what, links > 0, addrs > 0, lo, done, wrong);
}

static void proto(void) {
    CHECK(socket(AF_NETLINK, SOCK_STREAM, NETLINK_ROUTE));
    CHECK(socket(AF_NETLINK, SOCK_SEQPACKET, NETLINK_ROUTE));
    CHECK(socket(AF_NETLINK, SOCK_RAW, 32));
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    printf("socket ok %d\n", fd >= 0);
    struct sockaddr_nl a = {.nl_family = AF_NETLINK};
    socklen_t n = sizeof a;
    CHECK(getsockname(fd, (struct sockaddr *)&a, &n));
    printf("unbound: len %u family %d pid %u\n", n, a.nl_family, a.nl_pid);
    CHECK(bind(fd, (struct sockaddr *)&a, 8));
    struct sockaddr_in in = {.sin_family = AF_INET};
    CHECK(bind(fd, (struct sockaddr *)&in, sizeof in));
    CHECK(bind(fd, (struct sockaddr *)&a, sizeof a));
    printf("bound pid is getpid %d\n", portid(fd) == (unsigned)getpid());
    a.nl_pid = 12345;
    CHECK(bind(fd, (struct sockaddr *)&a, sizeof a));
    n = sizeof a;
    CHECK(getpeername(fd, (struct sockaddr *)&a, &n));
    printf("peer: len %u pid %u groups %u\n", n, a.nl_pid, a.nl_groups);
    CHECK(listen(fd, 1));
    CHECK(shutdown(fd, SHUT_RDWR));
    int v = 0;
    CHECK(ioctl(fd, FIONREAD, &v));

    int fd2 = socket(AF_NETLINK, SOCK_DGRAM, NETLINK_ROUTE);
    struct rtgenmsg g = {.rtgen_family = AF_UNSPEC};
    CHECK(request(fd2, RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, &g, sizeof g));
    printf("autobound pid negative %d\n", (int)portid(fd2) < 0);
    struct pollfd p = {fd2, POLLIN, 0};
    CHECK(poll(&p, 1, 5000));
    printf("revents %#x\n", p.revents);
    char small[8];
    struct iovec iov = {small, sizeof small};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
    ssize_t r = recvmsg(fd2, &m, MSG_PEEK | MSG_TRUNC);
    printf("peek trunc: bigger %d flag %d\n", r > 8, !!(m.msg_flags & MSG_TRUNC));
    replies(fd2, "getlink dump");

    struct ifaddrmsg ia = {.ifa_family = AF_INET};
    CHECK(request(fd, RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP, &ia, sizeof ia));
    replies(fd, "getaddr dump");

    struct ifinfomsg ii = {.ifi_family = AF_UNSPEC, .ifi_index = 1};
    CHECK(request(fd, RTM_GETLINK, NLM_F_REQUEST, &ii, sizeof ii));
    replies(fd, "getlink 1");
    struct { struct ifinfomsg i; struct rtattr a; char name[8]; } byname = {
        .i = {.ifi_family = AF_UNSPEC}, .a = {.rta_len = RTA_LENGTH(8), .rta_type = IFLA_IFNAME}, .name = "nosuch0"};
    CHECK(request(fd, RTM_GETLINK, NLM_F_REQUEST, &byname, sizeof byname));
    replies(fd, "getlink nosuch0");
    memcpy(byname.name, "lo", 3);
    CHECK(request(fd, RTM_GETLINK, NLM_F_REQUEST | NLM_F_ACK, &byname, sizeof byname));
    replies(fd, "getlink lo");
    replies(fd, "getlink lo ack");

    CHECK(request(fd, 0x3ff, NLM_F_REQUEST | NLM_F_ACK, &g, sizeof g));
    replies(fd, "type 0x3ff");
    CHECK(request(fd, NLMSG_NOOP, NLM_F_REQUEST | NLM_F_ACK, &g, sizeof g));
    replies(fd, "noop ack");
    CHECK(request(fd, RTM_GETLINK, NLM_F_DUMP, &g, sizeof g));
    CHECK(recv(fd, small, sizeof small, MSG_DONTWAIT));
    setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &(int){1}, sizeof(int));
    CHECK(request(fd, 0x3ff, NLM_F_REQUEST, &g, sizeof g));
    replies(fd, "capped 0x3ff");

    v = 7;
    n = sizeof v;
    CHECK(getsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &v, &n));
    printf("ext ack %d len %u\n", v, n);
    CHECK(setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &(int){1}, sizeof(int)));
    CHECK(getsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &v, &n));
    printf("ext ack %d\n", v);
    CHECK(setsockopt(fd, SOL_NETLINK, 99, &(int){1}, sizeof(int)));
    CHECK(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &(int){32768}, sizeof(int)));
    CHECK(getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, &n));
    printf("rcvbuf %d\n", v);
    struct sockaddr_nl other = {.nl_family = AF_NETLINK, .nl_pid = 0x7ffffff0};
    CHECK(sendto(fd, &g, sizeof g, 0, (struct sockaddr *)&other, sizeof other));
    CHECK(sendto(fd, &g, sizeof g, 0, (struct sockaddr *)&other, 4));
    struct sockaddr un = {.sa_family = AF_UNSPEC};
    CHECK(connect(fd, &un, sizeof un));
    close(fd);
    close(fd2);
}

static void addrs(void) {
    struct ifaddrs *list;
    if (getifaddrs(&list) != 0) { perror("getifaddrs"); exit(1); }
    for (struct ifaddrs *i = list; i; i = i->ifa_next) {
        if (!i->ifa_addr) continue;
        char a[64] = "", mask[64] = "", brd[64] = "";
        if (i->ifa_addr->sa_family == AF_INET) {
            inet_ntop(AF_INET, &((struct sockaddr_in *)i->ifa_addr)->sin_addr, a, sizeof a);
            inet_ntop(AF_INET, &((struct sockaddr_in *)i->ifa_netmask)->sin_addr, mask, sizeof mask);
            if (i->ifa_flags & IFF_BROADCAST && i->ifa_broadaddr)
                inet_ntop(AF_INET, &((struct sockaddr_in *)i->ifa_broadaddr)->sin_addr, brd, sizeof brd);
            printf("%s inet %s mask %s brd %s up %d loopback %d\n", i->ifa_name, a, mask, brd[0] ? brd : "-",
                   !!(i->ifa_flags & IFF_UP), !!(i->ifa_flags & IFF_LOOPBACK));
        } else if (i->ifa_addr->sa_family == AF_PACKET) {
            struct sockaddr_ll *l = (struct sockaddr_ll *)i->ifa_addr;
            printf("%s packet index %d halen %d\n", i->ifa_name, l->sll_ifindex, l->sll_halen);
        } else {
            printf("%s family %d\n", i->ifa_name, i->ifa_addr->sa_family);
        }
    }
    freeifaddrs(list);
    struct if_nameindex *ni = if_nameindex();
    for (struct if_nameindex *p = ni; p && p->if_index; p++) printf("if_nameindex %u %s\n", p->if_index, p->if_name);
    if_freenameindex(ni);
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc > 1 && !strcmp(argv[1], "addrs")) addrs(); else proto();
    return 0;
}
