// memory.c: the memory calls of a real program: brk/sbrk, anonymous and file mappings
// (shared writes reach the file, private ones do not), mprotect, mremap growing (moved,
// contents kept) and shrinking, madvise(MADV_DONTNEED) on private anonymous memory,
// partial munmap, mincore, msync. Prints what it sees; natively and under junction the
// output must be the same. Argument: a scratch file path.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static unsigned sum(const unsigned char *p, size_t n) {
    unsigned s = 0;
    for (size_t i = 0; i < n; i++) s = s * 31 + p[i];
    return s;
}

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    setvbuf(stdout, NULL, _IONBF, 0);  // no stdio buffer on the heap sbrk shrinks below
    const long page = sysconf(_SC_PAGESIZE);

    // brk
    char *b0 = sbrk(0);
    char *b1 = sbrk(1 << 20);
    memset(b1, 7, 1 << 20);
    printf("sbrk grew by 1 MiB: %d, filled: %u\n", b1 == b0, sum((unsigned char *)b1, 1 << 20) != 0);
    sbrk(-(1 << 19));
    printf("sbrk shrank: %ld\n", (long)((char *)sbrk(0) - b0));

    // Anonymous private memory, mprotect, madvise.
    size_t n = 16 * page;
    unsigned char *a = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    for (size_t i = 0; i < n; i++) a[i] = (unsigned char)(i * 7);
    printf("anonymous: %u\n", sum(a, n));
    printf("mprotect read-only: %d\n", mprotect(a, n, PROT_READ));
    printf("mprotect back: %d\n", mprotect(a, n, PROT_READ | PROT_WRITE));
    int rc = madvise(a + 3 * page, page, MADV_DONTNEED);
    printf("madvise DONTNEED: %d, page 3 now zero: %d, page 4 kept: %d\n", rc, a[3 * page + 5] == 0,
           a[4 * page + 5] == (unsigned char)((4 * page + 5) * 7));

    // mremap: grow (may move; contents kept), shrink.
    unsigned before = sum(a, n);
    unsigned char *g = mremap(a, n, 64 * page, MREMAP_MAYMOVE);
    printf("mremap grow: %d, contents kept: %d\n", g != MAP_FAILED, g != MAP_FAILED && sum(g, n) == before);
    memset(g + n, 1, 64 * page - n);
    unsigned char *s = mremap(g, 64 * page, 8 * page, 0);
    printf("mremap shrink in place: %d, contents kept: %d\n", s == g, sum(s, 8 * page) == sum(g, 8 * page));
    errno = 0;
    void *bad = mremap(s, 8 * page, 128 * page, 0);  // no MAYMOVE: fails if it cannot grow in place
    printf("mremap without MAYMOVE: %s\n", bad == MAP_FAILED ? "failed" : "grew in place");
    if (bad != MAP_FAILED) s = bad;

    // Partial munmap and mincore.
    unsigned char *m = mmap(NULL, 4 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    memset(m, 9, 4 * page);
    printf("munmap the middle: %d\n", munmap(m + page, 2 * page));
    unsigned char vec[1];
    errno = 0;
    rc = mincore(m + page, page, vec);
    printf("mincore of an unmapped page: %d %s\n", rc, strerror(errno));
    rc = mincore(m, page, vec);
    printf("mincore of a touched page: %d resident %d\n", rc, vec[0] & 1);
    printf("ends kept: %d %d\n", m[0], m[3 * page]);

    // File mappings: MAP_SHARED writes reach the file; MAP_PRIVATE writes do not.
    int fd = open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || ftruncate(fd, 2 * page) != 0) { perror("file"); return 1; }
    char *sh = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    memcpy(sh, "shared write", 12);
    rc = msync(sh, 2 * page, MS_SYNC);
    printf("msync: %d\n", rc);
    char rd[16] = {0};
    pread(fd, rd, 12, 0);
    printf("read back through the file: %s\n", rd);
    char *pv = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    memcpy(pv, "PRIVATE", 7);
    memset(rd, 0, sizeof rd);
    pread(fd, rd, 12, 0);
    printf("after a private write the file still says: %s; the mapping says: %.7s\n", rd, pv);
    pwrite(fd, "written by pwrite", 17, page);
    printf("a pwrite seen through the shared mapping: %.17s\n", sh + page);
    errno = 0;
    void *ro = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_SHARED, open(argv[1], O_RDONLY), 0);
    printf("shared writable mapping of a read-only descriptor: %s %s\n", ro == MAP_FAILED ? "failed" : "mapped", strerror(errno));
    errno = 0;
    void *nofd = mmap(NULL, page, PROT_READ, MAP_PRIVATE, 999, 0);
    printf("mapping a bad descriptor: %s %s\n", nofd == MAP_FAILED ? "failed" : "mapped", strerror(errno));
    munmap(sh, 2 * page);
    munmap(pv, page);
    close(fd);
    unlink(argv[1]);
    return 0;
}
