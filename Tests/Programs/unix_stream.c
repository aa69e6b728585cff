/* unix_stream.c: AF_UNIX stream connections: accept from a thread's connect, backlog
   (how many nonblocking connects a listener queues), shutdown each way, MSG_PEEK,
   MSG_WAITALL across a writer's pieces, MSG_DONTWAIT, EPIPE with SIGPIPE and with
   MSG_NOSIGNAL, SO_SNDBUF/SO_RCVBUF, FIONREAD/SIOCINQ/SIOCOUTQ, SO_PEERCRED, poll
   readiness, epoll, ENOTCONN/EINVAL on unconnected sockets, ECONNRESET. argv[1]: a dir. */
#include "unix_common.h"

static int pipes_seen;
static void on_pipe(int sig) { (void)sig; pipes_seen++; }
static struct sockaddr_un addr;
static socklen_t addrlen;

static void *client(void *arg) {
    int c = socket(AF_UNIX, SOCK_STREAM, 0);
    if (connect(c, (struct sockaddr *)&addr, addrlen) != 0) return NULL;
    /* MSG_WAITALL on the other side gathers these pieces. */
    for (int i = 0; i < 4; i++) { send(c, "abcd", 4, 0); usleep(1000); }
    *(int *)arg = c;
    return NULL;
}

