// cjuring.c: liburing behind opaque types (see cjuring.h for why).
#define _GNU_SOURCE
#include "cjuring.h"

#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <linux/openat2.h>
#include <unistd.h>

_Static_assert(sizeof(struct statx) <= sizeof(cju_statx_buf), "cju_statx_buf holds a struct statx");
_Static_assert(AT_SYMLINK_NOFOLLOW == CJU_AT_SYMLINK_NOFOLLOW, "flag mirror");
_Static_assert(AT_REMOVEDIR == CJU_AT_REMOVEDIR, "flag mirror");
_Static_assert(AT_EMPTY_PATH == CJU_AT_EMPTY_PATH, "flag mirror");
_Static_assert(STATX_BASIC_STATS == CJU_STATX_BASIC_STATS, "flag mirror");

struct cju_ring { struct io_uring ring; };

cju_ring *cju_ring_create(unsigned entries, int *error) {
    cju_ring *r = calloc(1, sizeof *r);
    if (!r) { *error = -ENOMEM; return NULL; }
    int rc = io_uring_queue_init(entries, &r->ring, 0);
    if (rc < 0) { free(r); *error = rc; return NULL; }
    *error = 0;
    return r;
}

void cju_ring_destroy(cju_ring *r) {
    io_uring_queue_exit(&r->ring);
    free(r);
}

int cju_ring_register_eventfd(cju_ring *r, int fd) { return io_uring_register_eventfd(&r->ring, fd); }
cju_sqe *cju_get_sqe(cju_ring *r) { return (cju_sqe *)io_uring_get_sqe(&r->ring); }
int cju_submit(cju_ring *r) { return io_uring_submit(&r->ring); }
unsigned cju_cq_ready(cju_ring *r) { return io_uring_cq_ready(&r->ring); }

int cju_take_cqe(cju_ring *r, uint64_t *user_data, int32_t *result) {
    struct io_uring_cqe *cqe;
    if (io_uring_peek_cqe(&r->ring, &cqe) != 0 || !cqe) return 0;
    *user_data = cqe->user_data;
    *result = cqe->res;
    io_uring_cqe_seen(&r->ring, cqe);
    return 1;
}

#define SQE(s) ((struct io_uring_sqe *)(s))

void cju_prep_openat(cju_sqe *s, int dfd, const char *path, int flags, unsigned mode, uint64_t data) {
    io_uring_prep_openat(SQE(s), dfd, path, flags, mode);
    io_uring_sqe_set_data64(SQE(s), data);
}
void cju_prep_statx(cju_sqe *s, int dfd, const char *path, int flags, unsigned mask, cju_statx_buf *out, uint64_t data) {
    io_uring_prep_statx(SQE(s), dfd, path, flags, mask, (struct statx *)out->bytes);
    io_uring_sqe_set_data64(SQE(s), data);
}
void cju_prep_poll_add(cju_sqe *s, int fd, unsigned mask, uint64_t data) {
    io_uring_prep_poll_add(SQE(s), fd, mask);
    io_uring_sqe_set_data64(SQE(s), data);
}
void cju_prep_read(cju_sqe *s, int fd, void *buf, unsigned n, uint64_t offset, uint64_t data) {
    io_uring_prep_read(SQE(s), fd, buf, n, offset);
    io_uring_sqe_set_data64(SQE(s), data);
}
void cju_prep_write(cju_sqe *s, int fd, const void *buf, unsigned n, uint64_t offset, uint64_t data) {
    io_uring_prep_write(SQE(s), fd, buf, n, offset);
    io_uring_sqe_set_data64(SQE(s), data);
}
void cju_prep_fsync(cju_sqe *s, int fd, uint64_t data) {
    io_uring_prep_fsync(SQE(s), fd, 0);
    io_uring_sqe_set_data64(SQE(s), data);
}
void cju_prep_close(cju_sqe *s, int fd, uint64_t data) {
    io_uring_prep_close(SQE(s), fd);
    io_uring_sqe_set_data64(SQE(s), data);
}
void cju_prep_mkdirat(cju_sqe *s, int dfd, const char *path, unsigned mode, uint64_t data) {
    io_uring_prep_mkdirat(SQE(s), dfd, path, mode);
    io_uring_sqe_set_data64(SQE(s), data);
}
void cju_prep_unlinkat(cju_sqe *s, int dfd, const char *path, int flags, uint64_t data) {
    io_uring_prep_unlinkat(SQE(s), dfd, path, flags);
    io_uring_sqe_set_data64(SQE(s), data);
}
void cju_prep_renameat(cju_sqe *s, int olddfd, const char *oldpath, int newdfd, const char *newpath, uint64_t data) {
    io_uring_prep_renameat(SQE(s), olddfd, oldpath, newdfd, newpath, 0);
    io_uring_sqe_set_data64(SQE(s), data);
}
void cju_prep_symlinkat(cju_sqe *s, const char *target, int dfd, const char *path, uint64_t data) {
    io_uring_prep_symlinkat(SQE(s), target, dfd, path);
    io_uring_sqe_set_data64(SQE(s), data);
}
void cju_prep_linkat(cju_sqe *s, int olddfd, const char *oldpath, int newdfd, const char *newpath, uint64_t data) {
    io_uring_prep_linkat(SQE(s), olddfd, oldpath, newdfd, newpath, 0);
    io_uring_sqe_set_data64(SQE(s), data);
}

