// sockets.c: the socket calls on 127.0.0.1/::1 (ports from the kernel), natively and
// under junction: blocking and non-blocking + epoll, names, options, ioctls, messages
// with iovecs and control data, sendmmsg/recvmmsg, and Linux's errnos for bad input.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>
#include <linux/sockios.h>

static void show(const char *what, long r) {
    if (r < 0) printf("%-44s -1 %s\n", what, strerrorname_np(errno));
    else printf("%-44s %ld\n", what, r);
}
#define T(expr) show(#expr, (long)(expr))
#define BAD ((void *)8)

static struct sockaddr_in loopback(int port) {
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
}

static int port_of(int fd) {
    struct sockaddr_storage a; socklen_t l = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &l);
    return ntohs(((struct sockaddr_in *)&a)->sin_port);
}

static int listener(void) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = loopback(0);
    bind(s, (struct sockaddr *)&a, sizeof a);
    listen(s, 16);
    return s;
}

static int connected(int l) {
    int c = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = loopback(port_of(l));
    if (connect(c, (struct sockaddr *)&a, sizeof a) < 0) perror("connect");
    return c;
}

static void *echo_once(void *arg) {
    int l = (int)(long)arg;
    int c = accept(l, NULL, NULL);
    char buf[256]; long n;
    while ((n = read(c, buf, sizeof buf)) > 0) write(c, buf, n);
    close(c);
    return NULL;
}

static volatile int pipes;
static void on_pipe(int s) { (void)s; pipes++; }

static void errors(void) {
    puts("-- errors");
    T(socket(99, SOCK_STREAM, 0));
    T(socket(AF_INET, 12, 0));
    T(socket(AF_INET, SOCK_STREAM | 0x100, 0));
    T(socket(AF_INET, SOCK_STREAM, IPPROTO_UDP));
    T(socket(AF_INET, SOCK_SEQPACKET, 0));
    T(socketpair(AF_INET, SOCK_STREAM, 0, (int[2]){0}));
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = loopback(0);
    T(bind(s, (struct sockaddr *)&a, 3));
    T(bind(s, (struct sockaddr *)&a, 200));
    T(bind(s, BAD, sizeof a));
    T(bind(0, (struct sockaddr *)&a, sizeof a));
    T(bind(-1, (struct sockaddr *)&a, sizeof a));
    struct sockaddr_in far = loopback(0); far.sin_addr.s_addr = htonl(0x01020304);
    T(bind(s, (struct sockaddr *)&far, sizeof far));
    T(bind(s, (struct sockaddr *)&a, sizeof a));
    T(bind(s, (struct sockaddr *)&a, sizeof a));
    int t = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in same = loopback(port_of(s));
    T(bind(t, (struct sockaddr *)&same, sizeof same));
    T(accept(s, NULL, NULL));
    T(accept4(s, NULL, NULL, 0x1));
    T(getpeername(s, (struct sockaddr *)&a, &(socklen_t){sizeof a}));
    T(send(s, "x", 1, MSG_NOSIGNAL));
    T(recv(s, (char[4]){0}, 4, 0));
    T(shutdown(s, SHUT_RDWR));
    T(shutdown(s, 7));
    T(listen(s, 4));
    T(getsockname(s, BAD, &(socklen_t){16}));
    T(getsockname(s, (struct sockaddr *)&a, BAD));
    T(getsockname(s, (struct sockaddr *)&a, &(socklen_t){-1}));
    fcntl(s, F_SETFL, O_NONBLOCK);
    T(accept(s, (struct sockaddr *)&a, BAD));
    // Connection refused: a port that was just free.
    int gone = listener(); struct sockaddr_in ga = loopback(port_of(gone)); close(gone);
    T(connect(t, (struct sockaddr *)&ga, sizeof ga));
    T(connect(t, (struct sockaddr *)&ga, 1));
    T(connect(t, BAD, sizeof ga));
    int u = socket(AF_INET, SOCK_DGRAM, 0);
    T(sendto(u, "x", 1, 0, (struct sockaddr *)&ga, 4));
    T(sendto(u, BAD, 1, 0, (struct sockaddr *)&ga, sizeof ga));
    T(sendmsg(u, BAD, 0));
    struct msghdr m = { .msg_iov = BAD, .msg_iovlen = 1 };
    T(sendmsg(u, &m, 0));
    m.msg_iovlen = 2000;
    T(sendmsg(u, &m, 0));
    T(recvmsg(u, BAD, MSG_DONTWAIT));
    T(recv(u, (char[4]){0}, 4, MSG_DONTWAIT));
    int fd = open("/dev/null", O_RDONLY);
    T(send(fd, "x", 1, 0));
    T(setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &(int){1}, 4));
    close(fd); close(u); close(s); close(t);
}