int main(int argc, char **argv) {
    signal(SIGPIPE, on_pipe);
    addrlen = path_address(&addr, argv[1], "stream");
    int l = socket(AF_UNIX, SOCK_STREAM, 0);
    TRY("accept unbound", accept(l, NULL, NULL));
    TRY("listen unbound", listen(l, 1));
    TRY("bind", bind(l, (struct sockaddr *)&addr, addrlen));
    TRY("listen", listen(l, 2));
    int acceptconn = 0; socklen_t ol = sizeof acceptconn;
    getsockopt(l, SOL_SOCKET, SO_ACCEPTCONN, &acceptconn, &ol);
    printf("SO_ACCEPTCONN %d; listener poll: %s\n", acceptconn, poll_bits(l));
    int cfd = -1;
    pthread_t t;
    pthread_create(&t, NULL, client, &cfd);
    int s = accept(l, NULL, NULL);
    printf("accepted %d\n", s >= 0);
    char buf[64] = {0};
    TRY("recv MSG_WAITALL 16", recv(s, buf, 16, MSG_WAITALL));
    printf("got %.16s\n", buf);
    pthread_join(t, NULL);
    int c = cfd;

    struct ucred cred; socklen_t cl = sizeof cred;
    TRY("SO_PEERCRED", getsockopt(s, SOL_SOCKET, SO_PEERCRED, &cred, &cl));
    printf("peer pid is mine %d, uid is mine %d, length %u\n", cred.pid == getpid(), cred.uid == getuid(), cl);
    TRY("SO_PEERCRED listener", getsockopt(l, SOL_SOCKET, SO_PEERCRED, &cred, &cl));
    printf("listener cred pid is mine %d\n", cred.pid == getpid());

    TRY("send 5", send(c, "hello", 5, 0));
    int n = -1;
    TRY("FIONREAD", ioctl(s, FIONREAD, &n));
    printf("FIONREAD %d\n", n);
    TRY("recv MSG_PEEK", recv(s, buf, 3, MSG_PEEK));
    TRY("recv 10", recv(s, buf, 10, 0));
    printf("got %.5s\n", buf);
    TRY("SIOCOUTQ", ioctl(c, SIOCOUTQ, &n));
    printf("SIOCOUTQ drained %d\n", n);
    TRY("recv MSG_DONTWAIT", recv(s, buf, 10, MSG_DONTWAIT));
    TRY("SIOCINQ listener", ioctl(l, SIOCINQ, &n));

    /* Buffers: doubled, with floors. */
    int v = 10000; socklen_t vl = sizeof v;
    TRY("SO_SNDBUF", setsockopt(c, SOL_SOCKET, SO_SNDBUF, &v, sizeof v));
    getsockopt(c, SOL_SOCKET, SO_SNDBUF, &v, &vl);
    printf("SO_SNDBUF %d\n", v);
    v = 1; setsockopt(c, SOL_SOCKET, SO_RCVBUF, &v, sizeof v);
    getsockopt(c, SOL_SOCKET, SO_RCVBUF, &v, &vl);
    printf("SO_RCVBUF floor %d\n", v);
    TRY("setsockopt short", setsockopt(c, SOL_SOCKET, SO_SNDBUF, &v, 2));
    TRY("setsockopt unknown", setsockopt(c, SOL_SOCKET, 1000, &v, sizeof v));
    TRY("setsockopt SOL_TCP", setsockopt(c, IPPROTO_TCP, 1, &v, sizeof v));
    TRY("getsockopt SOL_IP", getsockopt(c, IPPROTO_IP, 1, &v, &vl));
    v = 1; setsockopt(c, SOL_SOCKET, SO_KEEPALIVE, &v, sizeof v);
    v = 7; getsockopt(c, SOL_SOCKET, SO_KEEPALIVE, &v, &vl);
    printf("SO_KEEPALIVE %d\n", v);
    /* A full send buffer: EAGAIN without waiting, POLLOUT gone. */
    char big[4096] = {0};
    long sent = 0;
    while (send(c, big, sizeof big, MSG_DONTWAIT) > 0) sent++;
    printf("filled: %s, some sent %d, poll %s\n", strerrorname_np(errno), sent > 0, poll_bits(c));
    while (recv(s, big, sizeof big, MSG_DONTWAIT) > 0) {}
    printf("drained: poll %s\n", poll_bits(c));

    /* Readiness and epoll. */
    int ep = epoll_create1(0);
    struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP, .data.fd = s }, out[4];
    epoll_ctl(ep, EPOLL_CTL_ADD, s, &ev);
    TRY("epoll idle", epoll_wait(ep, out, 4, 0));
    send(c, "x", 1, 0);
    TRY("epoll data", epoll_wait(ep, out, 4, 0));
    recv(s, buf, 1, 0);

    /* Shutdown: each side sees the mirror. */
    TRY("shutdown bad", shutdown(c, 7));
    TRY("shutdown SHUT_WR", shutdown(c, SHUT_WR));
    printf("after peer SHUT_WR: %s\n", poll_bits(s));
    TRY("recv EOF", recv(s, buf, 10, 0));
    TRY("send after SHUT_WR", send(c, "x", 1, 0));
    printf("SIGPIPE seen %d\n", pipes_seen);
    TRY("send MSG_NOSIGNAL", send(c, "x", 1, MSG_NOSIGNAL));
    printf("SIGPIPE seen %d\n", pipes_seen);
    TRY("other way still works", send(s, "yz", 2, 0));
    TRY("recv other way", recv(c, buf, 10, 0));
    TRY("shutdown SHUT_RD", shutdown(c, SHUT_RD));
    TRY("send to a SHUT_RD peer", send(s, "x", 1, MSG_NOSIGNAL));
    printf("both shut: %s\n", poll_bits(c));
    close(c);
    printf("peer closed: %s\n", poll_bits(s));
    TRY("write to closed peer", write(s, "x", 1));
    printf("SIGPIPE seen %d\n", pipes_seen);

    /* Closing with unread data resets the peer. */
    int pair[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, pair);
    send(pair[0], "unread", 6, 0);
    close(pair[1]);
    TRY("recv after reset", recv(pair[0], buf, 10, 0));
    TRY("recv after that", recv(pair[0], buf, 10, 0));

    /* Unconnected sockets. */
    int u = socket(AF_UNIX, SOCK_STREAM, 0);
    printf("unconnected poll: %s\n", poll_bits(u));
    TRY("send unconnected", send(u, "x", 1, 0));
    TRY("recv unconnected", recv(u, buf, 1, 0));
    TRY("sendto unconnected with address", sendto(u, "x", 1, 0, (struct sockaddr *)&addr, addrlen));
    TRY("shutdown unconnected", shutdown(u, SHUT_RDWR));
    TRY("accept on connected", accept(s, NULL, NULL));
    TRY("sendto connected with address", sendto(s, "x", 1, MSG_NOSIGNAL, (struct sockaddr *)&addr, addrlen));
    int pair2[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, pair2);
    TRY("send bad buffer", send(pair2[0], (void *)8, 10, 0));
    TRY("recvfrom bad length pointer", recvfrom(pair2[1], buf, 1, MSG_DONTWAIT, (struct sockaddr *)buf, (socklen_t *)8));

    /* Backlog: connects beyond it wait (EAGAIN when nonblocking). */
    int bl = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un ba; socklen_t bal = path_address(&ba, argv[1], "backlog");
    bind(bl, (struct sockaddr *)&ba, bal);
    listen(bl, 1);
    int queued = 0;
    for (int i = 0; i < 8; i++) {
        int x = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
        if (connect(x, (struct sockaddr *)&ba, bal) == 0) queued++;
        else { printf("connect %d: %s\n", i, strerrorname_np(errno)); break; }
    }
    printf("queued %d\n", queued);
    int a4 = accept4(bl, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    printf("accept4 flags: cloexec %d nonblock %d\n", (fcntl(a4, F_GETFD) & FD_CLOEXEC) != 0, (fcntl(a4, F_GETFL) & O_NONBLOCK) != 0);
    int x = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
    TRY("connect after accept", connect(x, (struct sockaddr *)&ba, bal));
    close(bl);
    return 0;
}
