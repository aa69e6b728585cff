/* unix_dgram.c: AF_UNIX datagrams and seqpacket records: boundaries, MSG_TRUNC (flag and
   real length), sendto a named peer, recvfrom reporting the sender (and length 0 for an
   unnamed one), connected datagram sockets, EPERM, ECONNREFUSED once the peer is gone,
   AF_UNSPEC, EMSGSIZE, the receive queue limit, FIONREAD; seqpacket records on a
   connection, truncation, EOF, ENOTCONN. argv[1]: a directory. */
#include "unix_common.h"

static void show_from(const char *what, struct sockaddr_un *from, socklen_t len) {
    printf("%s: from length %u%s%s\n", what, len, len > 2 && from->sun_path[0] ? " named " : "",
           len > 2 && !from->sun_path[0] ? " abstract" : "");
}

int main(int argc, char **argv) {
    struct sockaddr_un sa, ca, from;
    socklen_t sal = path_address(&sa, argv[1], "dgram-server");
    socklen_t cal = abstract_address(&ca, "junction-dgram-client");
    int srv = socket(AF_UNIX, SOCK_DGRAM, 0), cli = socket(AF_UNIX, SOCK_DGRAM, 0);
    bind(srv, (struct sockaddr *)&sa, sal);
    printf("fresh poll: %s\n", poll_bits(srv));
    TRY("send unconnected", send(cli, "x", 1, 0));
    TRY("write unconnected", write(cli, "x", 1));
    TRY("sendto unnamed sender", sendto(cli, "anon", 4, 0, (struct sockaddr *)&sa, sal));
    socklen_t fl = sizeof from;
    char buf[256];
    TRY("recvfrom", recvfrom(srv, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl));
    show_from("unnamed", &from, fl);
    bind(cli, (struct sockaddr *)&ca, cal);
    TRY("sendto 5", sendto(cli, "first", 5, 0, (struct sockaddr *)&sa, sal));
    TRY("sendto 7", sendto(cli, "second!", 7, 0, (struct sockaddr *)&sa, sal));
    TRY("sendto empty", sendto(cli, "", 0, 0, (struct sockaddr *)&sa, sal));
    int n;
    ioctl(srv, FIONREAD, &n);
    printf("FIONREAD next datagram %d; poll %s\n", n, poll_bits(srv));
    fl = sizeof from;
    TRY("recvfrom 3 of 5", recvfrom(srv, buf, 3, 0, (struct sockaddr *)&from, &fl));
    show_from("named", &from, fl);
    printf("same sender %d\n", memcmp(&from, &ca, cal) == 0);
    struct iovec iov = { buf, 2 };
    struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
    TRY("recvmsg 2 of 7 MSG_TRUNC", recvmsg(srv, &m, MSG_TRUNC));
    printf("msg_flags MSG_TRUNC %d\n", (m.msg_flags & MSG_TRUNC) != 0);
    TRY("recv empty datagram", recv(srv, buf, sizeof buf, 0));
    TRY("recv nothing", recv(srv, buf, sizeof buf, MSG_DONTWAIT));
    TRY("sendto missing", sendto(cli, "x", 1, 0, (struct sockaddr *)&(struct sockaddr_un){ .sun_family = AF_UNIX, .sun_path = "/nonexistent/x" }, 17));
    TRY("sendto bad address length", sendto(cli, "x", 1, 0, (struct sockaddr *)&sa, 1));
    int big = 300000;
    char *huge = calloc(1, big);
    TRY("sendto too big", sendto(cli, huge, big, 0, (struct sockaddr *)&sa, sal));

    /* Queue limit: nonblocking senders get EAGAIN once net.unix.max_dgram_qlen is passed. */
    int sent = 0;
    while (sendto(cli, "q", 1, MSG_DONTWAIT, (struct sockaddr *)&sa, sal) == 1 && sent < 1000) sent++;
    printf("queued %d, then %s\n", sent, strerrorname_np(errno));
    while (recv(srv, buf, 1, MSG_DONTWAIT) == 1) {}

    /* Connected: send without an address, only the peer may send to it. */
    TRY("connect", connect(cli, (struct sockaddr *)&sa, sal));
    TRY("send connected", send(cli, "c1", 2, 0));
    TRY("connect server back", connect(srv, (struct sockaddr *)&ca, cal));
    int third = socket(AF_UNIX, SOCK_DGRAM, 0);
    TRY("third party", sendto(third, "x", 1, 0, (struct sockaddr *)&sa, sal));
    socklen_t pl = sizeof from;
    TRY("getpeername", getpeername(cli, (struct sockaddr *)&from, &pl));
    printf("peer length %u\n", pl);
    TRY("recv", recv(srv, buf, sizeof buf, 0));
    TRY("disconnect AF_UNSPEC", connect(srv, (struct sockaddr *)&(struct sockaddr){ .sa_family = AF_UNSPEC }, sizeof(struct sockaddr)));
    TRY("third party after", sendto(third, "x", 1, 0, (struct sockaddr *)&sa, sal));
    recv(srv, buf, sizeof buf, 0);
    close(srv);
    TRY("send to a closed peer", send(cli, "x", 1, 0));
    TRY("send again", send(cli, "x", 1, 0));
    pl = sizeof from;
    TRY("getpeername after", getpeername(cli, (struct sockaddr *)&from, &pl));

    /* A datagram pair; shutdown. */
    int dp[2];
    socketpair(AF_UNIX, SOCK_DGRAM, 0, dp);
    TRY("pair send", send(dp[0], "ab", 2, 0));
    TRY("pair send", send(dp[0], "cde", 3, 0));
    TRY("pair recv", recv(dp[1], buf, sizeof buf, 0));
    TRY("pair recv", recv(dp[1], buf, sizeof buf, 0));
    TRY("shutdown SHUT_WR", shutdown(dp[0], SHUT_WR));
    TRY("send after SHUT_WR", send(dp[0], "x", 1, MSG_NOSIGNAL));
    TRY("listen on datagram", listen(dp[0], 1));
    TRY("accept on datagram", accept(dp[0], NULL, NULL));

    /* Seqpacket. */
    struct sockaddr_un qa;
    socklen_t qal = path_address(&qa, argv[1], "seqpacket");
    int ql = socket(AF_UNIX, SOCK_SEQPACKET, 0);
    bind(ql, (struct sockaddr *)&qa, qal);
    listen(ql, 4);
    int qc = socket(AF_UNIX, SOCK_SEQPACKET, 0);
    TRY("seqpacket send unconnected", send(qc, "x", 1, 0));
    TRY("seqpacket recv unconnected", recv(qc, buf, 1, MSG_DONTWAIT));
    TRY("seqpacket connect", connect(qc, (struct sockaddr *)&qa, qal));
    int qs = accept(ql, NULL, NULL);
    TRY("seqpacket send 3", send(qc, "one", 3, 0));
    TRY("seqpacket send 5", sendto(qc, "three", 5, 0, (struct sockaddr *)&qa, qal));
    TRY("seqpacket send 0", send(qc, "", 0, 0));
    ioctl(qs, FIONREAD, &n);
    printf("seqpacket FIONREAD %d\n", n);
    TRY("seqpacket recv", recv(qs, buf, sizeof buf, 0));
    iov.iov_len = 2;
    m.msg_flags = 0;
    TRY("seqpacket recvmsg short", recvmsg(qs, &m, 0));
    printf("msg_flags MSG_TRUNC %d\n", (m.msg_flags & MSG_TRUNC) != 0);
    TRY("seqpacket recv empty record", recv(qs, buf, sizeof buf, MSG_DONTWAIT));
    TRY("seqpacket recv none", recv(qs, buf, sizeof buf, MSG_DONTWAIT));
    close(qc);
    printf("seqpacket peer closed poll: %s\n", poll_bits(qs));
    TRY("seqpacket EOF", recv(qs, buf, sizeof buf, 0));
    TRY("seqpacket send to closed", send(qs, "x", 1, MSG_NOSIGNAL));
    return 0;
}