static void options(void) {
    puts("-- options");
    int s = socket(AF_INET6, SOCK_STREAM, 0), v = 0;
    socklen_t l = sizeof v;
    T(getsockopt(s, SOL_SOCKET, SO_TYPE, &v, &l)); printf("type %d len %d\n", v, l);
    T(getsockopt(s, SOL_SOCKET, SO_DOMAIN, &v, &l)); printf("domain %d\n", v);
    T(getsockopt(s, SOL_SOCKET, SO_PROTOCOL, &v, &l)); printf("protocol %d\n", v);
    T(getsockopt(s, SOL_SOCKET, SO_ACCEPTCONN, &v, &l)); printf("acceptconn %d\n", v);
    l = 2; v = -1;
    T(getsockopt(s, SOL_SOCKET, SO_TYPE, &v, &l)); printf("short: len %d value %#x\n", l, v);
    l = -1;
    T(getsockopt(s, SOL_SOCKET, SO_TYPE, &v, &l));
    l = 4;
    T(getsockopt(s, SOL_SOCKET, 9999, &v, &l));
    T(getsockopt(s, 9999, 1, &v, &l));
    T(getsockopt(s, SOL_SOCKET, SO_TYPE, BAD, &l));
    T(setsockopt(s, SOL_SOCKET, SO_TYPE, &(int){1}, 4));
    T(setsockopt(s, SOL_SOCKET, 9999, &(int){1}, 4));
    T(setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &(int){1}, 2));
    T(setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &(int){1}, -1));
    T(setsockopt(s, SOL_SOCKET, SO_REUSEADDR, BAD, 4));
    T(setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &(int){1}, 4));
    T(setsockopt(s, SOL_SOCKET, SO_KEEPALIVE, &(int){1}, 4));
    T(setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &(int){1}, 4));
    T(setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &(int){0}, 4));
    l = 4; T(getsockopt(s, SOL_SOCKET, SO_REUSEADDR, &v, &l)); printf("reuseaddr %d\n", v);
    l = 4; T(getsockopt(s, IPPROTO_TCP, TCP_NODELAY, &v, &l)); printf("nodelay %d\n", v);
    struct linger lg = { 1, 5 }; T(setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof lg));
    l = sizeof lg; T(getsockopt(s, SOL_SOCKET, SO_LINGER, &lg, &l)); printf("linger %d %d\n", lg.l_onoff, lg.l_linger);
    struct timeval tv = { 0, 2000000 };
    T(setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv));
    T(setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, 8));
    tv = (struct timeval){ 2, 500000 };
    T(setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv));
    memset(&tv, 0, sizeof tv); l = sizeof tv;
    T(getsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, &l)); printf("sndtimeo %ld.%06ld len %d\n", (long)tv.tv_sec, (long)tv.tv_usec, l);
    l = sizeof tv; T(getsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, &l)); printf("rcvtimeo %ld.%06ld\n", (long)tv.tv_sec, (long)tv.tv_usec);
    close(s);
}

