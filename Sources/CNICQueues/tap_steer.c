// tap_steer.c: the TAP's queue-steering eBPF program (TUNSETSTEERINGEBPF), assembled by
// hand as xsk.c does its XDP program, its maps, and the calls that fill them; raw bpf(2)
// so that NICQueuesCore needs no libbpf. The kernel runs the program for every frame the
// host sends into the TAP (drivers/net/tun.c, tun_ebpf_select_queue) and takes its return
// value modulo the number of queues as the queue.
//
// The program:
//   ARP reply          -> arp[sender ip] (the queue that asked last), else 0
//   TCP pure SYN       -> one of the queues whose bit is set in ports[dst port], chosen by
//                         a hash of the 4-tuple; recorded in flows; no bit: 0
//   other TCP segment  -> flows[4-tuple] (recorded by a SYN, or by the process that
//                         connected), else 0
//   anything else      -> 0 (the instance's first process: ICMP, UDP, ARP requests)
#include "cnq_steer.h"
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <net/if.h>
#include <linux/bpf.h>
#include <linux/filter.h>
#include <linux/if_ether.h>
#include <linux/if_tun.h>
#include <arpa/inet.h>

#include "cnicqueues.h"

// Tunables: flows remembered (LRU: the least recently used goes when full), ARP entries.
#define FLOWS 65536
#define ARP_ENTRIES 1024

static long bpf(int cmd, union bpf_attr *attr) { return syscall(SYS_bpf, cmd, attr, sizeof *attr); }

static int map_create(uint32_t type, const char *name, uint32_t key, uint32_t value, uint32_t entries, uint32_t flags) {
    union bpf_attr a;
    memset(&a, 0, sizeof a);
    a.map_type = type;
    a.key_size = key;
    a.value_size = value;
    a.max_entries = entries;
    a.map_flags = flags;
    strncpy(a.map_name, name, sizeof a.map_name - 1);
    int fd = (int)bpf(BPF_MAP_CREATE, &a);
    return fd < 0 ? -errno : fd;
}

static int map_update(int fd, const void *key, const void *value) {
    union bpf_attr a;
    memset(&a, 0, sizeof a);
    a.map_fd = fd;
    a.key = (uint64_t)(uintptr_t)key;
    a.value = (uint64_t)(uintptr_t)value;
    a.flags = BPF_ANY;
    return bpf(BPF_MAP_UPDATE_ELEM, &a) < 0 ? -errno : 0;
}

static int map_delete(int fd, const void *key) {
    union bpf_attr a;
    memset(&a, 0, sizeof a);
    a.map_fd = fd;
    a.key = (uint64_t)(uintptr_t)key;
    return bpf(BPF_MAP_DELETE_ELEM, &a) < 0 ? -errno : 0;
}

static int map_lookup(int fd, const void *key, void *value) {
    union bpf_attr a;
    memset(&a, 0, sizeof a);
    a.map_fd = fd;
    a.key = (uint64_t)(uintptr_t)key;
    a.value = (uint64_t)(uintptr_t)value;
    return bpf(BPF_MAP_LOOKUP_ELEM, &a) < 0 ? -errno : 0;
}

static int map_next_key(int fd, const void *key, void *next) {
    union bpf_attr a;
    memset(&a, 0, sizeof a);
    a.map_fd = fd;
    a.key = (uint64_t)(uintptr_t)key;
    a.next_key = (uint64_t)(uintptr_t)next;
    return bpf(BPF_MAP_GET_NEXT_KEY, &a) < 0 ? -errno : 0;
}

// MARK: the program

#define INSN(c, d, s, o, i) ((struct bpf_insn){ .code = (c), .dst_reg = (d), .src_reg = (s), .off = (o), .imm = (i) })
#define MOV64_REG(d, s) INSN(BPF_ALU64 | BPF_MOV | BPF_X, d, s, 0, 0)
#define MOV64_IMM(d, i) INSN(BPF_ALU64 | BPF_MOV | BPF_K, d, 0, 0, i)
#define ALU64_IMM(op, d, i) INSN(BPF_ALU64 | (op) | BPF_K, d, 0, 0, i)
#define ALU64_REG(op, d, s) INSN(BPF_ALU64 | (op) | BPF_X, d, s, 0, 0)
#define LDX_MEM(sz, d, s, o) INSN(BPF_LDX | BPF_MEM | (sz), d, s, o, 0)
#define STX_MEM(sz, d, s, o) INSN(BPF_STX | BPF_MEM | (sz), d, s, o, 0)
#define LD_ABS(sz, i) INSN(BPF_LD | BPF_ABS | (sz), 0, 0, 0, i)
#define LD_IND(sz, s, i) INSN(BPF_LD | BPF_IND | (sz), 0, s, 0, i)
#define JMP_IMM(op, d, i, o) INSN(BPF_JMP | (op) | BPF_K, d, 0, o, i)
#define JA(o) INSN(BPF_JMP | BPF_JA, 0, 0, o, 0)
#define CALL(f) INSN(BPF_JMP | BPF_CALL, 0, 0, 0, f)
#define EXIT() INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)
#define NET(o) (SKF_NET_OFF + (o))

