// leaf_calls.c: getpid and clock_gettime, three times each from one raw call site (which
// junction rewrites after its first call), then the pid and whether time went forward;
// with an argument, also signals sent to a thread that makes nothing but those calls
// (each must arrive: under junction the kick finds the thread in a leaf call or in
// application code).
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <time.h>

__attribute__((noinline)) static long raw_getpid(void) {
    long r;
    __asm__ volatile("movl $39, %%eax\n syscall" : "=a"(r) :: "rcx", "r11", "memory");
    return r;
}

__attribute__((noinline)) static long raw_clock_gettime(long clock, struct timespec *ts) {
    long r;
    __asm__ volatile("movl $228, %%eax\n syscall" : "=a"(r) : "D"(clock), "S"(ts) : "rcx", "r11", "memory");
    return r;
}

static volatile int hits, stop;
static void on_usr1(int sig) { (void)sig; hits++; }

static void *spin(void *arg) {
    (void)arg;
    struct timespec ts;
    while (!stop) {
        raw_getpid();
        raw_clock_gettime(CLOCK_MONOTONIC, &ts);
    }
    return NULL;
}

static int signals_to_spinner(int count) {
    struct sigaction sa = {.sa_handler = on_usr1};
    sigaction(SIGUSR1, &sa, NULL);
    pthread_t t;
    pthread_create(&t, NULL, spin, NULL);
    int delivered = 0;
    for (int i = 0; i < count; i++) {
        int before = hits;
        pthread_kill(t, SIGUSR1);
        struct timespec start, now;
        clock_gettime(CLOCK_MONOTONIC, &start);
        for (;;) {
            if (hits != before) { delivered++; break; }
            clock_gettime(CLOCK_MONOTONIC, &now);
            if (now.tv_sec - start.tv_sec > 20) break;  // lost: report it, do not hang
            sched_yield();
        }
    }
    stop = 1;
    pthread_join(t, NULL);
    return delivered;
}

int main(int argc, char **argv) {
    (void)argv;
    long pids[3];
    struct timespec ts[3];
    for (int i = 0; i < 3; i++) {
        pids[i] = raw_getpid();
        raw_clock_gettime(CLOCK_BOOTTIME, &ts[i]);
    }
    int forward = ts[0].tv_sec < ts[2].tv_sec || (ts[0].tv_sec == ts[2].tv_sec && ts[0].tv_nsec <= ts[2].tv_nsec);
    // glibc's own clock_gettime of the CPU clocks: through the vDSO, whose fallback
    // `syscall` is shared with the libOS (never rewritten).
    int cpu = 1;
    for (int i = 0; i < 3; i++) {
        struct timespec c;
        cpu &= clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c) == 0 && clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c) == 0;
    }
    printf("same pid %d, time forward %d, cpu clocks %d\n", pids[0] == pids[1] && pids[1] == pids[2], forward, cpu);
    if (argc > 1) printf("signals delivered %d of 200\n", signals_to_spinner(200));
    return 0;
}
