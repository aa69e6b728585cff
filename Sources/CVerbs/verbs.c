// verbs.c: ibverbs raw-packet queues for mlx5 (ConnectX): protection domain, one memory
// region over the packet pool, a raw-packet QP with its CQs, a flow steering rule for
// the instance's MAC (and IPv4 address), batched posting and completion polling.
#include "cverbs.h"
#include "cnicqueues.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <infiniband/verbs.h>

enum { BATCH = 64 };

struct cnq_verbs {
    struct ibv_context *ctx;
    struct ibv_pd *pd;
    struct ibv_mr *mr;
    struct ibv_comp_channel *channel;
    struct ibv_cq *rx_cq, *tx_cq;
    struct ibv_qp *qp;
    struct ibv_flow *flow;
    uint8_t *base;
    // Sends are signalled once per batch: the completion of the last one says all the
    // earlier ones are done. Outstanding send addresses wait here in posting order.
    uint64_t *tx_addrs;
    uint32_t tx_depth;
    uint64_t tx_head, tx_done, tx_tail;
    // Receive completions taken by cnq_verbs_arm's last look, handed out first.
    struct ibv_wc stash[BATCH];
    int stash_n;
    bool armed;          // a completion event is requested and not yet consumed
    bool rx_since_arm;   // completions seen since: an event may be waiting on the channel   // sequence numbers: [head, tail) not yet reclaimed, [head, done) complete
};

int cnq_verbs_device_list(char *names, size_t len) {
    int n = 0;
    struct ibv_device **list = ibv_get_device_list(&n);
    if (names && len) names[0] = 0;
    if (!list) return errno == ENOSYS ? 0 : -errno;   // ENOSYS: no RDMA subsystem at all
    size_t used = 0;
    for (int i = 0; i < n && names; i++) {
        int w = snprintf(names + used, len - used, "%s%s", i ? "," : "", ibv_get_device_name(list[i]));
        if (w < 0 || (size_t)w >= len - used) break;
        used += (size_t)w;
    }
    ibv_free_device_list(list);
    return n;
}

static int fail(struct cnq_verbs *v, char *msg, size_t msglen, const char *what, int err) {
    snprintf(msg, msglen, "%s: %s", what, strerror(err));
    cnq_verbs_close(v);
    return -err;
}

