// cjuring.h: the liburing shim. liburing's own header (and its copy of the kernel's
// io_uring.h) would clash in Swift with other modules that include the kernel headers,
// so nothing but <stdint.h>/<stddef.h> is included here: the ring and SQEs are opaque,
// and each operation Swift needs is a small C function.
#ifndef CJURING_H
#define CJURING_H

#include <stddef.h>
#include <stdint.h>

typedef struct cju_ring cju_ring;
typedef struct cju_sqe cju_sqe;

/// struct statx's bytes (filled by the kernel), decoded with cju_statx_decode.
typedef struct { _Alignas(8) unsigned char bytes[256]; } cju_statx_buf;

/// The stat fields UThreads' VFS reports.
typedef struct {
    uint64_t dev, ino, nlink, rdev, size, blocks;
    uint32_t mode, uid, gid, blksize;
    int64_t atime_sec, mtime_sec, ctime_sec;
    uint32_t atime_nsec, mtime_nsec, ctime_nsec;
} cju_stat;

/// A ring with `entries` SQEs, or NULL with *error = -errno.
cju_ring *cju_ring_create(unsigned entries, int *error);
void cju_ring_destroy(cju_ring *ring);
/// Posts to `fd` (an eventfd) on every completion. 0 or -errno.
int cju_ring_register_eventfd(cju_ring *ring, int fd);
/// A free SQE, or NULL when the queue is full.
cju_sqe *cju_get_sqe(cju_ring *ring);
/// Submits queued SQEs; returns how many or -errno.
int cju_submit(cju_ring *ring);
/// CQEs waiting (no system call).
unsigned cju_cq_ready(cju_ring *ring);
/// Takes one CQE if any: 1 and its user data and result, else 0.
int cju_take_cqe(cju_ring *ring, uint64_t *user_data, int32_t *result);

void cju_prep_openat(cju_sqe *sqe, int dfd, const char *path, int flags, unsigned mode, uint64_t data);
void cju_prep_statx(cju_sqe *sqe, int dfd, const char *path, int flags, unsigned mask, cju_statx_buf *out, uint64_t data);
void cju_prep_poll_add(cju_sqe *sqe, int fd, unsigned mask, uint64_t data);
void cju_prep_read(cju_sqe *sqe, int fd, void *buf, unsigned n, uint64_t offset, uint64_t data);
void cju_prep_write(cju_sqe *sqe, int fd, const void *buf, unsigned n, uint64_t offset, uint64_t data);
void cju_prep_fsync(cju_sqe *sqe, int fd, uint64_t data);
void cju_prep_close(cju_sqe *sqe, int fd, uint64_t data);
void cju_prep_mkdirat(cju_sqe *sqe, int dfd, const char *path, unsigned mode, uint64_t data);
void cju_prep_unlinkat(cju_sqe *sqe, int dfd, const char *path, int flags, uint64_t data);
void cju_prep_renameat(cju_sqe *sqe, int olddfd, const char *oldpath, int newdfd, const char *newpath, uint64_t data);
void cju_prep_symlinkat(cju_sqe *sqe, const char *target, int dfd, const char *path, uint64_t data);
void cju_prep_linkat(cju_sqe *sqe, int olddfd, const char *oldpath, int newdfd, const char *newpath, uint64_t data);

/// statx(2) directly; 0 or -errno.
int cju_statx_direct(int dfd, const char *path, int flags, unsigned mask, cju_statx_buf *out);
void cju_statx_decode(const cju_statx_buf *buf, cju_stat *out);
/// openat2(2) with RESOLVE_CACHED: opens only when every component is in the dentry
/// cache, so it never blocks; the fd or -errno (-EAGAIN: not cached, or O_CREAT/O_TRUNC).
int cju_openat_cached(int dfd, const char *path, int flags);
/// openat2(2) with RESOLVE_CACHED and RESOLVE_NO_SYMLINKS: the fd, or -errno (-ELOOP for
/// a symlink anywhere on the path, -EAGAIN for a component not cached).
int cju_openat_unwalked(int dfd, const char *path, int flags);
/// preadv2(2) with RWF_NOWAIT: reads only what is in the page cache, never blocks; bytes
/// or -errno (-EAGAIN: it would block).
long cju_pread_nowait(int fd, void *buf, size_t n, uint64_t offset);
/// getdents64(2); bytes or -errno.
long cju_getdents64(int fd, void *buf, size_t n);

/// Flag values for the calls above.
enum {
    CJU_AT_SYMLINK_NOFOLLOW = 0x100,
    CJU_AT_REMOVEDIR = 0x200,
    CJU_AT_EMPTY_PATH = 0x1000,
    CJU_STATX_BASIC_STATS = 0x7ff,
};

#endif
