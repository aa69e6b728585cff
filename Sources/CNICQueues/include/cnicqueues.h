// cnicqueues.h: the C side of NICQueues: atomics over shared memory, TAP/AF_PACKET/fd
// passing helpers, and batch wrappers over AF_XDP (libxdp) and ibverbs raw-packet queues.
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

/// A test-and-test-and-set spin lock in a 32-bit word (pool free lists).
static inline void cnq_spin_lock(uint32_t *l) {
    for (;;) {
        if (__atomic_exchange_n(l, 1, __ATOMIC_ACQUIRE) == 0) return;
        while (__atomic_load_n(l, __ATOMIC_RELAXED)) __builtin_ia32_pause();
    }
}
static inline void cnq_spin_unlock(uint32_t *l) { __atomic_store_n(l, 0, __ATOMIC_RELEASE); }

/// This OS thread's ordinal (0, 1, 2, ... in order of first call); selects a pool's
/// per-kthread cache. Kthreads are OS threads, and a pool call never parks mid-way.
int cnq_thread_ordinal(void);

// MARK: host helpers (each returns >= 0 or -errno)

int cnq_eventfd(void);
/// Opens /dev/net/tun as IFF_TAP|IFF_NO_PI (|IFF_MULTI_QUEUE), non-blocking, on `name`
/// (created if absent); the kernel's chosen name is written back to `name` (IFNAMSIZ).
int cnq_tap_open(char *name, bool multiQueue);
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

// MARK: AF_XDP (libxdp's xsk API)

struct cnq_xsk;
struct cnq_xsk_config {
    const char *ifname;
    uint32_t queue;
    void *umem_area;
    uint64_t umem_size;
    uint32_t frame_size;
    uint32_t ring_size;       // fill, completion, RX and TX ring entries (power of two)
    int mode;                 // enum cnq_xdp_mode
    bool skb_mode;            // XDP_FLAGS_SKB_MODE (generic XDP)
    bool own_program;         // skip libxdp's program; load our own redirect program
};
/// Zero-copy where the driver supports it, else copy (AUTO); or only one of them.
enum cnq_xdp_mode { CNQ_XDP_AUTO = 0, CNQ_XDP_COPY = 1, CNQ_XDP_ZERO_COPY = 2 };
/// How the redirect program was loaded (for logs and docs).
enum cnq_xdp_prog_source { CNQ_XDP_PROG_LIBXDP = 1, CNQ_XDP_PROG_OWN = 2 };

/// Creates the UMEM, the four rings and the socket, and loads the XDP redirect program
/// (libxdp's default; on failure our own, through libbpf). Returns -errno with a message.
int cnq_xsk_create(const struct cnq_xsk_config *cfg, struct cnq_xsk **out, char *msg, size_t msglen);
void cnq_xsk_destroy(struct cnq_xsk *x);
int cnq_xsk_fd(const struct cnq_xsk *x);
int cnq_xsk_prog_source(const struct cnq_xsk *x);
/// True when the socket is bound in zero-copy mode.
bool cnq_xsk_zero_copy(const struct cnq_xsk *x);
/// Puts up to n frame addresses on the fill ring; returns how many.
uint32_t cnq_xsk_fill(struct cnq_xsk *x, const uint64_t *addrs, uint32_t n);
/// Frames the fill ring can still take.
uint32_t cnq_xsk_fill_free(struct cnq_xsk *x);
/// Takes up to max received descriptors.
uint32_t cnq_xsk_rx(struct cnq_xsk *x, uint64_t *addrs, uint32_t *lens, uint32_t max);
/// Puts up to n descriptors on the TX ring and kicks the kernel; returns how many.
uint32_t cnq_xsk_tx(struct cnq_xsk *x, const uint64_t *addrs, const uint32_t *lens, uint32_t n);
/// Free slots on the TX ring.
uint32_t cnq_xsk_tx_free(struct cnq_xsk *x);
/// True when the RX ring holds frames.
bool cnq_xsk_rx_ready(struct cnq_xsk *x);
/// Takes up to max completed TX addresses (kicking the kernel first if it needs it).
uint32_t cnq_xsk_complete(struct cnq_xsk *x, uint64_t *addrs, uint32_t max);
/// Wakes the kernel for RX when the fill ring asks for it (needs_wakeup).
void cnq_xsk_rx_wakeup(struct cnq_xsk *x);

// MARK: ibverbs raw-packet queues (mlx5)

struct cnq_verbs;
struct cnq_verbs_config {
    const char *device;      // ibv device name, e.g. mlx5_0
    uint8_t port;            // 1-based
    void *region;            // the pool's memory, registered as one MR
    uint64_t region_size;
    uint32_t rx_depth, tx_depth;
    uint8_t mac[6];          // steer frames for this MAC (and, if ipv4 != 0, this address)
    uint32_t ipv4;           // network byte order, 0 = MAC only
};
/// Number of RDMA devices and their names (comma-separated) in `names`.
int cnq_verbs_device_list(char *names, size_t len);
int cnq_verbs_open(const struct cnq_verbs_config *cfg, struct cnq_verbs **out, char *msg, size_t msglen);
void cnq_verbs_close(struct cnq_verbs *v);
int cnq_verbs_channel_fd(const struct cnq_verbs *v);
/// Posts n receive buffers (address in the region, length) as one chain of work requests.
int cnq_verbs_post_recv(struct cnq_verbs *v, const uint64_t *addrs, const uint32_t *lens, uint32_t n);
/// Posts n sends as one chain, the last one signalled; returns how many were posted.
int cnq_verbs_post_send(struct cnq_verbs *v, const uint64_t *addrs, const uint32_t *lens, uint32_t n);
/// Polls the receive CQ: addresses and byte counts of completed receives; failed
/// completions are returned with length 0.
int cnq_verbs_poll_rx(struct cnq_verbs *v, uint64_t *addrs, uint32_t *lens, uint32_t max);
/// Polls the send CQ: addresses of sends whose buffers may be reused.
int cnq_verbs_poll_tx(struct cnq_verbs *v, uint64_t *addrs, uint32_t max);
/// Arms the receive CQ's completion event (the channel fd becomes readable) unless it
/// is armed already, then looks at the CQ once more: 1 = empty (sleep), 0 = completions
/// are waiting (kept for the next cnq_verbs_poll_rx), <0 = -errno.
int cnq_verbs_arm(struct cnq_verbs *v);
/// Consumes pending completion events from the channel fd (non-blocking).
void cnq_verbs_ack_events(struct cnq_verbs *v);

#endif