struct assembler {
    struct bpf_insn insns[256];
    int n;
};

static void emit(struct assembler *a, struct bpf_insn i) { a->insns[a->n++] = i; }
static void emit_map(struct assembler *a, int reg, int fd) {
    emit(a, INSN(BPF_LD | BPF_DW | BPF_IMM, reg, BPF_PSEUDO_MAP_FD, 0, fd));
    emit(a, INSN(0, 0, 0, 0, 0));
}
static void emit_imm64(struct assembler *a, int reg, uint64_t v) {
    emit(a, INSN(BPF_LD | BPF_DW | BPF_IMM, reg, 0, 0, (int32_t)(uint32_t)v));
    emit(a, INSN(0, 0, 0, 0, (int32_t)(uint32_t)(v >> 32)));
}
/// A jump whose target is set later by `land`.
static int emit_jump(struct assembler *a, struct bpf_insn i) { emit(a, i); return a->n - 1; }
static void land(struct assembler *a, int jump) { a->insns[jump].off = (int16_t)(a->n - jump - 1); }

static void assemble(struct assembler *a, const struct cnq_steer *s) {
    a->n = 0;
    int out0[8], nout = 0;   // jumps to "return 0"
    emit(a, MOV64_REG(BPF_REG_6, BPF_REG_1));   // LD_ABS/LD_IND want the context in r6
    emit(a, LDX_MEM(BPF_W, BPF_REG_0, BPF_REG_6, offsetof(struct __sk_buff, protocol)));
    int to_ip = emit_jump(a, JMP_IMM(BPF_JEQ, BPF_REG_0, htons(ETH_P_IP), 0));
    int to_arp = emit_jump(a, JMP_IMM(BPF_JEQ, BPF_REG_0, htons(ETH_P_ARP), 0));
    int ret0 = a->n;
    emit(a, MOV64_IMM(BPF_REG_0, 0));
    emit(a, EXIT());

    // ARP: a reply goes to the queue that asked for its sender's address.
    land(a, to_arp);
    emit(a, LD_ABS(BPF_H, NET(6)));   // operation
    out0[nout++] = emit_jump(a, JMP_IMM(BPF_JNE, BPF_REG_0, 2, 0));
    emit(a, LD_ABS(BPF_W, NET(14)));  // sender protocol address (host order)
    emit(a, STX_MEM(BPF_W, BPF_REG_10, BPF_REG_0, -4));
    emit_map(a, BPF_REG_1, s->arp_fd);
    emit(a, MOV64_REG(BPF_REG_2, BPF_REG_10));
    emit(a, ALU64_IMM(BPF_ADD, BPF_REG_2, -4));
    emit(a, CALL(BPF_FUNC_map_lookup_elem));
    out0[nout++] = emit_jump(a, JMP_IMM(BPF_JEQ, BPF_REG_0, 0, 0));
    emit(a, LDX_MEM(BPF_W, BPF_REG_0, BPF_REG_0, 0));
    emit(a, EXIT());

    // IPv4: TCP only, not a fragment.
    land(a, to_ip);
    emit(a, LD_ABS(BPF_B, NET(9)));
    out0[nout++] = emit_jump(a, JMP_IMM(BPF_JNE, BPF_REG_0, IPPROTO_TCP, 0));
    emit(a, LD_ABS(BPF_H, NET(6)));
    emit(a, ALU64_IMM(BPF_AND, BPF_REG_0, 0x3fff));   // MF and the fragment offset
    out0[nout++] = emit_jump(a, JMP_IMM(BPF_JNE, BPF_REG_0, 0, 0));
    emit(a, LD_ABS(BPF_B, NET(0)));
    emit(a, ALU64_IMM(BPF_AND, BPF_REG_0, 0xf));
    emit(a, ALU64_IMM(BPF_LSH, BPF_REG_0, 2));
    emit(a, MOV64_REG(BPF_REG_7, BPF_REG_0));         // r7 = IP header length
    emit(a, LD_ABS(BPF_W, NET(12)));
    emit(a, MOV64_REG(BPF_REG_8, BPF_REG_0));         // r8 = source (remote) address
    emit(a, LD_IND(BPF_W, BPF_REG_7, NET(0)));
    emit(a, MOV64_REG(BPF_REG_9, BPF_REG_0));         // r9 = remote port << 16 | local port
    emit(a, LD_IND(BPF_B, BPF_REG_7, NET(13)));
    emit(a, MOV64_REG(BPF_REG_7, BPF_REG_0));         // r7 = TCP flags
    emit(a, ALU64_IMM(BPF_LSH, BPF_REG_8, 32));
    emit(a, ALU64_REG(BPF_OR, BPF_REG_8, BPF_REG_9)); // r8 = the flow key
    emit(a, STX_MEM(BPF_DW, BPF_REG_10, BPF_REG_8, -8));
    emit(a, ALU64_IMM(BPF_AND, BPF_REG_7, 0x12));     // SYN | ACK
    int to_syn = emit_jump(a, JMP_IMM(BPF_JEQ, BPF_REG_7, 0x02, 0));
    emit_map(a, BPF_REG_1, s->flows_fd);
    emit(a, MOV64_REG(BPF_REG_2, BPF_REG_10));
    emit(a, ALU64_IMM(BPF_ADD, BPF_REG_2, -8));
    emit(a, CALL(BPF_FUNC_map_lookup_elem));
    out0[nout++] = emit_jump(a, JMP_IMM(BPF_JEQ, BPF_REG_0, 0, 0));
    emit(a, LDX_MEM(BPF_W, BPF_REG_0, BPF_REG_0, 0));
    emit(a, EXIT());

    // A new connection: the queues accepting on its port.
    land(a, to_syn);
    emit(a, ALU64_IMM(BPF_AND, BPF_REG_9, 0xffff));
    emit(a, STX_MEM(BPF_W, BPF_REG_10, BPF_REG_9, -12));
    emit_map(a, BPF_REG_1, s->ports_fd);
    emit(a, MOV64_REG(BPF_REG_2, BPF_REG_10));
    emit(a, ALU64_IMM(BPF_ADD, BPF_REG_2, -12));
    emit(a, CALL(BPF_FUNC_map_lookup_elem));
    out0[nout++] = emit_jump(a, JMP_IMM(BPF_JEQ, BPF_REG_0, 0, 0));
    emit(a, LDX_MEM(BPF_W, BPF_REG_7, BPF_REG_0, 0));
    emit(a, ALU64_IMM(BPF_AND, BPF_REG_7, (1 << CNQ_STEER_QUEUES) - 1));
    int none = emit_jump(a, JMP_IMM(BPF_JEQ, BPF_REG_7, 0, 0));
    // r1 = how many queues accept (popcount of r7)
    emit(a, MOV64_IMM(BPF_REG_1, 0));
    for (int i = 0; i < CNQ_STEER_QUEUES; i++) {
        emit(a, MOV64_REG(BPF_REG_2, BPF_REG_7));
        emit(a, ALU64_IMM(BPF_RSH, BPF_REG_2, i));
        emit(a, ALU64_IMM(BPF_AND, BPF_REG_2, 1));
        emit(a, ALU64_REG(BPF_ADD, BPF_REG_1, BPF_REG_2));
    }
    // r2 = a hash of the flow key modulo that count (Fibonacci hashing)
    emit_imm64(a, BPF_REG_3, 0x9E3779B97F4A7C15ull);
    emit(a, MOV64_REG(BPF_REG_2, BPF_REG_8));
    emit(a, ALU64_REG(BPF_MUL, BPF_REG_2, BPF_REG_3));
    emit(a, ALU64_IMM(BPF_RSH, BPF_REG_2, 32));
    emit(a, ALU64_REG(BPF_MOD, BPF_REG_2, BPF_REG_1));
    // r9 = the r2-th set bit of r7
    int found[CNQ_STEER_QUEUES];
    for (int i = 0; i < CNQ_STEER_QUEUES; i++) {
        emit(a, MOV64_REG(BPF_REG_3, BPF_REG_7));
        emit(a, ALU64_IMM(BPF_RSH, BPF_REG_3, i));
        emit(a, ALU64_IMM(BPF_AND, BPF_REG_3, 1));
        emit(a, JMP_IMM(BPF_JEQ, BPF_REG_3, 0, 4));   // not accepting: next
        emit(a, JMP_IMM(BPF_JNE, BPF_REG_2, 0, 2));   // not yet: count it
        emit(a, MOV64_IMM(BPF_REG_9, i));
        found[i] = emit_jump(a, JA(0));
        emit(a, ALU64_IMM(BPF_SUB, BPF_REG_2, 1));
    }
    int fell = emit_jump(a, JA(0));
    for (int i = 0; i < CNQ_STEER_QUEUES; i++) land(a, found[i]);
    // Remember the choice, so the rest of the connection follows it; queue 0 is where an
    // unknown flow goes anyway, so only an older entry for the 4-tuple goes (a program
    // that never forks records nothing).
    int to_record = emit_jump(a, JMP_IMM(BPF_JNE, BPF_REG_9, 0, 0));
    emit_map(a, BPF_REG_1, s->flows_fd);
    emit(a, MOV64_REG(BPF_REG_2, BPF_REG_10));
    emit(a, ALU64_IMM(BPF_ADD, BPF_REG_2, -8));
    emit(a, CALL(BPF_FUNC_map_delete_elem));
    emit(a, MOV64_IMM(BPF_REG_0, 0));
    emit(a, EXIT());
    land(a, to_record);
    emit(a, STX_MEM(BPF_W, BPF_REG_10, BPF_REG_9, -16));
    emit_map(a, BPF_REG_1, s->flows_fd);
    emit(a, MOV64_REG(BPF_REG_2, BPF_REG_10));
    emit(a, ALU64_IMM(BPF_ADD, BPF_REG_2, -8));
    emit(a, MOV64_REG(BPF_REG_3, BPF_REG_10));
    emit(a, ALU64_IMM(BPF_ADD, BPF_REG_3, -16));
    emit(a, MOV64_IMM(BPF_REG_4, BPF_ANY));
    emit(a, CALL(BPF_FUNC_map_update_elem));
    emit(a, MOV64_REG(BPF_REG_0, BPF_REG_9));
    emit(a, EXIT());

    // Backward jumps to "return 0".
    for (int i = 0; i < nout; i++) a->insns[out0[i]].off = (int16_t)(ret0 - out0[i] - 1);
    a->insns[none].off = (int16_t)(ret0 - none - 1);
    a->insns[fell].off = (int16_t)(ret0 - fell - 1);
}

