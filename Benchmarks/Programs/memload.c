// memload.c: a memcached load generator (text protocol): CONNS connections on one epoll
// thread, each with one request outstanding (no pipelining), GET_PERCENT gets and the
// rest sets of VALUE_SIZE bytes over KEYS keys (all stored first), for SECONDS; prints
//   requests N seconds S rps R p50_us X p99_us Y
//   memload HOST PORT CONNS SECONDS [KEYS VALUE_SIZE GET_PERCENT]
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct conn { int fd; int is_get; double start; size_t got; char buf[4096]; };

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int cmp(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? -1 : x > y;
}

static int connect_to(struct sockaddr_in *addr) {
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    if (fd < 0 || connect(fd, (struct sockaddr *)addr, sizeof *addr) != 0) { perror("memload: connect"); exit(1); }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

static void write_all(int fd, const char *p, size_t n) {
    while (n > 0) {
        ssize_t k = write(fd, p, n);
        if (k < 0 && errno == EAGAIN) continue;
        if (k <= 0) { perror("memload: write"); exit(1); }
        p += k; n -= (size_t)k;
    }
}

static int keys, value_size;
static char *value;

static size_t request(char *out, int is_get) {
    int key = rand() % keys;
    if (is_get) return (size_t)sprintf(out, "get key:%08d\r\n", key);
    size_t n = (size_t)sprintf(out, "set key:%08d 0 0 %d\r\n", key, value_size);
    memcpy(out + n, value, (size_t)value_size);
    memcpy(out + n + value_size, "\r\n", 2);
    return n + (size_t)value_size + 2;
}

static int ends_with(const struct conn *c, const char *s) {
    size_t n = strlen(s);
    return c->got >= n && memcmp(c->buf + c->got - n, s, n) == 0;
}

int main(int argc, char **argv) {
    if (argc < 5) { fprintf(stderr, "usage: memload HOST PORT CONNS SECONDS [KEYS VALUE_SIZE GET_PERCENT]\n"); return 2; }
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons(atoi(argv[2])) };
    if (inet_pton(AF_INET, argv[1], &addr.sin_addr) != 1) { fprintf(stderr, "memload: bad address %s\n", argv[1]); return 2; }
    int nconns = atoi(argv[3]);
    double seconds = atof(argv[4]);
    keys = argc > 5 ? atoi(argv[5]) : 10000;
    value_size = argc > 6 ? atoi(argv[6]) : 64;
    int get_percent = argc > 7 ? atoi(argv[7]) : 90;
    if (nconns < 1 || nconns > 4096 || keys < 1 || value_size < 1 || value_size > 2048 || seconds <= 0) { fprintf(stderr, "memload: bad arguments\n"); return 2; }
    value = malloc((size_t)value_size);
    memset(value, 'x', (size_t)value_size);
    srand(42);

    // Store every key first: one connection, pipelined in batches.
    char *batch = malloc(256 * (size_t)(value_size + 64)), reply[8192];
    int fd = connect_to(&addr);
    for (int k = 0; k < keys; k += 256) {
        size_t n = 0;
        int count = keys - k < 256 ? keys - k : 256;
        for (int i = 0; i < count; i++) {
            n += (size_t)sprintf(batch + n, "set key:%08d 0 0 %d\r\n", k + i, value_size);
            memcpy(batch + n, value, (size_t)value_size);
            memcpy(batch + n + value_size, "\r\n", 2);
            n += (size_t)value_size + 2;
        }
        write_all(fd, batch, n);
        int stored = 0;
        while (stored < count) {
            ssize_t r = read(fd, reply, sizeof reply);
            if (r <= 0) { fprintf(stderr, "memload: the server closed during the preload\n"); return 1; }
            for (ssize_t i = 0; i < r; i++) if (reply[i] == '\n') stored++;
        }
    }
    close(fd);

    int ep = epoll_create1(0);
    struct conn *conns = calloc((size_t)nconns, sizeof *conns);
    size_t cap = 1 << 20, nsamples = 0;
    float *samples = malloc(cap * sizeof *samples);
    char out[4096];
    double start = now(), end = start + seconds;
    for (int i = 0; i < nconns; i++) {
        conns[i].fd = connect_to(&addr);
        fcntl(conns[i].fd, F_SETFL, fcntl(conns[i].fd, F_GETFL) | O_NONBLOCK);
        struct epoll_event ev = { .events = EPOLLIN, .data.u32 = (unsigned)i };
        epoll_ctl(ep, EPOLL_CTL_ADD, conns[i].fd, &ev);
    }
    start = now(); end = start + seconds;
    for (int i = 0; i < nconns; i++) {
        conns[i].is_get = rand() % 100 < get_percent;
        conns[i].start = now();
        write_all(conns[i].fd, out, request(out, conns[i].is_get));
    }
    struct epoll_event events[256];
    double t = start;
    while (t < end) {
        int n = epoll_wait(ep, events, 256, 1000);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) { perror("memload: epoll_wait"); return 1; }
        t = now();
        for (int e = 0; e < n; e++) {
            struct conn *c = &conns[events[e].data.u32];
            ssize_t r = read(c->fd, c->buf + c->got, sizeof c->buf - c->got);
            if (r < 0 && errno == EAGAIN) continue;
            if (r <= 0) { fprintf(stderr, "memload: the server closed a connection\n"); return 1; }
            c->got += (size_t)r;
            if (c->got == sizeof c->buf) { fprintf(stderr, "memload: an answer overflowed the buffer\n"); return 1; }
            if (!(c->is_get ? ends_with(c, "END\r\n") : ends_with(c, "STORED\r\n"))) {
                if (ends_with(c, "ERROR\r\n")) { fprintf(stderr, "memload: the server answered an error\n"); return 1; }
                continue;
            }
            if (nsamples == cap) { cap *= 2; samples = realloc(samples, cap * sizeof *samples); }
            samples[nsamples++] = (float)((t - c->start) * 1e6);
            c->got = 0;
            c->is_get = rand() % 100 < get_percent;
            c->start = t;
            write_all(c->fd, out, request(out, c->is_get));
        }
    }
    double elapsed = now() - start;
    if (nsamples == 0) { fprintf(stderr, "memload: no request completed\n"); return 1; }
    qsort(samples, nsamples, sizeof *samples, cmp);
    printf("requests %zu seconds %.3f rps %.1f p50_us %.1f p99_us %.1f\n", nsamples, elapsed, nsamples / elapsed,
           samples[nsamples / 2], samples[nsamples * 99 / 100]);
    return 0;
}
