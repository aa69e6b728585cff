// cverbs.h: batch wrappers over ibverbs raw-packet queues (NICQueuesVerbs).
#ifndef CVERBS_H
#define CVERBS_H

#include <stdint.h>
#include <stddef.h>
#include <stdbool.h>

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