static int load_program(const struct cnq_steer *s, char *msg, size_t msglen) {
    struct assembler a;
    assemble(&a, s);
    // Without a log first (a log that overflows fails the load with ENOSPC), then again
    // with one to say why.
    static char log[65536];
    union bpf_attr attr;
    for (int attempt = 0; attempt < 2; attempt++) {
        log[0] = 0;
        memset(&attr, 0, sizeof attr);
        attr.prog_type = BPF_PROG_TYPE_SOCKET_FILTER;
        attr.insns = (uint64_t)(uintptr_t)a.insns;
        attr.insn_cnt = (uint32_t)a.n;
        attr.license = (uint64_t)(uintptr_t)"GPL";
        if (attempt == 1) {
            attr.log_buf = (uint64_t)(uintptr_t)log;
            attr.log_size = sizeof log;
            attr.log_level = 1;
        }
        strncpy(attr.prog_name, "jnq_tap_steer", sizeof attr.prog_name - 1);
        int fd = (int)bpf(BPF_PROG_LOAD, &attr);
        if (fd >= 0) return fd;
        int e = errno;
        size_t l = strlen(log);
        snprintf(msg, msglen, "bpf(BPF_PROG_LOAD): %s; verifier: %s", strerror(e), l > 300 ? log + l - 300 : log);
        if (e == EPERM || e == ENOSYS) return -e;
        if (attempt == 1) return -e;
    }
    return -EINVAL;
}