static void streams(void) {
    puts("-- streams");
    int l = listener();
    pthread_t th; pthread_create(&th, NULL, echo_once, (void *)(long)l);
    int c = connected(l);
    struct sockaddr_in a; socklen_t al = 4;
    T(getsockname(c, (struct sockaddr *)&a, &al)); printf("truncated name: len %d family %d\n", al, a.sin_family);
    al = sizeof a; T(getpeername(c, (struct sockaddr *)&a, &al)); printf("peer %s len %d\n", inet_ntoa(a.sin_addr), al);
    T(connect(c, (struct sockaddr *)&a, sizeof a));
    T(write(c, "hello", 5));
    char buf[64] = {0};
    T(recv(c, buf, 2, MSG_PEEK)); printf("peeked %.2s\n", buf);
    T(recv(c, buf, 5, MSG_WAITALL)); printf("got %.5s\n", buf);
    struct iovec iov[3] = { { "ab", 2 }, { "", 0 }, { "cdef", 4 } };
    T(writev(c, iov, 3));
    char x[3] = {0}, y[3] = {0};
    struct iovec in[2] = { { x, 3 }, { y, 3 } };
    T(readv(c, in, 2)); printf("readv %.3s %.3s\n", x, y);
    struct msghdr m = { .msg_iov = iov, .msg_iovlen = 3 };
    T(sendmsg(c, &m, 0));
    int n; T(recv(c, buf, 6, MSG_WAITALL));
    T(recv(c, buf, sizeof buf, MSG_DONTWAIT));
    T(ioctl(c, FIONREAD, &n)); printf("fionread %d\n", n);
    T(ioctl(c, SIOCOUTQ, &n));
    T(ioctl(c, FIONBIO, &(int){1}));
    T(fcntl(c, F_GETFL) & O_NONBLOCK);
    T(read(c, buf, sizeof buf));
    T(ioctl(c, FIONBIO, &(int){0}));
    T(ioctl(c, TCGETS, buf));
    struct stat st; T(fstat(c, &st)); printf("S_ISSOCK %d\n", S_ISSOCK(st.st_mode));
    T(shutdown(c, SHUT_WR));
    T(read(c, buf, sizeof buf));
    pthread_join(th, NULL);
    // The peer is gone: EPIPE with SIGPIPE, and without it under MSG_NOSIGNAL.
    signal(SIGPIPE, on_pipe);
    T(send(c, "z", 1, MSG_NOSIGNAL));
    T(write(c, "z", 1));
    printf("sigpipes %d\n", pipes);
    close(c);
    // accept4 flags, the peer's address.
    int d = connected(l);
    struct sockaddr_in p; socklen_t pl = sizeof p;
    int e = accept4(l, (struct sockaddr *)&p, &pl, SOCK_CLOEXEC | SOCK_NONBLOCK);
    printf("accept4: cloexec %d nonblock %d peer %s len %d\n", fcntl(e, F_GETFD) & FD_CLOEXEC, !!(fcntl(e, F_GETFL) & O_NONBLOCK),
           inet_ntoa(p.sin_addr), pl);
    T(recv(e, buf, 1, 0));
    struct timeval tv = { 0, 20000 };
    setsockopt(d, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    T(recv(d, buf, 1, 0));
    close(d); close(e);
    // A pending connection taken with a bad address length: EFAULT, and it is gone.
    d = connected(l);
    struct sockaddr_in q;
    T(accept(l, (struct sockaddr *)&q, BAD));
    close(d); close(l);
}

static void datagrams(void) {
    puts("-- datagrams");
    int u = socket(AF_INET, SOCK_DGRAM, 0), v = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = loopback(0);
    bind(u, (struct sockaddr *)&a, sizeof a);
    struct sockaddr_in to = loopback(port_of(u));
    T(setsockopt(u, IPPROTO_IP, IP_RECVTOS, &(int){1}, 4));
    T(setsockopt(v, IPPROTO_IP, IP_TOS, &(int){0x10}, 4));
    T(sendto(v, "datagram one", 12, 0, (struct sockaddr *)&to, sizeof to));
    char buf[64] = {0}, ctl[64];
    struct sockaddr_in from; socklen_t fl = sizeof from;
    int n; T(ioctl(u, FIONREAD, &n)); printf("next datagram %d\n", n);
    struct iovec io = { buf, 4 };
    struct msghdr m = { .msg_name = &from, .msg_namelen = sizeof from, .msg_iov = &io, .msg_iovlen = 1,
                        .msg_control = ctl, .msg_controllen = sizeof ctl };
    T(recvmsg(u, &m, MSG_TRUNC));
    printf("flags trunc %d namelen %d from %s same-port %d\n", !!(m.msg_flags & MSG_TRUNC), m.msg_namelen,
           inet_ntoa(from.sin_addr), ntohs(from.sin_port) == port_of(v));
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c))
        printf("cmsg level %d type %d len %zu tos %#x\n", c->cmsg_level, c->cmsg_type, (size_t)c->cmsg_len, *CMSG_DATA(c));
    // A control buffer too small: MSG_CTRUNC.
    T(sendto(v, "two", 3, 0, (struct sockaddr *)&to, sizeof to));
    m.msg_controllen = 8; m.msg_namelen = 4;
    T(recvmsg(u, &m, 0)); printf("ctrunc %d controllen %zu namelen %d\n", !!(m.msg_flags & MSG_CTRUNC), (size_t)m.msg_controllen, m.msg_namelen);
    T(recvfrom(u, buf, sizeof buf, MSG_DONTWAIT, (struct sockaddr *)&from, &fl));
    // sendmmsg / recvmmsg.
    struct mmsghdr out[3], got[4];
    struct iovec oi[3] = { { "m1", 2 }, { "mm2", 3 }, { "mmm3", 4 } }, gi[4];
    char gb[4][16];
    memset(out, 0, sizeof out); memset(got, 0, sizeof got);
    for (int i = 0; i < 3; i++) out[i].msg_hdr = (struct msghdr){ .msg_name = &to, .msg_namelen = sizeof to, .msg_iov = &oi[i], .msg_iovlen = 1 };
    for (int i = 0; i < 4; i++) { gi[i] = (struct iovec){ gb[i], 16 }; got[i].msg_hdr = (struct msghdr){ .msg_iov = &gi[i], .msg_iovlen = 1 }; }
    T(sendmmsg(v, out, 3, 0)); printf("lens %u %u %u\n", out[0].msg_len, out[1].msg_len, out[2].msg_len);
    T(recvmmsg(u, got, 4, MSG_WAITFORONE, NULL)); printf("got %u %u %u %.4s\n", got[0].msg_len, got[1].msg_len, got[2].msg_len, gb[2]);
    T(recvmmsg(u, got, 4, MSG_DONTWAIT, NULL));
    T(connect(v, (struct sockaddr *)&to, sizeof to));
    T(send(v, "c", 1, 0));
    T(recv(u, buf, sizeof buf, 0));
    close(u); close(v);
    // IPv6, dual-stack: a v4 client seen as ::ffff:127.0.0.1.
    int s6 = socket(AF_INET6, SOCK_STREAM, 0);
    struct sockaddr_in6 any = { .sin6_family = AF_INET6, .sin6_addr = in6addr_any };
    T(bind(s6, (struct sockaddr *)&any, sizeof any)); listen(s6, 4);
    struct sockaddr_in6 me; socklen_t ml = sizeof me; getsockname(s6, (struct sockaddr *)&me, &ml);
    int c4 = socket(AF_INET, SOCK_STREAM, 0); struct sockaddr_in ca = loopback(ntohs(me.sin6_port));
    T(connect(c4, (struct sockaddr *)&ca, sizeof ca));
    struct sockaddr_in6 peer; socklen_t pl = sizeof peer; char text[64];
    int a6 = accept(s6, (struct sockaddr *)&peer, &pl);
    printf("v6 peer %s len %d\n", inet_ntop(AF_INET6, &peer.sin6_addr, text, sizeof text), pl);
    close(a6); close(c4); close(s6);
    struct ifaddrs *ifs; T(getifaddrs(&ifs));
    int lo = 0; for (struct ifaddrs *i = ifs; i; i = i->ifa_next) if (!strcmp(i->ifa_name, "lo")) lo = 1;
    printf("getifaddrs has lo: %d\n", lo); freeifaddrs(ifs);
}

