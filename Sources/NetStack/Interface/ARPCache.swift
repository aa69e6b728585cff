// ARPCache.swift: the neighbour table (RFC 826, with RFC 1122 §2.3.2.1 retries and
// timeouts): entries resolving and resolved, driven by a clock the caller passes, so tests
// step time by hand. Holds no packets; ARPPendingQueue.swift holds those.
import NICQueuesCore
import UThreads

/// ARP tunables. Defaults follow Linux's (`/proc/sys/net/ipv4/neigh/default/`).
public struct ARPConfiguration: Sendable, Equatable {
    /// How long a reply keeps an entry usable (Linux: `base_reachable_time` 30 s).
    public var reachableTime: Duration = .seconds(30)
    /// Time between requests for an address being resolved (`retrans_time` 1 s).
    public var retransmitInterval: Duration = .seconds(1)
    /// Requests sent before giving up (`mcast_solicit` 3); queued packets are then dropped.
    public var maximumRequests: Int = 3
    /// Neighbours remembered; past it the entry nearest expiry is evicted (`gc_thresh3` is
    /// 1024; one subnet of a kernel-bypass host rarely needs more).
    public var capacity: Int = 512
    /// Packets queued per unresolved neighbour; the oldest is dropped past it (Linux
    /// bounds `unres_qlen_bytes`, about 100 small packets; a short queue keeps a dead
    /// neighbour from holding buffers).
    public var pendingPerNeighbour: Int = 16
    /// Packets queued for resolution across all neighbours.
    public var pendingTotal: Int = 128
    /// Gratuitous ARP requests announcing our address when the interface starts.
    public var gratuitousAnnouncements: Int = 1

    public init() {}

    func validate() throws(NetStackError) {
        guard reachableTime > .zero, retransmitInterval > .zero, (1...32).contains(maximumRequests),
              (1...65536).contains(capacity), (1...4096).contains(pendingPerNeighbour),
              (1...65536).contains(pendingTotal), (0...16).contains(gratuitousAnnouncements)
        else { throw .invalidConfiguration("ARP: \(self)") }
    }
}

/// What `ARPCache.lookup` found.
public enum ARPLookup: Equatable, Sendable {
    /// Send now, to this address.
    case resolved(MACAddress)
    /// Send now, to this address, which has not been confirmed for `reachableTime`: the
    /// caller also sends it a unicast request (the first probe; Linux's STALE → PROBE).
    case stale(MACAddress)
    /// Being resolved: queue the packet. `sendRequest` is true when the caller must send
    /// the first request now (the entry was just created).
    case resolving(sendRequest: Bool)
}

/// Counters of the neighbour table.
public struct ARPCounters: Sendable, Equatable {
    public var requestsSent: UInt64 = 0
    public var requestsReceived: UInt64 = 0
    public var repliesSent: UInt64 = 0
    public var repliesReceived: UInt64 = 0
    public var gratuitousSent: UInt64 = 0
    /// Entries that got no reply after every request (their queued packets were dropped).
    public var resolutionFailures: UInt64 = 0
    /// Entries that timed out after being resolved.
    public var expired: UInt64 = 0
    /// Entries evicted to make room.
    public var evicted: UInt64 = 0
    /// Packets dropped while waiting for resolution (queue bound or failed resolution).
    public var pendingDropped: UInt64 = 0
    public init() {}
}

/// The neighbour table. Times are nanoseconds on the caller's clock (monotonic).
public struct ARPCache: Sendable {
    struct Entry: Sendable {
        var mac: MACAddress?
        /// Resolved: when the entry goes stale (or, probing, when to probe again).
        /// Resolving: when to send again.
        var deadline: Int64
        /// Requests sent while resolving or probing.
        var requests: Int
        /// Resolved, stale, and used since: unicast requests are confirming the address.
        var probing = false
    }

    public let configuration: ARPConfiguration
    private var entries: [IPv4Address: Entry]
    /// The last reachable entry looked up, so a flow's packets skip hashing. Cleared by
    /// every change to the table but `lookup`'s own.
    private var memo: (ip: IPv4Address, mac: MACAddress, deadline: Int64)?
    public internal(set) var counters = ARPCounters()
    private let reachableNanos: Int64
    private let retransmitNanos: Int64

