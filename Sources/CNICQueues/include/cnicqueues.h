// cnicqueues.h: the C side of NICQueues: atomics over shared memory, TAP/AF_PACKET/fd
// passing helpers (no C library beyond libc; AF_XDP is in CXDP, ibverbs in CVerbs).
#ifndef CNICQUEUES_H
#define CNICQUEUES_H

#include <stdint.h>
#include <stddef.h>
#include <stdbool.h>
#include <sys/epoll.h>

// MARK: atomics on plain memory (shared mappings, rings)

static inline uint32_t cnq_load_acquire32(const uint32_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static inline uint32_t cnq_load_relaxed32(const uint32_t *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
static inline void cnq_store_release32(uint32_t *p, uint32_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
static inline void cnq_store_relaxed32(uint32_t *p, uint32_t v) { __atomic_store_n(p, v, __ATOMIC_RELAXED); }
static inline uint32_t cnq_exchange32(uint32_t *p, uint32_t v) { return __atomic_exchange_n(p, v, __ATOMIC_SEQ_CST); }
static inline uint32_t cnq_fetch_add32(uint32_t *p, uint32_t v) { return __atomic_fetch_add(p, v, __ATOMIC_SEQ_CST); }
static inline uint64_t cnq_load_relaxed64(const uint64_t *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
static inline void cnq_add_relaxed64(uint64_t *p, uint64_t v) { __atomic_fetch_add(p, v, __ATOMIC_RELAXED); }
static inline void cnq_fence(void) { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
static inline void cnq_cpu_relax(void) { __builtin_ia32_pause(); }

/// This OS thread's ordinal (0, 1, 2, ... in order of first call); selects a pool's
/// per-kthread cache. Kthreads are OS threads, and a pool call never parks mid-way.
int cnq_thread_ordinal(void);

// MARK: host helpers (each returns >= 0 or -errno)

int cnq_eventfd(void);
/// Opens /dev/net/tun as IFF_TAP|IFF_NO_PI (|IFF_MULTI_QUEUE) (|IFF_VNET_HDR, with a
/// 10-byte struct virtio_net_hdr before every frame), non-blocking, on `name` (created
/// if absent); the kernel's chosen name is written back to `name` (IFNAMSIZ).
int cnq_tap_open(char *name, bool multiQueue, bool vnetHeader);
/// TUNSETOFFLOAD: what the kernel may hand us unchecksummed or unsegmented (TUN_F_*).
int cnq_tap_set_offload(int fd, unsigned flags);
/// struct virtio_net_hdr's size and TUNSETOFFLOAD's flags (checked against the kernel's
/// headers in host.c).
#define CNQ_VNET_HDR_LEN 10
#define CNQ_TUN_F_CSUM 0x01
#define CNQ_TUN_F_TSO4 0x02
#define CNQ_TUN_F_TSO6 0x04
int cnq_if_hwaddr(const char *name, uint8_t mac[6]);
int cnq_if_mtu(const char *name);
int cnq_if_index(const char *name);
/// An AF_PACKET SOCK_RAW socket bound to `ifindex`, non-blocking; receiving every
/// protocol when `receive`, send-only otherwise.
int cnq_packet_socket(int ifindex, bool receive);
/// Sends `nfds` descriptors and `len` bytes over a unix socket (SCM_RIGHTS).
int cnq_send_fds(int sock, const int *fds, int nfds, const void *bytes, size_t len);
/// Receives up to `maxfds` descriptors (count in *nfds) and up to `len` bytes.
int cnq_recv_fds(int sock, int *fds, int maxfds, int *nfds, void *bytes, size_t len);
/// Binds (server) or connects (client) a SOCK_SEQPACKET unix socket in the abstract
/// namespace under `name`.
int cnq_unix_listen(const char *name);
int cnq_unix_connect(const char *name);
int cnq_accept(int listen_fd);
/// True when the other end of a connected socket has closed it (or exited).
bool cnq_peer_hung_up(int sock);

/// sendmmsg of n buffers laid out `stride` apart at `base` (non-blocking); returns how many went.
int cnq_send_batch(int fd, const uint8_t *base, size_t stride, const uint32_t *lens, unsigned n);
/// recvmmsg of up to n messages into buffers `stride` apart (non-blocking); lengths in `lens`.
int cnq_recv_batch(int fd, uint8_t *base, size_t stride, size_t cap, uint32_t *lens, unsigned n);
/// Two UDP sockets on 127.0.0.1: fds[0] connected to fds[1] (both non-blocking).
int cnq_udp_pair(int fds[2]);

#endif