int cju_statx_direct(int dfd, const char *path, int flags, unsigned mask, cju_statx_buf *out) {
    return statx(dfd, path, flags, mask, (struct statx *)out->bytes) == 0 ? 0 : -errno;
}

int cju_openat_cached(int dfd, const char *path, int flags) {
    struct open_how how = { .flags = (uint64_t)(unsigned)flags, .mode = 0, .resolve = RESOLVE_CACHED };
    long r = syscall(SYS_openat2, dfd, path, &how, sizeof how);
    return r >= 0 ? (int)r : -errno;
}

int cju_openat_unwalked(int dfd, const char *path, int flags) {
    struct open_how how = { .flags = (uint64_t)(unsigned)flags, .mode = 0,
                            .resolve = RESOLVE_CACHED | RESOLVE_NO_SYMLINKS };
    long r = syscall(SYS_openat2, dfd, path, &how, sizeof how);
    return r >= 0 ? (int)r : -errno;
}

long cju_pread_nowait(int fd, void *buf, size_t n, uint64_t offset) {
    struct iovec iov = { .iov_base = buf, .iov_len = n };
    ssize_t r = preadv2(fd, &iov, 1, (off_t)offset, RWF_NOWAIT);
    return r >= 0 ? (long)r : -errno;
}

void cju_statx_decode(const cju_statx_buf *buf, cju_stat *o) {
    const struct statx *sx = (const struct statx *)buf->bytes;
    o->dev = makedev(sx->stx_dev_major, sx->stx_dev_minor);
    o->ino = sx->stx_ino;
    o->nlink = sx->stx_nlink;
    o->rdev = makedev(sx->stx_rdev_major, sx->stx_rdev_minor);
    o->size = sx->stx_size;
    o->blocks = sx->stx_blocks;
    o->mode = sx->stx_mode;
    o->uid = sx->stx_uid;
    o->gid = sx->stx_gid;
    o->blksize = sx->stx_blksize;
    o->atime_sec = sx->stx_atime.tv_sec; o->atime_nsec = sx->stx_atime.tv_nsec;
    o->mtime_sec = sx->stx_mtime.tv_sec; o->mtime_nsec = sx->stx_mtime.tv_nsec;
    o->ctime_sec = sx->stx_ctime.tv_sec; o->ctime_nsec = sx->stx_ctime.tv_nsec;
}

long cju_getdents64(int fd, void *buf, size_t n) {
    long r = syscall(SYS_getdents64, fd, buf, n);
    return r >= 0 ? r : -errno;
}
