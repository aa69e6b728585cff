// host.c: small host helpers for NICQueues: TAP, interface queries, AF_PACKET, unix
// sockets with descriptor passing, eventfd, the per-thread cache ordinal.
#include "cnicqueues.h"
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>
#include <net/if.h>
#include <linux/if_tun.h>
#include <linux/virtio_net.h>
#include <linux/if_packet.h>
#include <linux/if_ether.h>
#include <arpa/inet.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <poll.h>
#include <netinet/in.h>

static int next_ordinal;
static __thread int my_ordinal = -1;

int cnq_thread_ordinal(void) {
    if (my_ordinal < 0) my_ordinal = __atomic_fetch_add(&next_ordinal, 1, __ATOMIC_RELAXED);
    return my_ordinal;
}

int cnq_eventfd(void) {
    int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

_Static_assert(sizeof(struct virtio_net_hdr) == CNQ_VNET_HDR_LEN, "virtio_net_hdr is 10 bytes");
_Static_assert(CNQ_TUN_F_CSUM == TUN_F_CSUM && CNQ_TUN_F_TSO4 == TUN_F_TSO4 && CNQ_TUN_F_TSO6 == TUN_F_TSO6, "TUN_F_*");

int cnq_tap_open(char *name, bool multiQueue, bool vnetHeader) {
    if (strlen(name) >= IFNAMSIZ) return -ENAMETOOLONG;
    int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return -errno;
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI | (multiQueue ? IFF_MULTI_QUEUE : 0) | (vnetHeader ? IFF_VNET_HDR : 0);
    strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
    if (ioctl(fd, TUNSETIFF, &ifr) < 0) { int e = errno; close(fd); return -e; }
    memcpy(name, ifr.ifr_name, IFNAMSIZ);
    if (vnetHeader) {
        int size = CNQ_VNET_HDR_LEN;
        if (ioctl(fd, TUNSETVNETHDRSZ, &size) < 0) { int e = errno; close(fd); return -e; }
    }
    return fd;
}

int cnq_tap_set_offload(int fd, unsigned flags) {
    return ioctl(fd, TUNSETOFFLOAD, (unsigned long)flags) < 0 ? -errno : 0;
}

static int ifreq_call(const char *name, unsigned long req, struct ifreq *ifr) {
    if (strlen(name) >= IFNAMSIZ) return -ENAMETOOLONG;
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) return -errno;
    memset(ifr, 0, sizeof *ifr);
    strncpy(ifr->ifr_name, name, IFNAMSIZ - 1);
    int r = ioctl(s, req, ifr) < 0 ? -errno : 0;
    close(s);
    return r;
}

int cnq_if_hwaddr(const char *name, uint8_t mac[6]) {
    struct ifreq ifr;
    int r = ifreq_call(name, SIOCGIFHWADDR, &ifr);
    if (r == 0) memcpy(mac, ifr.ifr_hwaddr.sa_data, 6);
    return r;
}

int cnq_if_mtu(const char *name) {
    struct ifreq ifr;
    int r = ifreq_call(name, SIOCGIFMTU, &ifr);
    return r < 0 ? r : ifr.ifr_mtu;
}

int cnq_if_index(const char *name) {
    if (strlen(name) >= IFNAMSIZ) return -ENAMETOOLONG;
    unsigned i = if_nametoindex(name);
    return i == 0 ? -errno : (int)i;
}

int cnq_packet_socket(int ifindex, bool receive) {
    int s = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, receive ? htons(ETH_P_ALL) : 0);
    if (s < 0) return -errno;
    struct sockaddr_ll sll;
    memset(&sll, 0, sizeof sll);
    sll.sll_family = AF_PACKET;
    sll.sll_protocol = receive ? htons(ETH_P_ALL) : 0;
    sll.sll_ifindex = ifindex;
    if (bind(s, (struct sockaddr *)&sll, sizeof sll) < 0) { int e = errno; close(s); return -e; }
    return s;
}

int cnq_send_fds(int sock, const int *fds, int nfds, const void *bytes, size_t len) {
    char control[CMSG_SPACE(sizeof(int) * 8)];
    if (nfds > 8) return -EINVAL;
    struct iovec iov = { .iov_base = (void *)bytes, .iov_len = len };
    struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
    memset(control, 0, sizeof control);
    if (nfds > 0) {
        m.msg_control = control;
        m.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
        struct cmsghdr *c = CMSG_FIRSTHDR(&m);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
        memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
    }
    ssize_t r;
    do { r = sendmsg(sock, &m, MSG_NOSIGNAL); } while (r < 0 && errno == EINTR);
    return r < 0 ? -errno : (int)r;
}