static void *client(void *arg) {
    int port = (int)(long)arg;
    for (int i = 0; i < 5; i++) {
        int c = socket(AF_INET, SOCK_STREAM, 0); struct sockaddr_in a = loopback(port);
        connect(c, (struct sockaddr *)&a, sizeof a);
        char msg[32], buf[32]; int n = snprintf(msg, sizeof msg, "request %d", i);
        write(c, msg, n);
        int got = 0; while (got < n) { int r = read(c, buf + got, sizeof buf - got); if (r <= 0) break; got += r; }
        printf("client got '%.*s'\n", got, buf);
        close(c);
    }
    return NULL;
}

static void nonblocking(void) {
    puts("-- non-blocking + epoll");
    int l = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in a = loopback(0);
    bind(l, (struct sockaddr *)&a, sizeof a); listen(l, 16);
    T(accept(l, NULL, NULL));
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = { .events = EPOLLIN | EPOLLEXCLUSIVE, .data.fd = l };
    T(epoll_ctl(ep, EPOLL_CTL_ADD, l, &ev));
    T(epoll_ctl(ep, EPOLL_CTL_MOD, l, &ev));
    pthread_t th; pthread_create(&th, NULL, client, (void *)(long)port_of(l));
    int served = 0;
    while (served < 5) {
        struct epoll_event evs[8];
        int n = epoll_wait(ep, evs, 8, 10000);
        if (n <= 0) { puts("epoll_wait timed out"); break; }
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd == l) {
                int c;
                while ((c = accept4(l, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                    struct epoll_event ce = { .events = EPOLLIN | EPOLLRDHUP | EPOLLET, .data.fd = c };
                    epoll_ctl(ep, EPOLL_CTL_ADD, c, &ce);
                }
                if (errno != EAGAIN) perror("accept4");
            } else {
                char buf[64]; long r;
                while ((r = read(fd, buf, sizeof buf)) > 0) write(fd, buf, r);
                if (r == 0 || (evs[i].events & EPOLLRDHUP)) { close(fd); served++; }
            }
        }
    }
    pthread_join(th, NULL);
    // A non-blocking connect: EINPROGRESS, then writable and SO_ERROR 0.
    int c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in to = loopback(port_of(l));
    int r = connect(c, (struct sockaddr *)&to, sizeof to);
    printf("connect: %s\n", r == 0 || errno == EINPROGRESS ? "0 or EINPROGRESS" : strerrorname_np(errno));
    struct pollfd pf = { c, POLLOUT, 0 };
    T(poll(&pf, 1, 10000)); printf("revents %#x\n", pf.revents);
    int err = -1; socklen_t el = 4; T(getsockopt(c, SOL_SOCKET, SO_ERROR, &err, &el)); printf("so_error %d\n", err);
    T(connect(c, (struct sockaddr *)&to, sizeof to));
    int s = -1; while (s < 0) { struct pollfd lp = { l, POLLIN, 0 }; poll(&lp, 1, 10000); s = accept(l, NULL, NULL); }
    // select and pselect.
    fd_set rs; FD_ZERO(&rs); FD_SET(s, &rs);
    struct timeval z = { 0, 0 };
    T(select(s + 1, &rs, NULL, NULL, &z)); printf("readable before %d\n", FD_ISSET(s, &rs));
    write(c, "ping", 4);
    FD_ZERO(&rs); FD_SET(s, &rs); fd_set ws; FD_ZERO(&ws); FD_SET(s, &ws);
    struct timeval tv = { 10, 0 };
    T(select(s + 1, &rs, &ws, NULL, &tv)); printf("readable %d writable %d\n", FD_ISSET(s, &rs), FD_ISSET(s, &ws));
    FD_ZERO(&rs); FD_SET(s, &rs);
    struct timespec ts = { 10, 0 };
    T(pselect(s + 1, &rs, NULL, NULL, &ts, NULL));
    // fd 900 once open and closed: the table has grown past it (it never shrinks), so
    // select sees a set bit without a file (the size inherited from the parent can no
    // longer decide the answer).
    dup2(0, 900); close(900);
    FD_ZERO(&rs); FD_SET(900, &rs);
    T(select(901, &rs, NULL, NULL, &z));
    T(select(-1, NULL, NULL, NULL, &z));
    z.tv_usec = -1; T(syscall(SYS_select, 1, NULL, NULL, NULL, &z));
    // EPOLLRDHUP when the peer shuts its side.
    struct epoll_event se = { .events = EPOLLIN | EPOLLRDHUP, .data.fd = s };
    epoll_ctl(ep, EPOLL_CTL_ADD, s, &se);
    char buf[8]; read(s, buf, sizeof buf);
    shutdown(c, SHUT_WR);
    struct epoll_event got;
    T(epoll_wait(ep, &got, 1, 10000)); printf("events %#x\n", got.events);
    close(c); close(s); close(ep); close(l);
}

