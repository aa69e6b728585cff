/* unix_rights.c: ancillary data on AF_UNIX sockets: SCM_RIGHTS passing a pipe, a file,
   a socket, an eventfd and an epoll instance, in order with the bytes; MSG_CTRUNC with
   the descriptors that do not fit closed; MSG_CMSG_CLOEXEC; SCM_CREDENTIALS with
   SO_PASSCRED (and EPERM for another's); descriptors over datagrams and seqpacket; a
   socket sent over itself; /proc/net/unix lines of named sockets. argv[1]: a directory. */
#include "unix_common.h"

static int send_fds(int s, const char *data, int *fds, int n) {
    char control[CMSG_SPACE(sizeof(int) * 8)] = {0};
    struct iovec iov = { (void *)data, strlen(data) };
    struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = CMSG_SPACE(sizeof(int) * n) };
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * n);
    memcpy(CMSG_DATA(c), fds, sizeof(int) * n);
    return sendmsg(s, &m, 0);
}

/* Receives into `fds`; prints the bytes, the flags and what the control held. */
static int recv_fds(int s, int *fds, size_t control_room, int flags) {
    char data[64] = {0}, control[512];
    struct iovec iov = { data, sizeof data - 1 };
    struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control_room ? control : NULL, .msg_controllen = control_room };
    int r = recvmsg(s, &m, flags);
    if (r < 0) { printf("recvmsg: %s\n", strerrorname_np(errno)); return 0; }
    int n = 0;
    printf("recvmsg %d '%s' ctrunc %d", r, data, (m.msg_flags & MSG_CTRUNC) != 0);
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
        if (c->cmsg_type == SCM_RIGHTS) {
            int k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            memcpy(fds + n, CMSG_DATA(c), k * sizeof(int));
            n += k;
            printf(" rights %d", k);
        } else if (c->cmsg_type == SCM_CREDENTIALS) {
            struct ucred u;
            memcpy(&u, CMSG_DATA(c), sizeof u);
            printf(" credentials pid-mine %d uid-mine %d", u.pid == getpid(), u.uid == getuid());
        }
    }
    printf("\n");
    return n;
}

static int open_count(void) {
    int n = 0;
    for (int fd = 0; fd < 256; fd++) if (fcntl(fd, F_GETFD) >= 0) n++;
    return n;
}