    public init(configuration: ARPConfiguration = ARPConfiguration()) {
        self.configuration = configuration
        entries = [:]
        entries.reserveCapacity(configuration.capacity)   // no rehash on the packet path
        reachableNanos = configuration.reachableTime.nanosecondsSaturated
        retransmitNanos = configuration.retransmitInterval.nanosecondsSaturated
    }

    /// Entries, resolving ones included.
    public var count: Int { entries.count }

    /// Every resolved entry (a forked child's interface starts from its parent's table).
    public var resolvedEntries: [(IPv4Address, MACAddress)] {
        entries.compactMap { k, e in e.mac.map { (k, $0) } }
    }

    /// The address `ip` resolves to now, if it does (no entry is created). A stale entry
    /// being probed still resolves.
    public func resolved(_ ip: IPv4Address, now: Int64) -> MACAddress? {
        guard let e = entries[ip], let mac = e.mac, e.probing || now < e.deadline else { return nil }
        return mac
    }

    /// Whether `ip` is being resolved.
    public func isResolving(_ ip: IPv4Address) -> Bool { entries[ip].map { $0.mac == nil } ?? false }

    /// Finds `ip`, creating a resolving entry when there is none (or it expired).
    public mutating func lookup(_ ip: IPv4Address, now: Int64) -> ARPLookup {
        if let m = memo, m.ip == ip, now < m.deadline { return .resolved(m.mac) }
        if let e = entries[ip] {
            if let mac = e.mac {
                if !e.probing && now < e.deadline { memo = (ip, mac, e.deadline) }
                if e.probing || now < e.deadline { return .resolved(mac) }
                memo = nil
                // Stale and used: keep sending to it while unicast probes confirm it.
                entries[ip] = Entry(mac: mac, deadline: now &+ retransmitNanos, requests: 1, probing: true)
                counters.requestsSent &+= 1
                return .stale(mac)
            } else {
                return .resolving(sendRequest: false)
            }
        } else if entries.count >= configuration.capacity {
            evictOne()
        }
        entries[ip] = Entry(mac: nil, deadline: now &+ retransmitNanos, requests: 1)
        counters.requestsSent &+= 1
        return .resolving(sendRequest: true)
    }

    /// Records `ip` at `mac` (a reply, or a request aimed at us: RFC 826's merge). Creates
    /// the entry only when `create` (a request for our address) or when it was resolving.
    /// - Returns: true when the entry was resolving: its queued packets can go now.
    @discardableResult
    public mutating func update(_ ip: IPv4Address, mac: MACAddress, now: Int64, create: Bool) -> Bool {
        guard mac.isUnicast, mac != .zero, !ip.isUnspecified, !ip.isBroadcast, !ip.isMulticast else { return false }
        let existing = entries[ip]
        guard existing != nil || create else { return false }
        memo = nil
        if existing == nil && entries.count >= configuration.capacity { evictOne() }
        entries[ip] = Entry(mac: mac, deadline: now &+ reachableNanos, requests: 0)
        return existing.map { $0.mac == nil } ?? false
    }

    /// Removes `ip`'s entry.
    public mutating func remove(_ ip: IPv4Address) {
        memo = nil
        entries[ip] = nil
    }

    /// Runs the timers: resolving entries due for a request get one (`retry`, with no
    /// address: broadcast), those out of requests are removed (`failed`, to drop their
    /// packets); probed entries get their next unicast probe (`retry` with the address) or
    /// are removed after the last; resolved entries unused past their time are removed.
    public mutating func expire(now: Int64, retry: (IPv4Address, MACAddress?) -> Void, failed: (IPv4Address) -> Void) {
        var gone: [IPv4Address] = []
        if let m = memo, now >= m.deadline { memo = nil }
        for (ip, e) in entries where now >= e.deadline {
            if let mac = e.mac {
                if e.probing && e.requests < configuration.maximumRequests {
                    entries[ip]?.requests += 1
                    entries[ip]?.deadline = now &+ retransmitNanos
                    counters.requestsSent &+= 1
                    retry(ip, mac)
                } else {
                    gone.append(ip)
                    counters.expired &+= 1
                }
            } else if e.requests >= configuration.maximumRequests {
                gone.append(ip)
                counters.resolutionFailures &+= 1
                failed(ip)
            } else {
                entries[ip]?.requests += 1
                entries[ip]?.deadline = now &+ retransmitNanos
                counters.requestsSent &+= 1
                retry(ip, nil)
            }
        }
        for ip in gone { entries[ip] = nil }
    }

