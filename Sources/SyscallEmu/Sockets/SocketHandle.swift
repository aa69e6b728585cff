// SocketHandle.swift: the socket layer's contract. A socket is one more kind of open file
// (a FileHandle, so read/write/poll/epoll/dup/fcntl/close need no special case); every
// family and backend (the host kernel's sockets, NetStack, AF_UNIX, netlink) implements
// this protocol, and the socket system calls (SocketCalls.swift) speak only to it.
import FileSystem
import SystemPackage
import UThreads

// MARK: constants (Linux x86-64 ABI)

/// Address families, socket types and the flags socket(2) and accept4(2) take.
public enum SocketConstants {
    public static let AF_UNSPEC: Int32 = 0, AF_UNIX: Int32 = 1, AF_INET: Int32 = 2
    public static let AF_NETLINK: Int32 = 16, AF_INET6: Int32 = 10
    public static let SOCK_STREAM: Int32 = 1, SOCK_DGRAM: Int32 = 2, SOCK_RAW: Int32 = 3
    public static let SOCK_SEQPACKET: Int32 = 5
    /// The interface ioctls of struct ifreq/ifconf, SIOCGIFNAME (0x8910) to SIOCSIFMAP and
    /// the index/queue-length calls: any socket answers them about the network.
    public static let interfaceRequests: ClosedRange<UInt64> = 0x8910...0x8943
    public static let SOCK_NONBLOCK: Int32 = 0o4000, SOCK_CLOEXEC: Int32 = 0o2000000
    public static let SOL_SOCKET: Int32 = 1, IPPROTO_IP: Int32 = 0, IPPROTO_TCP: Int32 = 6
    public static let IPPROTO_UDP: Int32 = 17, IPPROTO_IPV6: Int32 = 41
    public static let SHUT_RD: Int32 = 0, SHUT_WR: Int32 = 1, SHUT_RDWR: Int32 = 2
    /// sizeof(struct sockaddr_storage): the largest address a call accepts.
    public static let maxAddressLength = 128
}

/// MSG_* flags of send/recv and msg_flags.
public struct MessageFlags: OptionSet, Sendable, Hashable {
    public let rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }
    public static let outOfBand = MessageFlags(rawValue: 0x1)          // MSG_OOB
    public static let peek = MessageFlags(rawValue: 0x2)               // MSG_PEEK
    public static let dontRoute = MessageFlags(rawValue: 0x4)          // MSG_DONTROUTE
    public static let controlTruncated = MessageFlags(rawValue: 0x8)   // MSG_CTRUNC
    public static let truncated = MessageFlags(rawValue: 0x20)         // MSG_TRUNC
    public static let dontWait = MessageFlags(rawValue: 0x40)          // MSG_DONTWAIT
    public static let endOfRecord = MessageFlags(rawValue: 0x80)       // MSG_EOR
    public static let waitAll = MessageFlags(rawValue: 0x100)          // MSG_WAITALL
    public static let errorQueue = MessageFlags(rawValue: 0x2000)      // MSG_ERRQUEUE
    public static let noSignal = MessageFlags(rawValue: 0x4000)        // MSG_NOSIGNAL
    public static let more = MessageFlags(rawValue: 0x8000)            // MSG_MORE
    public static let waitForOne = MessageFlags(rawValue: 0x10000)     // MSG_WAITFORONE
    public static let controlCloseOnExec = MessageFlags(rawValue: 0x4000_0000)  // MSG_CMSG_CLOEXEC
}

// MARK: addresses

/// A socket address as programs pass it: the raw sockaddr bytes (family first), at most
/// 128 bytes. A value with no allocation; backends decode the family they speak.
public struct SocketAddress: Sendable {
    public private(set) var storage: InlineArray<128, UInt8>
    /// The length the program gave (or the backend reports): what getsockname returns.
    public private(set) var length: Int

    /// Copies `bytes` (EINVAL past 128 bytes, as Linux does for addrlen > sockaddr_storage).
    public init(bytes: UnsafeRawBufferPointer) throws(Errno) {
        guard bytes.count <= SocketConstants.maxAddressLength else { throw .invalidArgument }
        storage = InlineArray(repeating: 0)
        length = bytes.count
        for i in 0..<bytes.count { storage[i] = bytes[i] }
    }

    /// The sa_family field (AF_UNSPEC for an address shorter than it).
    public var family: Int32 { length >= 2 ? Int32(UInt16(storage[0]) | UInt16(storage[1]) << 8) : 0 }

