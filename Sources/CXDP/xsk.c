// xsk.c: AF_XDP through libxdp's xsk API: UMEM, fill/completion/RX/TX rings, the socket,
// and the XDP redirect program (libxdp's default, or our own loaded through libbpf).
#include "cxdp.h"
#include "cnicqueues.h"
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <net/if.h>
#include <sys/socket.h>
#include <linux/bpf.h>
#include <linux/if_link.h>
#include <linux/if_xdp.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <xdp/libxdp.h>
#include <xdp/xsk.h>

struct cnq_xsk {
    struct xsk_umem *umem;
    struct xsk_socket *xsk;
    struct xsk_ring_prod fill, tx;
    struct xsk_ring_cons comp, rx;
    int ifindex;
    uint32_t xdp_flags;
    int own_prog_fd, own_map_fd;   // -1 unless we loaded the program ourselves
    int prog_source;
    bool zero_copy;
};

// libxdp prints through a callback; keep its last warning for our error message.
static __thread char last_libxdp_message[256];
static int quiet_print(enum libxdp_print_level level, const char *fmt, va_list ap) {
    if (level == LIBXDP_WARN) vsnprintf(last_libxdp_message, sizeof last_libxdp_message, fmt, ap);
    return 0;
}

static int quiet_libbpf(enum libbpf_print_level level, const char *fmt, va_list ap) {
    (void)level; (void)fmt; (void)ap;
    return 0;
}

// Our redirect program, assembled by hand (no clang needed at build time):
//   r2 = ctx->rx_queue_index; r1 = &xsks_map; r3 = XDP_PASS;
//   return bpf_redirect_map(r1, r2, r3)   // XDP_PASS when no socket sits on this queue
static int load_own_program(int map_fd, char *msg, size_t msglen) {
    struct bpf_insn prog[] = {
        { .code = BPF_LDX | BPF_MEM | BPF_W, .dst_reg = BPF_REG_2, .src_reg = BPF_REG_1,
          .off = offsetof(struct xdp_md, rx_queue_index) },
        { .code = BPF_LD | BPF_DW | BPF_IMM, .dst_reg = BPF_REG_1, .src_reg = BPF_PSEUDO_MAP_FD, .imm = map_fd },
        { 0 },
        { .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_3, .imm = XDP_PASS },
        { .code = BPF_JMP | BPF_CALL, .imm = BPF_FUNC_redirect_map },
        { .code = BPF_JMP | BPF_EXIT },
    };
    char log[1024] = "";
    LIBBPF_OPTS(bpf_prog_load_opts, opts, .log_buf = log, .log_size = sizeof log, .log_level = 1);
    int fd = bpf_prog_load(BPF_PROG_TYPE_XDP, "jnq_xsk_redir", "GPL", prog, sizeof prog / sizeof prog[0], &opts);
    if (fd < 0) snprintf(msg, msglen, "bpf_prog_load(XDP redirect): %s; verifier: %.200s", strerror(-fd), log);
    return fd;
}

