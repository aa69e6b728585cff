// threads.c: pthread mutex and condvar ping-pong among 8 threads, a barrier of joins,
// and thread-local storage: prints the same totals natively and under junction.
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#define THREADS 8
#define ROUNDS 2000

static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t c = PTHREAD_COND_INITIALIZER;
static int turn = 0;
static long counter = 0;
static __thread long mine = 0;

static void *worker(void *arg) {
    int id = (int)(long)arg;
    for (int r = 0; r < ROUNDS; r++) {
        pthread_mutex_lock(&m);
        while (turn != id) pthread_cond_wait(&c, &m);
        counter += id + 1;
        mine += 1;
        turn = (turn + 1) % THREADS;
        pthread_cond_broadcast(&c);
        pthread_mutex_unlock(&m);
    }
    return (void *)mine;
}

int main(void) {
    pthread_t t[THREADS];
    for (long i = 0; i < THREADS; i++) pthread_create(&t[i], NULL, worker, (void *)i);
    long total = 0;
    for (int i = 0; i < THREADS; i++) {
        void *r;
        pthread_join(t[i], &r);
        total += (long)r;
    }
    printf("counter=%ld per-thread-total=%ld tls-main=%ld\n", counter, total, mine);
    return counter == (long)ROUNDS * THREADS * (THREADS + 1) / 2 ? 0 : 1;
}
