// probe.c: waits until a TCP server accepts a connection (optionally sends it one request
// and waits for the first bytes of the answer, e.g. to preload a key), prints
// "probe: connected", then execs the load generator in the same process, so a client
// under junction keeps its instance (and its shm link) from the probe to the load.
//   probe HOST PORT TIMEOUT_S [REQUEST] -- PROGRAM ARGS...
// REQUEST takes \r and \n escapes. Exit 3 if the server did not answer in time.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static size_t unescape(const char *in, char *out) {
    size_t n = 0;
    for (; *in; in++) {
        if (in[0] == '\\' && in[1] == 'r') { out[n++] = '\r'; in++; }
        else if (in[0] == '\\' && in[1] == 'n') { out[n++] = '\n'; in++; }
        else out[n++] = *in;
    }
    return n;
}

int main(int argc, char **argv) {
    int dash = 0;
    for (int i = 1; i < argc; i++) if (strcmp(argv[i], "--") == 0) { dash = i; break; }
    if (argc < 5 || dash < 4 || dash + 1 >= argc) {
        fprintf(stderr, "usage: probe HOST PORT TIMEOUT_S [REQUEST] -- PROGRAM ARGS...\n");
        return 2;
    }
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons(atoi(argv[2])) };
    if (inet_pton(AF_INET, argv[1], &addr.sin_addr) != 1) { fprintf(stderr, "probe: bad address %s\n", argv[1]); return 2; }
    double deadline = now() + atof(argv[3]);
    const char *request = dash > 4 ? argv[4] : NULL;
    for (;;) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd >= 0 && connect(fd, (struct sockaddr *)&addr, sizeof addr) == 0) {
            int ok = 1;
            if (request) {
                char *buf = malloc(strlen(request) + 1), answer[256];
                size_t n = unescape(request, buf);
                struct timeval tv = { .tv_sec = 5 };
                setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
                ok = write(fd, buf, n) == (ssize_t)n && read(fd, answer, sizeof answer) > 0;
                free(buf);
            }
            close(fd);
            if (ok) break;
        } else if (fd >= 0) {
            close(fd);
        }
        if (now() > deadline) { fprintf(stderr, "probe: %s:%s did not answer within %s s\n", argv[1], argv[2], argv[3]); return 3; }
        struct timespec pause = { 0, 20 * 1000 * 1000 };
        nanosleep(&pause, NULL);
    }
    printf("probe: connected\n");
    fflush(stdout);
    execv(argv[dash + 1], argv + dash + 1);
    perror("probe: execv");
    return 127;
}
