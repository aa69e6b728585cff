// syscalls.c: prints nanoseconds per operation for: getpid through the raw syscall
// instruction, a pthread condvar ping-pong round trip, and a pipe ping-pong round trip
// between two threads, a 1-byte read of /dev/zero, and clock_gettime as a system call
// (glibc's syscall(), not the vDSO). Run natively and under junction by junction-bench syscalls.
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static long rounds;
static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t c = PTHREAD_COND_INITIALIZER;
static int turn;
static int p1[2], p2[2];

static void *ponger(void *arg) {
    (void)arg;
    for (long i = 0; i < rounds; i++) {
        pthread_mutex_lock(&m);
        while (turn != 1) pthread_cond_wait(&c, &m);
        turn = 0;
        pthread_cond_signal(&c);
        pthread_mutex_unlock(&m);
    }
    return NULL;
}

static void *pipe_ponger(void *arg) {
    (void)arg;
    char b;
    for (long i = 0; i < rounds; i++) {
        if (read(p1[0], &b, 1) != 1 || write(p2[1], &b, 1) != 1) exit(3);
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 3) return 2;
    long n = atol(argv[2]);
    rounds = n;
    double start, end;
    if (!strcmp(argv[1], "getpid")) {
        start = now();
        for (long i = 0; i < n; i++) getpid();  // glibc: mov $39, %eax; syscall
        end = now();
    } else if (!strcmp(argv[1], "condvar")) {
        pthread_t t;
        pthread_create(&t, NULL, ponger, NULL);
        start = now();
        for (long i = 0; i < n; i++) {
            pthread_mutex_lock(&m);
            turn = 1;
            pthread_cond_signal(&c);
            while (turn != 0) pthread_cond_wait(&c, &m);
            pthread_mutex_unlock(&m);
        }
        end = now();
        pthread_join(t, NULL);
    } else if (!strcmp(argv[1], "pipe")) {
        if (pipe(p1) || pipe(p2)) return 4;
        pthread_t t;
        pthread_create(&t, NULL, pipe_ponger, NULL);
        char b = 'x';
        start = now();
        for (long i = 0; i < n; i++) {
            if (write(p1[1], &b, 1) != 1 || read(p2[0], &b, 1) != 1) return 5;
        }
        end = now();
        pthread_join(t, NULL);
    } else if (!strcmp(argv[1], "read1")) {
        int fd = open("/dev/zero", O_RDONLY);
        if (fd < 0) return 6;
        char b;
        start = now();
        for (long i = 0; i < n; i++) {
            if (read(fd, &b, 1) != 1) return 7;  // glibc: syscall; cmp $-4096, %rax
        }
        end = now();
    } else if (!strcmp(argv[1], "clock")) {
        // The system call, not the vDSO: glibc's syscall() is `syscall; cmp $-4095, %rax`.
        struct timespec ts;
        start = now();
        for (long i = 0; i < n; i++) {
            if (syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &ts) != 0) return 8;
        }
        end = now();
    } else {
        return 2;
    }
    printf("%.1f\n", (end - start) / n);
    return 0;
}
