// cxdp.h: batch wrappers over AF_XDP sockets through libxdp/libbpf (NICQueuesXDP).
#ifndef CXDP_H
#define CXDP_H

#include <stdint.h>
#include <stddef.h>
#include <stdbool.h>

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

#endif