    /// The earliest deadline of any entry (when `expire` next has work), or nil.
    public var nextDeadline: Int64? { entries.values.lazy.map(\.deadline).min() }

    /// Evicts the resolved entry nearest its end (resolving entries hold packets and are
    /// kept, unless every entry is resolving).
    private mutating func evictOne() {
        let victim = entries.filter { $0.value.mac != nil }.min { $0.value.deadline < $1.value.deadline }?.key
            ?? entries.min { $0.value.deadline < $1.value.deadline }?.key
        if let victim { entries[victim] = nil; counters.evicted &+= 1; memo = nil }
    }
}

/// Packets waiting for their next hop to resolve: a bounded FIFO of pool buffers (whole
/// frames with the Ethernet destination left to fill in) and their next hops.
struct ARPPendingQueue: ~Copyable {
    private var frames: PacketBatch
    private let hops: UnsafeMutablePointer<IPv4Address>
    private var head = 0
    let perNeighbour: Int

    init(total: Int, perNeighbour: Int) {
        frames = PacketBatch(capacity: total)
        hops = .allocate(capacity: total)
        self.perNeighbour = perNeighbour
    }

    deinit { hops.deallocate() }

    var count: Int { frames.count }

    private func hop(_ i: Int) -> IPv4Address { hops[(head + i) % frames.capacity] }

    /// Packets queued for `ip`.
    func count(for ip: IPv4Address) -> Int {
        var n = 0
        for i in 0..<frames.count where hop(i) == ip { n += 1 }
        return n
    }

    /// Queues `frame` for `ip`; drops the oldest for `ip` (or, when the whole queue is
    /// full, the oldest of all). Returns the number of packets dropped (0 or 1).
    mutating func enqueue(_ frame: consuming PacketBuffer, for ip: IPv4Address) -> Int {
        var dropped = 0
        if count(for: ip) >= perNeighbour {
            removeFirst(where: { $0 == ip })
            dropped = 1
        } else if frames.isFull {
            removeFirst(where: { _ in true })
            dropped = 1
        }
        hops[(head + frames.count) % frames.capacity] = ip
        frames.append(frame)
        return dropped
    }

    /// Hands every packet queued for `ip` to `body`, oldest first, and forgets it.
    mutating func take(for ip: IPv4Address, _ body: (consuming PacketBuffer) -> Void) {
        take(matching: { $0 == ip }, body)
    }

    /// Drops every packet queued.
    mutating func removeAll() {
        frames.removeAll()
        head = 0
    }

    /// Drops every packet queued for `ip`; returns how many.
    mutating func drop(for ip: IPv4Address) -> Int {
        var n = 0
        take(for: ip) { _ in n += 1 }
        return n
    }

    /// Removes the oldest packet whose next hop matches, keeping the others' order.
    private mutating func removeFirst(where match: (IPv4Address) -> Bool) {
        var removed = false
        take(matching: { ip in
            if !removed && match(ip) { removed = true; return true }
            return false
        }) { _ in }
    }

    private mutating func take(matching match: (IPv4Address) -> Bool, _ body: (consuming PacketBuffer) -> Void) {
        let n = frames.count
        for _ in 0..<n {
            let h = hops[head]
            guard let f = frames.popFirst() else { break }
            head = (head + 1) % frames.capacity
            if match(h) {
                body(f)
            } else {
                hops[(head + frames.count) % frames.capacity] = h
                frames.append(f)
            }
        }
    }
}