// MARK: set-up

static void close_all(struct cnq_steer *s) {
    for (int q = 1; q < CNQ_STEER_QUEUES; q++) if (s->queue_fds[q] >= 0) close(s->queue_fds[q]);
    if (s->ports) munmap(s->ports, 65536 * sizeof(uint64_t));
    if (s->slots != MAP_FAILED && s->slots) munmap(s->slots, 4096);
    if (s->prog_fd >= 0) close(s->prog_fd);
    if (s->flows_fd >= 0) close(s->flows_fd);
    if (s->ports_fd >= 0) close(s->ports_fd);
    if (s->arp_fd >= 0) close(s->arp_fd);
}

int cnq_steer_setup(struct cnq_steer *s, int queue0_fd, const char *ifname, int32_t owner, char *msg, size_t msglen) {
    memset(s, 0, sizeof *s);
    s->prog_fd = s->flows_fd = s->ports_fd = s->arp_fd = -1;
    for (int q = 0; q < CNQ_STEER_QUEUES; q++) s->queue_fds[q] = -1;
    s->queue_fds[0] = queue0_fd;
    int r;
    if ((r = map_create(BPF_MAP_TYPE_LRU_HASH, "jnq_flows", 8, 4, FLOWS, 0)) < 0) {
        snprintf(msg, msglen, "bpf(BPF_MAP_CREATE, LRU hash): %s", strerror(-r));
        goto fail;
    }
    s->flows_fd = r;
    if ((r = map_create(BPF_MAP_TYPE_ARRAY, "jnq_ports", 4, 8, 65536, BPF_F_MMAPABLE)) < 0) {
        snprintf(msg, msglen, "bpf(BPF_MAP_CREATE, mmapable array): %s", strerror(-r));
        goto fail;
    }
    s->ports_fd = r;
    if ((r = map_create(BPF_MAP_TYPE_HASH, "jnq_arp", 4, 4, ARP_ENTRIES, 0)) < 0) {
        snprintf(msg, msglen, "bpf(BPF_MAP_CREATE, hash): %s", strerror(-r));
        goto fail;
    }
    s->arp_fd = r;
    void *p = mmap(NULL, 65536 * sizeof(uint64_t), PROT_READ | PROT_WRITE, MAP_SHARED, s->ports_fd, 0);
    if (p == MAP_FAILED) { r = -errno; snprintf(msg, msglen, "mmap(BPF array): %s", strerror(-r)); goto fail; }
    s->ports = p;
    p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) { r = -errno; snprintf(msg, msglen, "mmap(shared page): %s", strerror(-r)); goto fail; }
    s->slots = p;
    s->slots[0] = owner;
    if ((r = load_program(s, msg, msglen)) < 0) goto fail;
    s->prog_fd = r;
    if (ioctl(queue0_fd, TUNSETSTEERINGEBPF, &s->prog_fd) < 0) {
        r = -errno;
        snprintf(msg, msglen, "ioctl(TUNSETSTEERINGEBPF): %s", strerror(-r));
        goto fail;
    }
    // Every frame goes to queue 0 from here on; now the other queues, in order (TUN
    // numbers a queue by when it attached), with queue 0's IFF_VNET_HDR: the kernel takes
    // an attaching queue's flags for the whole interface.
    struct ifreq current;
    memset(&current, 0, sizeof current);
    if (ioctl(queue0_fd, TUNGETIFF, &current) < 0) {
        r = -errno;
        snprintf(msg, msglen, "ioctl(TUNGETIFF): %s", strerror(-r));
        int none = -1;
        (void)ioctl(queue0_fd, TUNSETSTEERINGEBPF, &none);
        goto fail;
    }
    bool vnet = (current.ifr_flags & IFF_VNET_HDR) != 0;
    for (int q = 1; q < CNQ_STEER_QUEUES; q++) {
        char name[IFNAMSIZ];
        memset(name, 0, sizeof name);
        strncpy(name, ifname, IFNAMSIZ - 1);
        r = cnq_tap_open(name, true, vnet);
        if (r < 0) {
            snprintf(msg, msglen, "attaching queue %d of %s: %s", q, ifname, strerror(-r));
            int none = -1;
            (void)ioctl(queue0_fd, TUNSETSTEERINGEBPF, &none);
            goto fail;
        }
        s->queue_fds[q] = r;
    }
    return 0;