int cnq_recv_fds(int sock, int *fds, int maxfds, int *nfds, void *bytes, size_t len) {
    char control[CMSG_SPACE(sizeof(int) * 8)];
    struct iovec iov = { .iov_base = bytes, .iov_len = len };
    struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof control };
    ssize_t r;
    do { r = recvmsg(sock, &m, MSG_CMSG_CLOEXEC); } while (r < 0 && errno == EINTR);
    if (r < 0) return -errno;
    *nfds = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
        int n = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
        int *in = (int *)CMSG_DATA(c);
        for (int i = 0; i < n; i++) {
            if (*nfds < maxfds) fds[(*nfds)++] = in[i]; else close(in[i]);
        }
    }
    return (int)r;
}

static socklen_t abstract_address(const char *name, struct sockaddr_un *a) {
    memset(a, 0, sizeof *a);
    a->sun_family = AF_UNIX;
    size_t n = strlen(name);
    if (n > sizeof a->sun_path - 2) n = sizeof a->sun_path - 2;
    memcpy(a->sun_path + 1, name, n);   // sun_path[0] = 0: the abstract namespace
    return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n);
}

int cnq_unix_listen(const char *name) {
    struct sockaddr_un a;
    socklen_t len = abstract_address(name, &a);
    int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (s < 0) return -errno;
    if (bind(s, (struct sockaddr *)&a, len) < 0 || listen(s, 1) < 0) { int e = errno; close(s); return -e; }
    return s;
}

int cnq_unix_connect(const char *name) {
    struct sockaddr_un a;
    socklen_t len = abstract_address(name, &a);
    int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (s < 0) return -errno;
    int r;
    do { r = connect(s, (struct sockaddr *)&a, len); } while (r < 0 && errno == EINTR);
    if (r < 0) { int e = errno; close(s); return -e; }
    return s;
}

int cnq_accept(int listen_fd) {
    int r;
    do { r = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC); } while (r < 0 && errno == EINTR);
    return r < 0 ? -errno : r;
}

bool cnq_peer_hung_up(int sock) {
    struct pollfd p = { .fd = sock, .events = POLLIN | POLLRDHUP };
    if (poll(&p, 1, 0) <= 0) return false;
    if (p.revents & (POLLHUP | POLLRDHUP | POLLERR)) return true;
    char byte;
    return recv(sock, &byte, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
}

enum { MMSG_MAX = 64 };

int cnq_send_batch(int fd, const uint8_t *base, size_t stride, const uint32_t *lens, unsigned n) {
    struct mmsghdr m[MMSG_MAX];
    struct iovec iov[MMSG_MAX];
    if (n > MMSG_MAX) n = MMSG_MAX;
    memset(m, 0, sizeof(struct mmsghdr) * n);
    for (unsigned i = 0; i < n; i++) {
        iov[i].iov_base = (void *)(base + i * stride);
        iov[i].iov_len = lens[i];
        m[i].msg_hdr.msg_iov = &iov[i];
        m[i].msg_hdr.msg_iovlen = 1;
    }
    int r = sendmmsg(fd, m, n, MSG_DONTWAIT);
    return r < 0 ? -errno : r;
}

int cnq_recv_batch(int fd, uint8_t *base, size_t stride, size_t cap, uint32_t *lens, unsigned n) {
    struct mmsghdr m[MMSG_MAX];
    struct iovec iov[MMSG_MAX];
    if (n > MMSG_MAX) n = MMSG_MAX;
    memset(m, 0, sizeof(struct mmsghdr) * n);
    for (unsigned i = 0; i < n; i++) {
        iov[i].iov_base = base + i * stride;
        iov[i].iov_len = cap;
        m[i].msg_hdr.msg_iov = &iov[i];
        m[i].msg_hdr.msg_iovlen = 1;
    }
    int r = recvmmsg(fd, m, n, MSG_DONTWAIT, NULL);
    if (r < 0) return -errno;
    for (int i = 0; i < r; i++) lens[i] = m[i].msg_len;
    return r;
}

int cnq_udp_pair(int fds[2]) {
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof a;
    int rx = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int tx = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (rx < 0 || tx < 0) goto fail;
    int big = 8 << 20;
    setsockopt(rx, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    if (bind(rx, (struct sockaddr *)&a, sizeof a) < 0 || getsockname(rx, (struct sockaddr *)&a, &len) < 0) goto fail;
    if (connect(tx, (struct sockaddr *)&a, sizeof a) < 0) goto fail;
    fds[0] = tx;
    fds[1] = rx;
    return 0;
fail:;
    int e = errno;
    if (rx >= 0) close(rx);
    if (tx >= 0) close(tx);
    return -e;
}