int cnq_verbs_open(const struct cnq_verbs_config *cfg, struct cnq_verbs **out, char *msg, size_t msglen) {
    int n = 0;
    struct ibv_device **list = ibv_get_device_list(&n);
    if (!list || n == 0) {
        if (list) ibv_free_device_list(list);
        snprintf(msg, msglen, "no RDMA device found");
        return -ENODEV;
    }
    struct ibv_device *dev = NULL;
    for (int i = 0; i < n; i++)
        if (!cfg->device[0] || strcmp(ibv_get_device_name(list[i]), cfg->device) == 0) { dev = list[i]; break; }
    if (!dev) {
        ibv_free_device_list(list);
        snprintf(msg, msglen, "no RDMA device named %s", cfg->device);
        return -ENODEV;
    }
    struct cnq_verbs *v = calloc(1, sizeof *v);
    if (!v) { ibv_free_device_list(list); return -ENOMEM; }
    v->ctx = ibv_open_device(dev);
    ibv_free_device_list(list);
    if (!v->ctx) return fail(v, msg, msglen, "ibv_open_device", errno ? errno : ENODEV);

    struct ibv_port_attr port;
    if (ibv_query_port(v->ctx, cfg->port, &port)) return fail(v, msg, msglen, "ibv_query_port", errno ? errno : EINVAL);
    if (port.link_layer != IBV_LINK_LAYER_ETHERNET)
        return fail(v, msg, msglen, "port is not Ethernet (raw packet QPs need RoCE/Ethernet)", EPROTONOSUPPORT);
    v->base = cfg->region;
    if (!(v->pd = ibv_alloc_pd(v->ctx))) return fail(v, msg, msglen, "ibv_alloc_pd", errno ? errno : ENOMEM);
    if (!(v->mr = ibv_reg_mr(v->pd, cfg->region, cfg->region_size, IBV_ACCESS_LOCAL_WRITE)))
        return fail(v, msg, msglen, "ibv_reg_mr", errno ? errno : ENOMEM);
    if (!(v->channel = ibv_create_comp_channel(v->ctx)))
        return fail(v, msg, msglen, "ibv_create_comp_channel", errno ? errno : ENOMEM);
    int fl = fcntl(v->channel->fd, F_GETFL);
    fcntl(v->channel->fd, F_SETFL, fl | O_NONBLOCK);
    if (!(v->rx_cq = ibv_create_cq(v->ctx, (int)cfg->rx_depth, NULL, v->channel, 0)))
        return fail(v, msg, msglen, "ibv_create_cq(rx)", errno ? errno : ENOMEM);
    if (!(v->tx_cq = ibv_create_cq(v->ctx, (int)cfg->tx_depth, NULL, NULL, 0)))
        return fail(v, msg, msglen, "ibv_create_cq(tx)", errno ? errno : ENOMEM);

    struct ibv_qp_init_attr qpa = {
        .send_cq = v->tx_cq, .recv_cq = v->rx_cq, .qp_type = IBV_QPT_RAW_PACKET, .sq_sig_all = 0,
        .cap = { .max_send_wr = cfg->tx_depth, .max_recv_wr = cfg->rx_depth, .max_send_sge = 1, .max_recv_sge = 1 },
    };
    if (!(v->qp = ibv_create_qp(v->pd, &qpa)))
        return fail(v, msg, msglen, "ibv_create_qp(RAW_PACKET) (needs CAP_NET_RAW)", errno ? errno : EPERM);
    struct ibv_qp_attr a = { .qp_state = IBV_QPS_INIT, .port_num = cfg->port };
    if (ibv_modify_qp(v->qp, &a, IBV_QP_STATE | IBV_QP_PORT)) return fail(v, msg, msglen, "ibv_modify_qp(INIT)", errno);
    memset(&a, 0, sizeof a);
    a.qp_state = IBV_QPS_RTR;
    if (ibv_modify_qp(v->qp, &a, IBV_QP_STATE)) return fail(v, msg, msglen, "ibv_modify_qp(RTR)", errno);
    memset(&a, 0, sizeof a);
    a.qp_state = IBV_QPS_RTS;
    if (ibv_modify_qp(v->qp, &a, IBV_QP_STATE)) return fail(v, msg, msglen, "ibv_modify_qp(RTS)", errno);

    // Steer frames for our MAC (and IPv4 address) to this QP.
    struct __attribute__((packed, aligned(8))) {
        struct ibv_flow_attr attr;
        struct ibv_flow_spec_eth eth;
        struct ibv_flow_spec_ipv4 ip;
    } rule;
    memset(&rule, 0, sizeof rule);
    rule.attr.type = IBV_FLOW_ATTR_NORMAL;
    rule.attr.num_of_specs = cfg->ipv4 ? 2 : 1;
    rule.attr.size = (uint16_t)(sizeof rule.attr + sizeof rule.eth + (cfg->ipv4 ? sizeof rule.ip : 0));
    rule.attr.port = cfg->port;
    rule.eth.type = IBV_FLOW_SPEC_ETH;
    rule.eth.size = sizeof rule.eth;
    memcpy(rule.eth.val.dst_mac, cfg->mac, 6);
    memset(rule.eth.mask.dst_mac, 0xff, 6);
    rule.ip.type = IBV_FLOW_SPEC_IPV4;
    rule.ip.size = sizeof rule.ip;
    rule.ip.val.dst_ip = cfg->ipv4;
    rule.ip.mask.dst_ip = 0xffffffff;
    if (!(v->flow = ibv_create_flow(v->qp, &rule.attr))) return fail(v, msg, msglen, "ibv_create_flow", errno);

    v->tx_depth = cfg->tx_depth;
    if (!(v->tx_addrs = calloc(cfg->tx_depth, sizeof(uint64_t)))) return fail(v, msg, msglen, "calloc", ENOMEM);
    if (ibv_req_notify_cq(v->rx_cq, 0)) return fail(v, msg, msglen, "ibv_req_notify_cq", errno);
    v->armed = true;
    *out = v;
    return 0;
}

void cnq_verbs_close(struct cnq_verbs *v) {
    if (!v) return;
    if (v->flow) ibv_destroy_flow(v->flow);
    if (v->qp) ibv_destroy_qp(v->qp);
    if (v->tx_cq) ibv_destroy_cq(v->tx_cq);
    if (v->rx_cq) ibv_destroy_cq(v->rx_cq);
    if (v->channel) ibv_destroy_comp_channel(v->channel);
    if (v->mr) ibv_dereg_mr(v->mr);
    if (v->pd) ibv_dealloc_pd(v->pd);
    if (v->ctx) ibv_close_device(v->ctx);
    free(v->tx_addrs);
    free(v);
}

int cnq_verbs_channel_fd(const struct cnq_verbs *v) { return v->channel->fd; }