fail:
    close_all(s);
    s->ports = NULL;
    s->slots = NULL;
    return r < 0 ? r : -EINVAL;
}

// MARK: queues and their owners

static void forget_queue(struct cnq_steer *s, int q) {
    uint64_t bit = 1ull << q;
    for (int port = 0; port < 65536; port++) {
        if (__atomic_load_n(&s->ports[port], __ATOMIC_RELAXED) & bit) __atomic_fetch_and(&s->ports[port], ~bit, __ATOMIC_SEQ_CST);
    }
    for (int pass = 0; pass < 2; pass++) {
        int fd = pass == 0 ? s->flows_fd : s->arp_fd;
        size_t ksize = pass == 0 ? 8 : 4, cap = pass == 0 ? FLOWS : ARP_ENTRIES;
        // The walk first, the deletions after: deleting the key a walk stands on
        // restarts it (a hash map answers a missing key with its first).
        uint64_t *doomed = malloc(cap * sizeof *doomed);
        if (!doomed) continue;
        size_t n = 0;
        uint64_t key = 0, next = 0;
        bool first = true;
        for (size_t seen = 0; seen < cap && n < cap && map_next_key(fd, first ? NULL : &key, &next) == 0; seen++) {
            uint32_t value;
            memcpy(&key, &next, ksize);
            first = false;
            if (map_lookup(fd, &key, &value) == 0 && (int)value == q) doomed[n++] = key;
        }
        for (size_t i = 0; i < n; i++) map_delete(fd, &doomed[i]);
        free(doomed);
    }
}