    public func withUnsafeBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        let n = length
        return try Swift.withUnsafeBytes(of: storage) { (raw: UnsafeRawBufferPointer) throws(E) -> R in
            try body(UnsafeRawBufferPointer(rebasing: raw[0..<n]))
        }
    }

    /// AF_INET: `address` and `port` in host byte order.
    public static func inet(address: UInt32, port: UInt16) -> SocketAddress {
        var a = SocketAddress()
        a.length = 16
        a.storage[0] = UInt8(SocketConstants.AF_INET)
        a.storage[2] = UInt8(port >> 8); a.storage[3] = UInt8(port & 0xff)
        for i in 0..<4 { a.storage[4 + i] = UInt8(truncatingIfNeeded: address >> (24 - 8 * i)) }
        return a
    }

    /// AF_INET6: the 16 address bytes in network order, `port` in host order.
    public static func inet6(address: [UInt8], port: UInt16, flowInfo: UInt32 = 0, scopeID: UInt32 = 0) -> SocketAddress {
        precondition(address.count == 16)
        var a = SocketAddress()
        a.length = 28
        a.storage[0] = UInt8(SocketConstants.AF_INET6)
        a.storage[2] = UInt8(port >> 8); a.storage[3] = UInt8(port & 0xff)
        for i in 0..<4 { a.storage[4 + i] = UInt8(truncatingIfNeeded: flowInfo >> (24 - 8 * i)) }
        for i in 0..<16 { a.storage[8 + i] = address[i] }
        for i in 0..<4 { a.storage[24 + i] = UInt8(truncatingIfNeeded: scopeID >> (8 * i)) }  // host order
        return a
    }

    /// AF_INET / AF_INET6 port in host order (nil for other families or short addresses).
    public var port: UInt16? {
        guard (family == SocketConstants.AF_INET && length >= 16) || (family == SocketConstants.AF_INET6 && length >= 24)
        else { return nil }
        return UInt16(storage[2]) << 8 | UInt16(storage[3])
    }

    /// AF_INET address in host order (nil for other families or short addresses).
    public var inetAddress: UInt32? {
        guard family == SocketConstants.AF_INET, length >= 16 else { return nil }
        return (4..<8).reduce(UInt32(0)) { $0 << 8 | UInt32(storage[$1]) }
    }

    /// An empty address (length 0): what an unnamed socket reports before the backend fills it.
    public init() {
        storage = InlineArray(repeating: 0)
        length = 0
    }

    /// The raw byte at `index` (< length).
    public subscript(index: Int) -> UInt8 {
        get { storage[index] }
        set { storage[index] = newValue }
    }

    /// Sets the reported length (at most 128).
    public mutating func setLength(_ n: Int) {
        precondition(n >= 0 && n <= SocketConstants.maxAddressLength)
        length = n
    }
}

// MARK: ancillary data

/// One control message of sendmsg/recvmsg, decoded by the socket layer.
public enum ControlMessage: Sendable {
    /// SCM_RIGHTS: open file descriptions, passed by reference (the receiver installs them).
    case rights([OpenFile])
    /// SCM_CREDENTIALS: struct ucred.
    case credentials(pid: Int32, uid: UInt32, gid: UInt32)
    /// Anything else (IP_TOS, IP_PKTINFO, timestamps...): level, type and the payload bytes.
    case other(level: Int32, type: Int32, data: [UInt8])
}

/// What one receive produced. `count` is the bytes stored into the buffers (or, with
/// MSG_TRUNC on a datagram socket, the datagram's real length, as Linux returns it).
public struct ReceivedMessage: Sendable {
    public var count: Int
    /// MSG_TRUNC, MSG_CTRUNC, MSG_EOR as recvmsg reports them in msg_flags.
    public var flags: MessageFlags
    /// The sender, where the family reports one (datagrams, unconnected sockets).
    public var address: SocketAddress?
    public var control: [ControlMessage]

    public init(count: Int, flags: MessageFlags = [], address: SocketAddress? = nil, control: [ControlMessage] = []) {
        self.count = count
        self.flags = flags
        self.address = address
        self.control = control
    }
}

// MARK: the contract

/// State every socket keeps whatever its backend: the options the socket layer answers
/// itself. Backends read the timeouts when they block.
public final class SocketCommon: @unchecked Sendable {
    private let lock = SpinLock()
    @exclusivity(unchecked) private var _receiveTimeout: Duration?
    @exclusivity(unchecked) private var _sendTimeout: Duration?

