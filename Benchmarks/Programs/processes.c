// processes.c: junction-bench processes: the cost of making processes, printed as
// nanoseconds per operation: fork+exit+wait, posix_spawn+wait of a program, and a
// 10-stage shell pipeline (sh -c 'echo x | cat | ... | cat' through posix_spawn).
#define _GNU_SOURCE
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static long long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000000000LL + t.tv_nsec;
}

static void spawn_wait(const char *path, char *const argv[]) {
    pid_t pid;
    int st;
    if (posix_spawn(&pid, path, NULL, NULL, argv, environ) != 0 || waitpid(pid, &st, 0) != pid || st != 0) {
        fprintf(stderr, "spawn %s failed\n", path);
        exit(1);
    }
}

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: processes fork|spawn|pipeline N [PROGRAM]\n"); return 2; }
    int n = atoi(argv[2]);
    long long start = now_ns();
    if (strcmp(argv[1], "fork") == 0) {
        for (int i = 0; i < n; i++) {
            pid_t c = fork();
            if (c == 0) _exit(0);
            int st;
            if (c < 0 || waitpid(c, &st, 0) != c) return 1;
        }
    } else if (strcmp(argv[1], "spawn") == 0 && argc > 3) {
        char *args[] = {argv[3], NULL};
        for (int i = 0; i < n; i++) spawn_wait(argv[3], args);
    } else if (strcmp(argv[1], "pipeline") == 0) {
        char *args[] = {"sh", "-c", "echo x | cat | cat | cat | cat | cat | cat | cat | cat | cat > /dev/null", NULL};
        for (int i = 0; i < n; i++) spawn_wait("/bin/sh", args);
    } else {
        return 2;
    }
    printf("%.0f\n", (double)(now_ns() - start) / n);
    return 0;
}
