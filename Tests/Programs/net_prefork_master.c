// net_prefork_master.c: a pre-forking server whose parent never accepts (nginx's master,
#define _GNU_SOURCE
// gunicorn's arbiter, apache prefork): the parent listens on argv[1]'s port, forks two
// workers and only waits for them. Each worker serves one connection at a time, a line
// at a time: "hello" is answered "pid N"; "call PORT" makes the worker connect to the
// client's address at PORT, say "pid N" there and answer "called"; "quit" is answered
// "bye" and sends the parent SIGTERM, on which the parent stops both workers, reaps them,
// prints "parent: 2 workers stopped" and exits 0. The parent prints "parent: ready" once
// both workers have their listener in a poll set (as nginx's workers have it in epoll
// before the first connection) and have reported it on a pipe.
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

static volatile sig_atomic_t stopping;
static void on_term(int s) { (void)s; stopping = 1; }

static int read_line(int fd, char *buf, size_t cap) {
    size_t n = 0;
    while (n + 1 < cap) {
        char c;
        ssize_t r = read(fd, &c, 1);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        if (c == '\n') break;
        buf[n++] = c;
    }
    buf[n] = 0;
    return (int)n;
}

static void say(int fd, const char *text) {
    size_t len = strlen(text);
    if (write(fd, text, len) != (ssize_t)len) perror("write");
}

static void serve(int a) {
    char line[128], out[128];
    snprintf(out, sizeof out, "pid %d\n", (int)getpid());
    while (read_line(a, line, sizeof line) >= 0) {
        if (strcmp(line, "hello") == 0) {
            say(a, out);
        } else if (strncmp(line, "call ", 5) == 0) {
            struct sockaddr_in peer;
            socklen_t len = sizeof peer;
            if (getpeername(a, (struct sockaddr *)&peer, &len) < 0) { perror("getpeername"); say(a, "failed\n"); continue; }
            peer.sin_port = htons(atoi(line + 5));
            int c = socket(AF_INET, SOCK_STREAM, 0);
            int r = connect(c, (struct sockaddr *)&peer, sizeof peer);
            int e = errno;
            if (r < 0) {
                fprintf(stderr, "worker: connect: %s\n", strerror(e));
                say(a, "failed\n");
            } else {
                say(c, out);
                say(a, "called\n");
            }
            close(c);
        } else if (strcmp(line, "quit") == 0) {
            say(a, "bye\n");
            kill(getppid(), SIGTERM);
        } else {
            say(a, "what?\n");
        }
    }
    close(a);
}

int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: net_prefork_master PORT\n"); return 2; }
    setvbuf(stdout, NULL, _IONBF, 0);
    int l = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(atoi(argv[1])) };
    if (bind(l, (struct sockaddr *)&sa, sizeof sa) < 0) { perror("bind"); return 1; }
    if (listen(l, 64) < 0) { perror("listen"); return 1; }
    struct sigaction act = { .sa_handler = on_term };   // no SA_RESTART: waitpid returns EINTR
    sigaction(SIGTERM, &act, NULL);

    int reported[2];
    if (pipe(reported) < 0) { perror("pipe"); return 1; }
    pid_t workers[2];
    for (int i = 0; i < 2; i++) {
        workers[i] = fork();
        if (workers[i] < 0) { perror("fork"); return 1; }
        if (workers[i] == 0) {
            signal(SIGTERM, SIG_DFL);
            struct pollfd p = { .fd = l, .events = POLLIN };
            if (poll(&p, 1, 0) < 0) perror("poll");
            close(reported[0]);
            if (write(reported[1], "w", 1) != 1) perror("write reported");
            close(reported[1]);
            for (;;) {
                int a = accept(l, NULL, NULL);
                if (a < 0) { if (errno == EINTR) continue; perror("accept"); _exit(1); }
                serve(a);
            }
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
    printf("parent: ready\n");
    while (!stopping) {
        int st;
        pid_t w = waitpid(-1, &st, 0);
        if (w < 0 && errno == EINTR) continue;
        fprintf(stderr, "parent: a worker ended before quit (%d, status %d)\n", (int)w, st);
        return 1;
    }
    for (int i = 0; i < 2; i++) kill(workers[i], SIGTERM);
    int reaped = 0;
    for (int i = 0; i < 2; i++) {
        int st;
        pid_t w;
        while ((w = waitpid(workers[i], &st, 0)) < 0 && errno == EINTR) {}
        if (w == workers[i] && WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM) reaped++;
    }
    printf("parent: %d workers stopped\n", reaped);
    return 0;
}