    public init() {}

    /// SO_RCVTIMEO (nil: wait forever).
    public var receiveTimeout: Duration? {
        get { lock.withLock { _receiveTimeout } }
        set { lock.withLock { _receiveTimeout = newValue } }
    }

    /// SO_SNDTIMEO (nil: wait forever).
    public var sendTimeout: Duration? {
        get { lock.withLock { _sendTimeout } }
        set { lock.withLock { _sendTimeout = newValue } }
    }
}

/// A socket of any family on any backend. Errors are Linux's errno values; a blocking
/// call parks the calling uthread (never the kthread) and gives `.interrupted` when a
/// signal arrives, which the socket layer turns into EINTR or a restart. A blocking call
/// that times out (SO_RCVTIMEO/SO_SNDTIMEO) throws `.resourceTemporarilyUnavailable`.
///
/// The FileHandle half answers read/write (as recv/send with no flags), readiness for
/// poll/epoll/select, and close (when the last descriptor goes).
public protocol SocketHandle: FileHandle {
    /// AF_*, SOCK_* (without SOCK_NONBLOCK/SOCK_CLOEXEC) and the protocol number, for
    /// SO_DOMAIN, SO_TYPE and SO_PROTOCOL.
    var family: Int32 { get }
    var socketType: Int32 { get }
    var protocolNumber: Int32 { get }
    var common: SocketCommon { get }

    func bind(_ address: SocketAddress) throws(Errno)
    func listen(backlog: Int32) throws(Errno)
    /// The next connection (EAGAIN when none and `nonBlocking`), with the peer's address.
    /// The caller applies SOCK_NONBLOCK/SOCK_CLOEXEC to the new descriptor.
    func accept(nonBlocking: Bool) throws(Errno) -> (socket: any SocketHandle, peer: SocketAddress)
    /// Blocking, or EINPROGRESS when `nonBlocking` (completion: writable, then SO_ERROR).
    func connect(_ address: SocketAddress, nonBlocking: Bool) throws(Errno)
    /// Sends the buffers in order as one message (one datagram on datagram sockets).
    /// `flags` excludes what the socket layer handles itself (MSG_DONTWAIT is folded into
    /// `nonBlocking`; MSG_NOSIGNAL is the layer's: a backend throws `.brokenPipe` and the
    /// layer raises SIGPIPE).
    func send(_ buffers: UnsafeBufferPointer<UnsafeRawBufferPointer>, to address: SocketAddress?,
              control: [ControlMessage], flags: MessageFlags, nonBlocking: Bool) throws(Errno) -> Int
    /// Receives into the buffers in order. `wantAddress`: the caller has room for the
    /// sender's address; `controlCapacity`: bytes of room for ancillary data (0: none).
    func receive(into buffers: UnsafeBufferPointer<UnsafeMutableRawBufferPointer>, flags: MessageFlags,
                 nonBlocking: Bool, wantAddress: Bool, controlCapacity: Int) throws(Errno) -> ReceivedMessage
    func shutdown(_ how: Int32) throws(Errno)
    /// getsockname(2): the full address (the layer truncates to the caller's length and
    /// reports this one's length, as Linux does).
    func localAddress() throws(Errno) -> SocketAddress
    /// getpeername(2): ENOTCONN when not connected.
    func peerAddress() throws(Errno) -> SocketAddress
    /// setsockopt(2) for the options the backend knows; ENOPROTOOPT for the rest (never a
    /// silent success). SO_RCVTIMEO, SO_SNDTIMEO, SO_TYPE, SO_DOMAIN, SO_PROTOCOL are the
    /// layer's and never reach the backend.
    func setOption(level: Int32, name: Int32, value: UnsafeRawBufferPointer) throws(Errno)
    /// getsockopt(2): writes at most `into.count` bytes and returns the option's full length.
    func getOption(level: Int32, name: Int32, into: UnsafeMutableRawBufferPointer) throws(Errno) -> Int
    /// FIONREAD/SIOCINQ: bytes queued to read (for a datagram socket, the next datagram's size).
    func bytesReadable() throws(Errno) -> Int
    /// SIOCOUTQ: bytes sent but not yet acknowledged or taken by the peer.
    func bytesUnsent() throws(Errno) -> Int
    /// Whether the host kernel copies this socket's user buffers itself (a host socket):
    /// the layer then hands it unprobed user memory and the kernel answers EFAULT.
    /// Default false: the layer probes every buffer first.
    var copiesInKernel: Bool { get }
    /// ioctl requests beyond FIONREAD/SIOCINQ, SIOCOUTQ and FIONBIO (interface queries,
    /// SIOCATMARK...); `argument` is the caller's raw argument. Default ENOTTY.
    func deviceControl(request: UInt64, argument: UInt64) throws(Errno) -> Int64
}