int main(int argc, char **argv) {
    int sv[2], p[2], fds[16];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    pipe(p);
    char path[256];
    snprintf(path, sizeof path, "%s/file", argv[1]);
    int file = open(path, O_CREAT | O_RDWR, 0600);
    write(file, "file-data", 9);
    int efd = eventfd(5, 0), ep = epoll_create1(0), inner[2];
    socketpair(AF_UNIX, SOCK_DGRAM, 0, inner);
    int base = open_count();

    /* Descriptors of every kind, with their bytes and in order. */
    TRY("send pipe+file", send_fds(sv[0], "one", (int[]){ p[1], file }, 2));
    TRY("send socket+eventfd+epoll", send_fds(sv[0], "two", (int[]){ inner[1], efd, ep }, 3));
    TRY("send plain", send(sv[0], "three", 5, 0));
    int n = recv_fds(sv[1], fds, 512, 0);
    write(fds[0], "via-pipe", 8);
    char buf[64] = {0};
    read(p[0], buf, 8);
    printf("pipe says %s\n", buf);
    lseek(fds[1], 0, SEEK_SET);
    memset(buf, 0, sizeof buf);
    read(fds[1], buf, 9);
    printf("file says %s; shares the offset %d\n", buf, lseek(file, 0, SEEK_CUR) == 9);
    for (int i = 0; i < n; i++) close(fds[i]);
    n = recv_fds(sv[1], fds, 512, 0);
    send(fds[0], "dgram", 5, 0);
    memset(buf, 0, sizeof buf);
    recv(inner[0], buf, sizeof buf, 0);
    printf("socket says %s\n", buf);
    uint64_t v = 0;
    read(fds[1], &v, 8);
    printf("eventfd says %lu\n", (unsigned long)v);
    struct epoll_event ev;
    printf("epoll works %d\n", epoll_wait(fds[2], &ev, 1, 0) >= 0);
    for (int i = 0; i < n; i++) close(fds[i]);
    recv_fds(sv[1], fds, 512, 0);
    printf("descriptors back to where they were %d\n", open_count() == base);

    /* A control buffer too small: MSG_CTRUNC, what does not fit is closed. */
    send_fds(sv[0], "four", (int[]){ p[0], p[1], file }, 3);
    n = recv_fds(sv[1], fds, CMSG_SPACE(sizeof(int)), 0);
    for (int i = 0; i < n; i++) close(fds[i]);
    send_fds(sv[0], "five", (int[]){ p[0] }, 1);
    recv_fds(sv[1], fds, 0, 0);
    printf("descriptors back to where they were %d\n", open_count() == base);

    /* MSG_CMSG_CLOEXEC. */
    send_fds(sv[0], "six", (int[]){ file }, 1);
    n = recv_fds(sv[1], fds, 512, MSG_CMSG_CLOEXEC);
    printf("close-on-exec %d\n", (fcntl(fds[0], F_GETFD) & FD_CLOEXEC) != 0);
    close(fds[0]);
    send_fds(sv[0], "seven", (int[]){ file }, 1);
    n = recv_fds(sv[1], fds, 512, 0);
    printf("close-on-exec %d\n", (fcntl(fds[0], F_GETFD) & FD_CLOEXEC) != 0);
    close(fds[0]);

    /* A read stops after the bytes that carried descriptors. */
    send(sv[0], "ab", 2, 0);
    send_fds(sv[0], "cd", (int[]){ file }, 1);
    send(sv[0], "ef", 2, 0);
    n = recv_fds(sv[1], fds, 512, 0);
    close(fds[0]);
    recv_fds(sv[1], fds, 512, 0);
    TRY("bad descriptor", send_fds(sv[0], "x", (int[]){ 999 }, 1));

    /* Credentials. */
    int one = 1;
    setsockopt(sv[1], SOL_SOCKET, SO_PASSCRED, &one, sizeof one);
    send(sv[0], "cred", 4, 0);
    recv_fds(sv[1], fds, 512, 0);
    int passcred = 0; socklen_t pl = sizeof passcred;
    getsockopt(sv[1], SOL_SOCKET, SO_PASSCRED, &passcred, &pl);
    printf("SO_PASSCRED %d\n", passcred);
    char control[CMSG_SPACE(sizeof(struct ucred))] = {0};
    struct ucred u = { .pid = getpid(), .uid = getuid(), .gid = getgid() };
    struct iovec iov = { "mine", 4 };
    struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof control };
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET; c->cmsg_type = SCM_CREDENTIALS; c->cmsg_len = CMSG_LEN(sizeof u);
    memcpy(CMSG_DATA(c), &u, sizeof u);
    TRY("send own credentials", sendmsg(sv[0], &m, 0));
    recv_fds(sv[1], fds, 512, 0);
    if (getuid() != 0) {
        u.uid = getuid() + 1;
        memcpy(CMSG_DATA(c), &u, sizeof u);
        TRY("send another's credentials", sendmsg(sv[0], &m, 0));
    } else {
        printf("send another's credentials: EPERM\n");
    }

    /* Datagram and seqpacket carry descriptors too; a socket can carry itself. */
    send_fds(inner[1], "d", (int[]){ inner[1] }, 1);
    n = recv_fds(inner[0], fds, 512, 0);
    send(fds[0], "self", 4, 0);
    memset(buf, 0, sizeof buf);
    recv(inner[0], buf, sizeof buf, 0);
    printf("itself says %s\n", buf);
    close(fds[0]);
    int sq[2];
    socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sq);
    send_fds(sq[0], "sq", (int[]){ p[0] }, 1);
    n = recv_fds(sq[1], fds, 512, MSG_PEEK);
    for (int i = 0; i < n; i++) close(fds[i]);
    n = recv_fds(sq[1], fds, 512, 0);
    for (int i = 0; i < n; i++) close(fds[i]);

    /* /proc/net/unix: the named sockets of this test, by name. */
    struct sockaddr_un a;
    int l = socket(AF_UNIX, SOCK_STREAM, 0), d = socket(AF_UNIX, SOCK_DGRAM, 0);
    bind(l, (struct sockaddr *)&a, path_address(&a, argv[1], "listening"));
    listen(l, 1);
    bind(d, (struct sockaddr *)&a, abstract_address(&a, "junction-rights-dgram"));
    FILE *f = fopen("/proc/net/unix", "r");
    char line[512];
    fgets(line, sizeof line, f);
    printf("header %s", line);
    while (fgets(line, sizeof line, f)) {
        char flags[16], type[8], st[8], name[300] = "";
        unsigned long ino;
        if (sscanf(line, "%*s %*s %*s %15s %7s %7s %lu %299s", flags, type, st, &ino, name) < 4) continue;
        if (strstr(name, "listening") || strstr(name, "junction-rights-dgram")) {
            const char *base = strrchr(name, '/');
            printf("proc: flags %s type %s st %s name %s\n", flags, type, st, base ? base + 1 : name);
        }
    }
    fclose(f);
    struct stat st;
    fstat(l, &st);
    printf("fstat S_ISSOCK %d\n", S_ISSOCK(st.st_mode));
    unlink(path);
    return 0;
}