static volatile int interrupted_done, handled;
static void on_usr1(int s) { (void)s; handled++; }
struct poke { pthread_t target; int fd; int send_data; };
static void *poker(void *arg) {
    struct poke *k = arg;
    // Signals until the call has ended (pacing only: the outcome does not depend on it).
    for (int i = 0; !interrupted_done && i < 500; i++) {
        pthread_kill(k->target, SIGUSR1);
        usleep(10000);
        if (k->send_data && i == 3) write(k->fd, "late", 4);
    }
    return NULL;
}

static void interruptions(void) {
    puts("-- signals during blocking calls");
    int l = listener(), c = connected(l), s = accept(l, NULL, NULL);
    char buf[8];
    struct sigaction sa = { .sa_handler = on_usr1 };
    for (int round = 0; round < 3; round++) {
        // 0: no SA_RESTART: EINTR. 1: SA_RESTART: restarted, the data arrives.
        // 2: SA_RESTART but SO_RCVTIMEO set: EINTR all the same.
        sa.sa_flags = round == 0 ? 0 : SA_RESTART;
        sigaction(SIGUSR1, &sa, NULL);
        struct timeval tv = { round == 2 ? 100 : 0, 0 };
        setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        interrupted_done = 0;
        struct poke k = { pthread_self(), c, round == 1 };
        pthread_t th; pthread_create(&th, NULL, poker, &k);
        long r = recv(s, buf, sizeof buf, 0);
        int e = errno;
        interrupted_done = 1;
        pthread_join(th, NULL);
        printf("round %d: %ld %s handled %d\n", round, r, r < 0 ? strerrorname_np(e) : "", handled > 0);
        handled = 0;
        while (recv(s, buf, sizeof buf, MSG_DONTWAIT) > 0) {}
    }
    signal(SIGUSR1, SIG_DFL);
    close(s); close(c); close(l);
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    // The test runner may start us with signals blocked; and a hang ends within a minute.
    sigset_t none; sigemptyset(&none); sigprocmask(SIG_SETMASK, &none, NULL);
    alarm(60);
    errors();
    options();
    streams();
    datagrams();
    nonblocking();
    interruptions();
    return 0;
}
