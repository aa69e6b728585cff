// leaf_calls.c: getpid and clock_gettime, three times each from one raw call site (which
// junction rewrites after its first call), then the pid and whether time went forward.
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

int main(void) {
    long pids[3];
    struct timespec ts[3];
    for (int i = 0; i < 3; i++) {
        pids[i] = raw_getpid();
        raw_clock_gettime(CLOCK_BOOTTIME, &ts[i]);
    }
    int forward = ts[0].tv_sec < ts[2].tv_sec || (ts[0].tv_sec == ts[2].tv_sec && ts[0].tv_nsec <= ts[2].tv_nsec);
    printf("same pid %d, time forward %d\n", pids[0] == pids[1] && pids[1] == pids[2], forward);
    return 0;
}
