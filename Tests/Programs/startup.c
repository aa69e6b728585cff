// startup.c: prints what a program sees at start-up (argv, envp, the auxiliary vector
// values that do not depend on addresses), checks the stack and auxv invariants that do,
// and does real work (heap, files, a thread), so that a native run and a run under a
// loader can be compared line by line.
#include <elf.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <unistd.h>

extern char **environ;

static void *worker(void *arg) {
    long n = (long)arg, sum = 0;
    for (long i = 0; i < n; i++) sum += i * i;
    return (void *)sum;
}

int main(int argc, char **argv, char **envp) {
    printf("argc=%d\n", argc);
    for (int i = 0; i < argc; i++) printf("argv[%d]=%s\n", i, argv[i]);
    for (char **e = envp; *e; e++) printf("env=%s\n", *e);
    printf("environ-matches-envp=%d\n", environ == envp);
    // argv and envp are contiguous on the initial stack: envp follows argv's NULL.
    printf("envp-follows-argv=%d\n", envp == argv + argc + 1);

    static const struct { unsigned long type; const char *name; } plain[] = {
        {AT_PAGESZ, "AT_PAGESZ"}, {AT_PHENT, "AT_PHENT"}, {AT_PHNUM, "AT_PHNUM"}, {AT_FLAGS, "AT_FLAGS"},
        {AT_UID, "AT_UID"}, {AT_EUID, "AT_EUID"}, {AT_GID, "AT_GID"}, {AT_EGID, "AT_EGID"},
        {AT_SECURE, "AT_SECURE"}, {AT_HWCAP, "AT_HWCAP"}, {AT_HWCAP2, "AT_HWCAP2"}, {AT_CLKTCK, "AT_CLKTCK"},
        {AT_MINSIGSTKSZ, "AT_MINSIGSTKSZ"},
    };
    for (size_t i = 0; i < sizeof plain / sizeof plain[0]; i++)
        printf("%s=%lu\n", plain[i].name, getauxval(plain[i].type));
    printf("AT_PLATFORM=%s\n", (const char *)getauxval(AT_PLATFORM));
    printf("AT_EXECFN=%s\n", (const char *)getauxval(AT_EXECFN));
    printf("AT_RANDOM-present=%d\n", getauxval(AT_RANDOM) != 0);
    printf("AT_SYSINFO_EHDR-is-elf=%d\n",
           getauxval(AT_SYSINFO_EHDR) && memcmp((void *)getauxval(AT_SYSINFO_EHDR), ELFMAG, SELFMAG) == 0);
    // AT_PHDR must point at this program's own program headers, AT_ENTRY at its entry.
    const Elf64_Phdr *ph = (const Elf64_Phdr *)getauxval(AT_PHDR);
    int load_seen = 0;
    for (unsigned long i = 0; i < getauxval(AT_PHNUM); i++) load_seen += ph[i].p_type == PT_LOAD;
    printf("AT_PHDR-has-loads=%d\n", load_seen > 0);
    extern char _start[];
    printf("AT_ENTRY-is-_start=%d\n", getauxval(AT_ENTRY) == (unsigned long)_start);

    // Real work: heap (brk and mmap sizes), a file, a thread.
    size_t total = 0;
    for (int i = 0; i < 200; i++) {
        size_t n = (size_t)(i % 7 == 0 ? 300000 : 100 + i * 13);
        char *p = malloc(n);
        memset(p, i, n);
        total += (unsigned char)p[n - 1];
        free(p);
    }
    printf("heap-checksum=%zu\n", total);
    char path[] = "/tmp/startup-XXXXXX";
    int fd = mkstemp(path);
    const char msg[] = "written and read back\n";
    if (fd < 0 || write(fd, msg, sizeof msg - 1) != (ssize_t)(sizeof msg - 1)) return 3;
    char buf[64] = {0};
    if (pread(fd, buf, sizeof msg - 1, 0) != (ssize_t)(sizeof msg - 1)) return 4;
    close(fd);
    unlink(path);
    printf("file=%s", buf);
    pthread_t t;
    void *r;
    pthread_create(&t, NULL, worker, (void *)1000);
    pthread_join(t, &r);
    printf("thread-result=%ld\n", (long)r);
    return argc > 2 ? atoi(argv[2]) : 0;
}