int cnq_steer_claim(struct cnq_steer *s, int32_t pid) {
    for (int round = 0; round < 2; round++) {
        for (int q = 1; q < CNQ_STEER_QUEUES; q++) {
            int32_t owner = __atomic_load_n(&s->slots[q], __ATOMIC_ACQUIRE);
            if (owner != 0) {
                // The second round takes a queue whose owner is gone (not reaped by a
                // parent that could forget it).
                if (round == 0 || kill(owner, 0) == 0 || errno != ESRCH) continue;
                if (!__atomic_compare_exchange_n(&s->slots[q], &owner, -pid, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) continue;
                forget_queue(s, q);
                __atomic_store_n(&s->slots[q], pid, __ATOMIC_RELEASE);
                return q;
            }
            // A free queue was forgotten when its owner was released.
            int32_t free = 0;
            if (__atomic_compare_exchange_n(&s->slots[q], &free, pid, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) return q;
        }
    }
    return -1;
}

int cnq_steer_release_pid(struct cnq_steer *s, int32_t pid) {
    int n = 0;
    for (int q = 1; q < CNQ_STEER_QUEUES; q++) {
        int32_t owner = pid;
        if (__atomic_load_n(&s->slots[q], __ATOMIC_ACQUIRE) != pid) continue;
        if (!__atomic_compare_exchange_n(&s->slots[q], &owner, -pid, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) continue;
        forget_queue(s, q);
        __atomic_store_n(&s->slots[q], 0, __ATOMIC_RELEASE);
        n++;
    }
    return n;
}

void cnq_steer_accepting(struct cnq_steer *s, uint16_t port, int queue, bool on) {
    if (queue < 0 || queue >= CNQ_STEER_QUEUES) return;
    uint64_t bit = 1ull << queue;
    uint64_t *w = &s->ports[port];
    if (on) {
        if (!(__atomic_load_n(w, __ATOMIC_RELAXED) & bit)) __atomic_fetch_or(w, bit, __ATOMIC_SEQ_CST);
    } else if (__atomic_load_n(w, __ATOMIC_RELAXED) & bit) {
        __atomic_fetch_and(w, ~bit, __ATOMIC_SEQ_CST);
    }
}

static uint64_t flow_key(uint32_t remote_ip, uint16_t remote_port, uint16_t local_port) {
    return (uint64_t)remote_ip << 32 | (uint64_t)remote_port << 16 | local_port;
}

int cnq_steer_flow(struct cnq_steer *s, uint32_t remote_ip, uint16_t remote_port, uint16_t local_port, int queue) {
    uint64_t key = flow_key(remote_ip, remote_port, local_port);
    if (queue < 0) return map_delete(s->flows_fd, &key);
    uint32_t v = (uint32_t)queue;
    return map_update(s->flows_fd, &key, &v);
}

int cnq_steer_arp(struct cnq_steer *s, uint32_t ip, int queue) {
    uint32_t v = (uint32_t)queue;
    return map_update(s->arp_fd, &ip, &v);
}

int cnq_steer_lookup_flow(struct cnq_steer *s, uint32_t remote_ip, uint16_t remote_port, uint16_t local_port) {
    uint64_t key = flow_key(remote_ip, remote_port, local_port);
    uint32_t v;
    return map_lookup(s->flows_fd, &key, &v) == 0 ? (int)v : -1;
}

void cnq_steer_close(struct cnq_steer *s) {
    close_all(s);   // this process's descriptors and mappings; the TAP keeps the program
}

int cnq_pidfd_open(int32_t pid) {
    long fd = syscall(SYS_pidfd_open, pid, 0);
    return fd < 0 ? -errno : (int)fd;
}
