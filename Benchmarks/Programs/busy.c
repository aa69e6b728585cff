// busy.c: a loop without system calls for preemption's cost (Documentation/Performance.md):
// prints the wall time and the thread's CPU time of N additions (default 2e9).
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double clk(clockid_t c) {
    struct timespec t;
    clock_gettime(c, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 2000000000L;
    double w0 = clk(CLOCK_MONOTONIC), c0 = clk(CLOCK_THREAD_CPUTIME_ID);
    volatile unsigned long x = 0;
    for (long i = 0; i < n; i++) x += i;
    printf("wall %.3f s cpu %.3f s\n", clk(CLOCK_MONOTONIC) - w0, clk(CLOCK_THREAD_CPUTIME_ID) - c0);
    return 0;
}