/// Binds the socket with `bind_flags` and sees that a redirect program feeds it. On
/// failure everything this call made is undone (the UMEM stays).
static int attach(struct cnq_xsk *x, const struct cnq_xsk_config *cfg, uint16_t bind_flags, char *msg, size_t msglen) {
    x->xdp_flags = cfg->skb_mode ? XDP_FLAGS_SKB_MODE : 0;
    struct xsk_socket_config scfg = {
        .rx_size = cfg->ring_size, .tx_size = cfg->ring_size,
        .libxdp_flags = 0, .xdp_flags = x->xdp_flags,
        .bind_flags = XDP_USE_NEED_WAKEUP | bind_flags,
    };
    last_libxdp_message[0] = 0;
    int r = cfg->own_program ? -EOPNOTSUPP
                             : xsk_socket__create(&x->xsk, cfg->ifname, cfg->queue, x->umem, &x->rx, &x->tx, &scfg);
    if (r == 0) {
        x->prog_source = CNQ_XDP_PROG_LIBXDP;
        return 0;
    }
    x->xsk = NULL;
    // libxdp's dispatcher could not be loaded (it wants bpffs, BTF and freplace), or the
    // bind failed: bind the socket alone and attach our own redirect program.
    char first[300];
    if (cfg->own_program) snprintf(first, sizeof first, "own program asked for"); else
    snprintf(first, sizeof first, "libxdp: %s%s%s", strerror(-r),
             last_libxdp_message[0] ? "; " : "", last_libxdp_message);
    scfg.libxdp_flags = XSK_LIBXDP_FLAGS__INHIBIT_PROG_LOAD;
    r = xsk_socket__create(&x->xsk, cfg->ifname, cfg->queue, x->umem, &x->rx, &x->tx, &scfg);
    if (r) {
        x->xsk = NULL;
        snprintf(msg, msglen, "xsk_socket__create(%s queue %u%s): %s (%s)", cfg->ifname, cfg->queue,
                 (bind_flags & XDP_ZEROCOPY) ? ", zero-copy" : "", strerror(-r), first);
        return r;
    }
    x->own_map_fd = bpf_map_create(BPF_MAP_TYPE_XSKMAP, "jnq_xsks", sizeof(int), sizeof(int), 64, NULL);
    if (x->own_map_fd < 0) {
        r = x->own_map_fd;
        snprintf(msg, msglen, "bpf_map_create(XSKMAP): %s (%s)", strerror(-r), first);
        goto fail;
    }
    x->own_prog_fd = load_own_program(x->own_map_fd, msg, msglen);
    if (x->own_prog_fd < 0) { r = x->own_prog_fd; goto fail; }
    r = bpf_xdp_attach(x->ifindex, x->own_prog_fd, x->xdp_flags | XDP_FLAGS_UPDATE_IF_NOEXIST, NULL);
    if (r && !cfg->skb_mode) {   // no native XDP on this driver: generic XDP
        x->xdp_flags = XDP_FLAGS_SKB_MODE;
        r = bpf_xdp_attach(x->ifindex, x->own_prog_fd, x->xdp_flags | XDP_FLAGS_UPDATE_IF_NOEXIST, NULL);
    }
    if (r) {
        snprintf(msg, msglen, "bpf_xdp_attach(%s): %s (%s)", cfg->ifname, strerror(-r), first);
        close(x->own_prog_fd); x->own_prog_fd = -1;
        goto fail;
    }
    r = xsk_socket__update_xskmap(x->xsk, x->own_map_fd);
    if (r) {
        snprintf(msg, msglen, "xsk_socket__update_xskmap: %s", strerror(-r));
        bpf_xdp_detach(x->ifindex, x->xdp_flags, NULL);
        close(x->own_prog_fd); x->own_prog_fd = -1;
        goto fail;
    }
    x->prog_source = CNQ_XDP_PROG_OWN;
    return 0;
fail:
    if (x->own_map_fd >= 0) { close(x->own_map_fd); x->own_map_fd = -1; }
    xsk_socket__delete(x->xsk);
    x->xsk = NULL;
    return r < 0 ? r : -EINVAL;
}

int cnq_xsk_create(const struct cnq_xsk_config *cfg, struct cnq_xsk **out, char *msg, size_t msglen) {
    libxdp_set_print(quiet_print);
    libbpf_set_print(quiet_libbpf);
    msg[0] = 0;
    int ifindex = cnq_if_index(cfg->ifname);
    if (ifindex < 0) { snprintf(msg, msglen, "no interface %s", cfg->ifname); return ifindex; }
    struct cnq_xsk *x = calloc(1, sizeof *x);
    if (!x) return -ENOMEM;
    x->ifindex = ifindex;
    x->own_prog_fd = x->own_map_fd = -1;

    struct xsk_umem_config ucfg = {
        .fill_size = cfg->ring_size * 2, .comp_size = cfg->ring_size,
        .frame_size = cfg->frame_size, .frame_headroom = 0, .flags = 0,
    };
    int r = xsk_umem__create(&x->umem, cfg->umem_area, cfg->umem_size, &x->fill, &x->comp, &ucfg);
    if (r) { snprintf(msg, msglen, "xsk_umem__create: %s", strerror(-r)); free(x); return r; }

    // Zero-copy where the driver offers it; copy mode where it does not (veth, generic XDP).
    r = -EOPNOTSUPP;
    if (cfg->mode != CNQ_XDP_COPY) {
        r = attach(x, cfg, XDP_ZEROCOPY, msg, msglen);
        if (r == 0) x->zero_copy = true;
    }
    if (r && cfg->mode != CNQ_XDP_ZERO_COPY) {
        char zc[256];
        snprintf(zc, sizeof zc, "%s", msg);
        r = attach(x, cfg, XDP_COPY, msg, msglen);
        if (r && zc[0]) {   // say why both failed
            size_t n = strlen(msg);
            snprintf(msg + n, msglen - n, "; zero-copy: %s", zc);
        }
    }
    if (r) {
        xsk_umem__delete(x->umem);
        free(x);
        return r;
    }
    *out = x;
    return 0;
}