int cnq_verbs_post_recv(struct cnq_verbs *v, const uint64_t *addrs, const uint32_t *lens, uint32_t n) {
    struct ibv_recv_wr wr[BATCH], *bad;
    struct ibv_sge sge[BATCH];
    uint32_t done = 0;
    while (done < n) {
        uint32_t k = n - done < BATCH ? n - done : BATCH;
        for (uint32_t i = 0; i < k; i++) {
            sge[i] = (struct ibv_sge){ .addr = (uintptr_t)(v->base + addrs[done + i]), .length = lens[done + i], .lkey = v->mr->lkey };
            wr[i] = (struct ibv_recv_wr){ .wr_id = addrs[done + i], .sg_list = &sge[i], .num_sge = 1, .next = i + 1 < k ? &wr[i + 1] : NULL };
        }
        int r = ibv_post_recv(v->qp, wr, &bad);
        if (r) return done ? (int)(done + (uint32_t)(bad - wr)) : -r;
        done += k;
    }
    return (int)done;
}

int cnq_verbs_post_send(struct cnq_verbs *v, const uint64_t *addrs, const uint32_t *lens, uint32_t n) {
    struct ibv_send_wr wr[BATCH], *bad;
    struct ibv_sge sge[BATCH];
    uint32_t room = v->tx_depth - (uint32_t)(v->tx_tail - v->tx_head);
    if (n > room) n = room;
    if (n > BATCH) n = BATCH;
    if (n == 0) return 0;
    for (uint32_t i = 0; i < n; i++) {
        v->tx_addrs[(v->tx_tail + i) % v->tx_depth] = addrs[i];
        sge[i] = (struct ibv_sge){ .addr = (uintptr_t)(v->base + addrs[i]), .length = lens[i], .lkey = v->mr->lkey };
        wr[i] = (struct ibv_send_wr){ .wr_id = v->tx_tail + i + 1, .sg_list = &sge[i], .num_sge = 1,
                                      .opcode = IBV_WR_SEND, .next = i + 1 < n ? &wr[i + 1] : NULL,
                                      .send_flags = i + 1 == n ? IBV_SEND_SIGNALED : 0 };
    }
    int r = ibv_post_send(v->qp, wr, &bad);
    if (r) return -r;
    v->tx_tail += n;
    return (int)n;
}

int cnq_verbs_poll_rx(struct cnq_verbs *v, uint64_t *addrs, uint32_t *lens, uint32_t max) {
    struct ibv_wc wc[BATCH];
    if (max > BATCH) max = BATCH;
    int got;
    if (v->stash_n > 0) {   // what cnq_verbs_arm found first
        got = v->stash_n < (int)max ? v->stash_n : (int)max;
        memcpy(wc, v->stash, sizeof(struct ibv_wc) * (size_t)got);
        memmove(v->stash, v->stash + got, sizeof(struct ibv_wc) * (size_t)(v->stash_n - got));
        v->stash_n -= got;
    } else {
        got = ibv_poll_cq(v->rx_cq, (int)max, wc);
        if (got < 0) return -EIO;
    }
    for (int i = 0; i < got; i++) {
        addrs[i] = wc[i].wr_id;
        lens[i] = wc[i].status == IBV_WC_SUCCESS ? wc[i].byte_len : 0;
    }
    if (got > 0) v->rx_since_arm = true;
    return got;
}

int cnq_verbs_poll_tx(struct cnq_verbs *v, uint64_t *addrs, uint32_t max) {
    struct ibv_wc wc[8];
    int got = ibv_poll_cq(v->tx_cq, 8, wc);
    if (got < 0) return -EIO;
    // Signalled completions arrive in order; everything up to the latest is done (its
    // status does not matter for reclaiming the buffer). Hand back at most `max` now.
    for (int i = 0; i < got; i++) if (wc[i].wr_id > v->tx_done) v->tx_done = wc[i].wr_id;
    uint32_t out = 0;
    while (v->tx_head < v->tx_done && out < max) addrs[out++] = v->tx_addrs[v->tx_head++ % v->tx_depth];
    return (int)out;
}

int cnq_verbs_arm(struct cnq_verbs *v) {
    if (v->stash_n > 0) return 0;
    if (!v->armed || v->rx_since_arm) {
        // The event that woke us (if any) is consumed and acknowledged, then the CQ is
        // armed again. Only after traffic: an idle poll makes no system call here.
        cnq_verbs_ack_events(v);
        int r = ibv_req_notify_cq(v->rx_cq, 0);
        if (r) return -r;
        v->armed = true;
        v->rx_since_arm = false;
    }
    // A completion that landed before the arm raised no event: look once more.
    int n = ibv_poll_cq(v->rx_cq, BATCH, v->stash);
    if (n < 0) return -EIO;
    v->stash_n = n;
    return n == 0 ? 1 : 0;
}

void cnq_verbs_ack_events(struct cnq_verbs *v) {
    struct ibv_cq *cq;
    void *ctx;
    unsigned n = 0;
    while (ibv_get_cq_event(v->channel, &cq, &ctx) == 0) n++;
    if (n) ibv_ack_cq_events(v->rx_cq, n);
}
