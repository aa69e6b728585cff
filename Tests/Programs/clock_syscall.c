// clock_syscall.c: clock_gettime as a system call (glibc's syscall(), not the vDSO), from
// many first-time call sites in several threads: the results and errors the kernel gives
// (EINVAL for an unknown clock before EFAULT for a bad pointer), compared with a native run.
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static long call(long clock, void *tp) {
    long r = syscall(SYS_clock_gettime, clock, tp);
    return r == 0 ? 0 : -errno;
}

// Each thread's loop runs getppid and clock_gettime from its own inlined sites, while the
// other threads are running or parked: first calls from sites being rewritten meanwhile.
static void *worker(void *arg) {
    long bad = 0;
    for (int i = 0; i < 2000; i++) {
        struct timespec a, b;
        if (call(CLOCK_MONOTONIC, &a) || call(CLOCK_MONOTONIC, &b)) bad++;
        if (b.tv_sec < a.tv_sec || (b.tv_sec == a.tv_sec && b.tv_nsec < a.tv_nsec)) bad++;
        if (getppid() <= 0) bad++;
        if (i % 500 == 0) usleep(100);
    }
    return (void *)bad;
}

int main(void) {
    struct timespec ts = {0, 0};
    printf("monotonic: %ld\n", call(CLOCK_MONOTONIC, &ts));
    printf("realtime plausible: %d\n", call(CLOCK_REALTIME, &ts) == 0 && ts.tv_sec > 1600000000);
    printf("boottime: %ld\n", call(CLOCK_BOOTTIME, &ts));
    printf("coarse: %ld\n", call(CLOCK_MONOTONIC_COARSE, &ts));
    printf("process cputime: %ld\n", call(CLOCK_PROCESS_CPUTIME_ID, &ts));
    printf("unknown clock: %ld\n", call(12345, &ts));
    printf("unknown clock, null pointer: %ld\n", call(12345, NULL));
    printf("null pointer: %ld\n", call(CLOCK_MONOTONIC, NULL));
    printf("bad pointer: %ld\n", call(CLOCK_MONOTONIC, (void *)8));
    pthread_t t[4];
    for (int i = 0; i < 4; i++) pthread_create(&t[i], NULL, worker, NULL);
    long bad = 0;
    for (int i = 0; i < 4; i++) {
        void *r;
        pthread_join(t[i], &r);
        bad += (long)r;
    }
    printf("threads: %ld bad\n", bad);
    return 0;
}
