// cnq_steer.h: flow-aware queue steering for a multi-queue TAP (tap_steer.c): a
// TUNSETSTEERINGEBPF program over three maps, so that each process of a forked instance
// receives the segments of its own TCP connections on its own queue.
#ifndef CNQ_STEER_H
#define CNQ_STEER_H

#include <stdint.h>
#include <stdbool.h>
#include <stddef.h>

/// Queues a steered TAP has (a bit each in a port's mask).
#define CNQ_STEER_QUEUES 8

/// The steering of one TAP, shared by the processes of an instance (inherited by fork:
/// descriptors and MAP_SHARED mappings).
struct cnq_steer {
    int prog_fd;
    int flows_fd;      // LRU hash: u64 (remote ip << 32 | remote port << 16 | local port) -> u32 queue
    int ports_fd;      // array[65536] of u64 masks: queues accepting on a local TCP port (mmapped;
                       // an array's values are 8-byte aligned, so a u32 would be padded anyway)
    int arp_fd;        // hash: u32 ip (host order) -> u32 queue that asked for it last
    uint64_t *ports;   // the mmapped masks
    int32_t *slots;    // CNQ_STEER_QUEUES owner pids (shared anonymous page); 0: free
    int queue_fds[CNQ_STEER_QUEUES];   // [0] is the device's own (not owned here)
};

/// Loads the program and its maps, attaches it to the TAP through `queue0_fd`, then opens
/// queues 1..CNQ_STEER_QUEUES-1 of `ifname` (so their indices are fixed). 0 or -errno,
/// with a reason in `msg`. On failure nothing stays attached or open.
int cnq_steer_setup(struct cnq_steer *s, int queue0_fd, const char *ifname, int32_t owner, char *msg, size_t msglen);
/// Takes a free queue (1...) for `pid`; a queue whose owner is gone is forgotten and taken.
/// Returns the queue or -1.
int cnq_steer_claim(struct cnq_steer *s, int32_t pid);
/// Frees every queue `pid` owned, with its ports and flows. Returns how many.
int cnq_steer_release_pid(struct cnq_steer *s, int32_t pid);
/// Sets or clears `queue`'s bit in local port `port`'s mask (atomic, no system call).
void cnq_steer_accepting(struct cnq_steer *s, uint16_t port, int queue, bool on);
/// Records (queue >= 0) or removes (queue < 0) a flow. 0 or -errno.
int cnq_steer_flow(struct cnq_steer *s, uint32_t remote_ip, uint16_t remote_port, uint16_t local_port, int queue);
/// The ARP reply for `ip` goes to `queue`. 0 or -errno.
int cnq_steer_arp(struct cnq_steer *s, uint32_t ip, int queue);
/// The queue the maps give a flow (-1: none; for tests and diagnostics).
int cnq_steer_lookup_flow(struct cnq_steer *s, uint32_t remote_ip, uint16_t remote_port, uint16_t local_port);

/// Closes this process's descriptors and mappings of `s` (not queue 0's descriptor).
void cnq_steer_close(struct cnq_steer *s);
/// pidfd_open(2) (a descriptor readable once the process has exited), or -errno.
int cnq_pidfd_open(int32_t pid);

#endif
