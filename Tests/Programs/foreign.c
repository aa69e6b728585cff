// foreign.c: given an address the program does not own (junction's own memory, found by
// the test in the host's maps), every way of touching it through the kernel interface
// must fail as for an unmapped range, and the instance must keep working. Reads lines
// "ADDRESS LENGTH" (hex) from stdin; prints one result per operation.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static void show(const char *what, long r) {
    if (r < 0) printf("%s = -1 %s\n", what, strerrorname_np(errno));
    else printf("%s = %ld\n", what, r);
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    printf("ready\n");
    unsigned long a, n;
    while (scanf("%lx %lx", &a, &n) == 2) {
        void *p = (void *)a;
        int z = open("/dev/zero", O_RDONLY);
        show("read(/dev/zero) into it", read(z, p, n < 65536 ? n : 65536));
        close(z);
        int f = open("/etc/hostname", O_RDONLY);
        show("read(host file) into it", read(f, p, 16));
        close(f);
        int pp[2];
        pipe(pp);
        show("write from it", write(pp[1], p, 16));
        close(pp[0]);
        close(pp[1]);
        show("stat into it", stat("/", (struct stat *)p));
        show("open with a path in it", open((const char *)p, O_RDONLY));
        show("mprotect(PROT_NONE)", mprotect(p, 4096, PROT_NONE));
        show("munmap", munmap(p, 4096));
        void *m = mmap(p, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
        show("mmap(MAP_FIXED) over it", m == MAP_FAILED ? -1 : 0);
        void *r = mremap(p, 4096, 8192, MREMAP_MAYMOVE);
        show("mremap", r == MAP_FAILED ? -1 : 0);
        char buf[32];
        int h = open("/etc/hostname", O_RDONLY);
        show("alive: read after all that", read(h, buf, sizeof buf) > 0 ? 1 : -1);
        close(h);
    }
    return 0;
}