bool cnq_xsk_zero_copy(const struct cnq_xsk *x) { return x->zero_copy; }

void cnq_xsk_destroy(struct cnq_xsk *x) {
    if (!x) return;
    if (x->own_prog_fd >= 0) {
        bpf_xdp_detach(x->ifindex, x->xdp_flags, NULL);
        close(x->own_prog_fd);
    }
    if (x->xsk) xsk_socket__delete(x->xsk);
    if (x->own_map_fd >= 0) close(x->own_map_fd);
    if (x->umem) xsk_umem__delete(x->umem);
    free(x);
}

int cnq_xsk_fd(const struct cnq_xsk *x) { return xsk_socket__fd(x->xsk); }
int cnq_xsk_prog_source(const struct cnq_xsk *x) { return x->prog_source; }

uint32_t cnq_xsk_fill(struct cnq_xsk *x, const uint64_t *addrs, uint32_t n) {
    uint32_t idx;
    uint32_t got = xsk_ring_prod__reserve(&x->fill, n, &idx);
    for (uint32_t i = 0; i < got; i++) *xsk_ring_prod__fill_addr(&x->fill, idx + i) = addrs[i];
    if (got) xsk_ring_prod__submit(&x->fill, got);
    return got;
}

uint32_t cnq_xsk_fill_free(struct cnq_xsk *x) { return xsk_prod_nb_free(&x->fill, x->fill.size); }

uint32_t cnq_xsk_rx(struct cnq_xsk *x, uint64_t *addrs, uint32_t *lens, uint32_t max) {
    uint32_t idx;
    uint32_t got = xsk_ring_cons__peek(&x->rx, max, &idx);
    for (uint32_t i = 0; i < got; i++) {
        const struct xdp_desc *d = xsk_ring_cons__rx_desc(&x->rx, idx + i);
        addrs[i] = d->addr;
        lens[i] = d->len;
    }
    if (got) xsk_ring_cons__release(&x->rx, got);
    return got;
}

static void kick_tx(struct cnq_xsk *x) {
    if (xsk_ring_prod__needs_wakeup(&x->tx))
        (void)sendto(xsk_socket__fd(x->xsk), NULL, 0, MSG_DONTWAIT, NULL, 0);
}

uint32_t cnq_xsk_tx(struct cnq_xsk *x, const uint64_t *addrs, const uint32_t *lens, uint32_t n) {
    uint32_t idx;
    uint32_t got = xsk_ring_prod__reserve(&x->tx, n, &idx);
    for (uint32_t i = 0; i < got; i++) {
        struct xdp_desc *d = xsk_ring_prod__tx_desc(&x->tx, idx + i);
        d->addr = addrs[i];
        d->len = lens[i];
        d->options = 0;
    }
    if (got) { xsk_ring_prod__submit(&x->tx, got); kick_tx(x); }
    return got;
}

uint32_t cnq_xsk_complete(struct cnq_xsk *x, uint64_t *addrs, uint32_t max) {
    uint32_t idx;
    uint32_t got = xsk_ring_cons__peek(&x->comp, max, &idx);
    for (uint32_t i = 0; i < got; i++) addrs[i] = *xsk_ring_cons__comp_addr(&x->comp, idx + i);
    if (got) xsk_ring_cons__release(&x->comp, got);
    // Descriptors still on the TX ring (the kernel stopped early): kick again.
    if (xsk_prod_nb_free(&x->tx, x->tx.size) < x->tx.size) kick_tx(x);
    return got;
}

void cnq_xsk_rx_wakeup(struct cnq_xsk *x) {
    if (xsk_ring_prod__needs_wakeup(&x->fill))
        (void)recvfrom(xsk_socket__fd(x->xsk), NULL, 0, MSG_DONTWAIT, NULL, NULL);
}

uint32_t cnq_xsk_tx_free(struct cnq_xsk *x) { return xsk_prod_nb_free(&x->tx, x->tx.size); }

bool cnq_xsk_rx_ready(struct cnq_xsk *x) { return xsk_cons_nb_avail(&x->rx, 1) > 0; }
