// manythreads.c: creates N threads (64 KiB stacks) that all wait on one condition
// variable, releases them and joins them; prints how many were created and joined, or
// where pthread_create stopped and why. Output must match Linux's.
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t c = PTHREAD_COND_INITIALIZER;
static int go, waiting;

static void *body(void *a) {
    pthread_mutex_lock(&m);
    waiting++;
    while (!go) pthread_cond_wait(&c, &m);
    pthread_mutex_unlock(&m);
    return a;
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 2000;
    pthread_t *t = calloc(n, sizeof *t);
    pthread_attr_t at;
    pthread_attr_init(&at);
    pthread_attr_setstacksize(&at, 64 * 1024);
    int made = 0;
    for (; made < n; made++) {
        int e = pthread_create(&t[made], &at, body, (void *)(long)made);
        if (e) { printf("pthread_create stopped at %d: %s\n", made, strerror(e)); break; }
    }
    pthread_mutex_lock(&m);
    go = 1;
    pthread_cond_broadcast(&c);
    pthread_mutex_unlock(&m);
    long sum = 0;
    for (int i = 0; i < made; i++) {
        void *r;
        pthread_join(t[i], &r);
        sum += (long)r;
    }
    printf("created %d, joined %d (sum %ld), all waited: %s\n", made, made, sum, waiting == made ? "yes" : "no");
    return 0;
}
