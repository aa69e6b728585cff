// net_prefork.c: a pre-forking server. Listens on argv[1]'s port, takes one control
#define _GNU_SOURCE
// connection, then forks two workers; the parent and the workers all accept on the
// listener and answer each connection with "pid N\n". The workers check that their copy
// of the parent's control connection is not theirs (recv ENOTCONN, send EPIPE) and, with
// argv[2] (an address off the instance), what a new connection to it gives; the
// parent keeps using it: each line read is answered "parent: LINE". When the control
// connection closes, the parent stops the workers, reaps them and exits 0. The parent
// says "ready" only once both workers have reported (a byte each on a pipe): otherwise a
// fast client could end before a worker printed, and the worker die with its lines unsaid.
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static void answer(int l) {
    int a = accept(l, NULL, NULL);
    if (a < 0) return;
    char line[64];
    int n = snprintf(line, sizeof line, "pid %d\n", (int)getpid());
    if (write(a, line, n) != n) perror("write");
    close(a);
}

int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: net_prefork PORT\n"); return 2; }
    setvbuf(stdout, NULL, _IONBF, 0);
    int l = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(atoi(argv[1])) };
    if (bind(l, (struct sockaddr *)&sa, sizeof sa) < 0) { perror("bind"); return 1; }
    if (listen(l, 64) < 0) { perror("listen"); return 1; }
    int control = accept(l, NULL, NULL);
    if (control < 0) { perror("accept"); return 1; }

    int reported[2];
    if (pipe(reported) < 0) { perror("pipe"); return 1; }
    pid_t workers[2];
    for (int i = 0; i < 2; i++) {
        workers[i] = fork();
        if (workers[i] < 0) { perror("fork"); return 1; }
        if (workers[i] == 0) {
            char b;
            ssize_t r = recv(control, &b, 1, MSG_DONTWAIT);
            int re = errno;
            ssize_t s = send(control, "x", 1, MSG_NOSIGNAL);
            int se = errno;
            printf("worker: inherited connection recv %s send %s\n", r < 0 ? strerrorname_np(re) : "ok",
                   s < 0 ? strerrorname_np(se) : "ok");
            close(control);
            if (argc > 2) {
                int c = socket(AF_INET, SOCK_STREAM, 0);
                struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(9) };
                inet_pton(AF_INET, argv[2], &to.sin_addr);
                int r2 = connect(c, (struct sockaddr *)&to, sizeof to);
                int ce = errno;
                printf("worker: new connection %s\n", r2 < 0 ? strerrorname_np(ce) : "ok");
                close(c);
            }
            close(reported[0]);
            if (write(reported[1], "w", 1) != 1) perror("write reported");
            close(reported[1]);
            for (;;) answer(l);
        }
    }
    close(reported[1]);
    for (int got = 0; got < 2;) {
        char b[2];
        ssize_t n = read(reported[0], b, sizeof b);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) { fprintf(stderr, "a worker ended before it reported\n"); return 1; }
        got += (int)n;
    }
    close(reported[0]);
    const char *ready = "ready\n";
    if (write(control, ready, strlen(ready)) < 0) perror("write ready");

    char buf[256];
    for (;;) {
        struct pollfd p[2] = { { .fd = l, .events = POLLIN }, { .fd = control, .events = POLLIN } };
        if (poll(p, 2, -1) < 0) { if (errno == EINTR) continue; perror("poll"); return 1; }
        if (p[0].revents & POLLIN) answer(l);
        if (p[1].revents & (POLLIN | POLLHUP)) {
            ssize_t n = read(control, buf, sizeof buf - 1);
            if (n <= 0) break;
            buf[n] = 0;
            char out[300];
            int m = snprintf(out, sizeof out, "parent: %s", buf);
            if (write(control, out, m) != m) perror("write control");
        }
    }
    for (int i = 0; i < 2; i++) kill(workers[i], SIGTERM);
    int reaped = 0;
    for (int i = 0; i < 2; i++) {
        int st;
        if (waitpid(workers[i], &st, 0) == workers[i] && WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM) reaped++;
    }
    printf("parent: %d workers stopped\n", reaped);
    return 0;
}
