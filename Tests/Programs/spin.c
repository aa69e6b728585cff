// spin.c: threads that loop without system calls must not hold the process hostage: the
// main thread still wakes from its sleep, a signal still reaches a spinning thread, and
// exit() from the main thread ends the process at once, on any number of kthreads.
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static volatile sig_atomic_t got;
static volatile unsigned long counters[2];

static void on_usr1(int s) { (void)s; got = 1; }

static void *spin(void *arg) {
    volatile unsigned long *c = arg;
    for (;;) (*c)++;  // no system call, ever
    return NULL;
}

int main(void) {
    signal(SIGUSR1, on_usr1);
    pthread_t t[2];
    for (int i = 0; i < 2; i++) pthread_create(&t[i], NULL, spin, (void *)&counters[i]);
    usleep(20000);
    printf("main woke while two threads spin\n");
    fflush(stdout);
    pthread_kill(t[0], SIGUSR1);
    while (!got) usleep(1000);
    printf("a spinning thread took its signal\n");
    fflush(stdout);
    exit(0);
}