extension SocketHandle {
    public var isSeekable: Bool { false }

    /// read(2) on a socket: a receive into one buffer with no flags.
    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64, nonBlocking: Bool) throws(Errno) -> Int {
        try withUnsafePointer(to: buffer) { (b: UnsafePointer<UnsafeMutableRawBufferPointer>) throws(Errno) -> Int in
            try receive(into: UnsafeBufferPointer(start: b, count: 1), flags: [], nonBlocking: nonBlocking,
                        wantAddress: false, controlCapacity: 0).count
        }
    }

    /// write(2) on a socket: a send of one buffer with no flags.
    public func write(from buffer: UnsafeRawBufferPointer, at offset: Int64, nonBlocking: Bool) throws(Errno) -> Int {
        try withUnsafePointer(to: buffer) { (b: UnsafePointer<UnsafeRawBufferPointer>) throws(Errno) -> Int in
            try send(UnsafeBufferPointer(start: b, count: 1), to: nil, control: [], flags: [], nonBlocking: nonBlocking)
        }
    }
    public var copiesInKernel: Bool { false }
    public func deviceControl(request: UInt64, argument: UInt64) throws(Errno) -> Int64 { throw .inappropriateIOCTLForDevice }
}

/// Makes the sockets of one or more families. The process keeps one per family; LibOS
/// chooses them (NetStack for AF_INET/AF_INET6 with `--net`, the host kernel otherwise).
public protocol SocketProvider: AnyObject, Sendable {
    /// socket(2): `type` without SOCK_NONBLOCK/SOCK_CLOEXEC. EPROTONOSUPPORT,
    /// ESOCKTNOSUPPORT (unknown type) or EINVAL as Linux answers for this family.
    func makeSocket(family: Int32, type: Int32, protocol: Int32) throws(Errno) -> any SocketHandle
    /// socketpair(2); EOPNOTSUPP for families without pairs (AF_INET: Linux says EOPNOTSUPP).
    func makePair(family: Int32, type: Int32, protocol: Int32) throws(Errno) -> (any SocketHandle, any SocketHandle)
    /// The interface ioctls (`SocketConstants.interfaceRequests`: SIOCGIFCONF, SIOCGIFINDEX,
    /// SIOCGIFADDR...) about the network this provider gives the instance, asked on a
    /// socket of another family (AF_UNIX); `argument` is the caller's raw argument.
    /// Default ENOTTY.
    func interfaceControl(request: UInt64, argument: UInt64) throws(Errno) -> Int64
    /// The process is ending (exit_group): what Linux's exit does to this family's
    /// sockets that the kernel would finish after the process is gone (a stack in the
    /// process finishes its closes before it goes). Called on the exiting thread.
    /// Default: nothing.
    func processExiting()
}

extension SocketProvider {
    public func makePair(family: Int32, type: Int32, protocol: Int32) throws(Errno) -> (any SocketHandle, any SocketHandle) {
        throw .notSupported
    }
    public func interfaceControl(request: UInt64, argument: UInt64) throws(Errno) -> Int64 {
        throw .inappropriateIOCTLForDevice
    }
    public func processExiting() {}
}

/// The providers of a process, by family. Unknown families: EAFNOSUPPORT.
public final class SocketProviders: @unchecked Sendable {
    private let lock = SpinLock()
    @exclusivity(unchecked) private var byFamily: [Int32: any SocketProvider] = [:]

    public init() {}

    public func set(_ provider: any SocketProvider, for families: Int32...) {
        lock.withLock { for f in families { byFamily[f] = provider } }
    }

    public func provider(for family: Int32) throws(Errno) -> any SocketProvider {
        guard let p = lock.withLock({ byFamily[family] }) else { throw .addressFamilyNotSupported }
        return p
    }

    /// Tells each provider once that the process is ending (exit_group).
    public func processExiting() {
        let all = lock.withLock { Array(byFamily.values) }
        var told: [ObjectIdentifier] = []
        for p in all where !told.contains(ObjectIdentifier(p)) {
            told.append(ObjectIdentifier(p))
            p.processExiting()
        }
    }
}
