// UnixPairAdapter.swift: a stop-gap AF_UNIX provider: socketpair(AF_UNIX, SOCK_STREAM)
// over FileSystem's SocketPairEnd, as before the socket layer, until the AF_UNIX backend
// (named, datagram and seqpacket sockets, SCM_RIGHTS) replaces it.
import FileSystem
import SystemPackage

/// AF_UNIX with stream socket pairs only; socket(AF_UNIX, ...) is EAFNOSUPPORT's neighbour
/// EOPNOTSUPP until the real backend arrives.
public final class UnixPairProvider: SocketProvider, @unchecked Sendable {
    public init() {}

    public func makeSocket(family: Int32, type: Int32, protocol: Int32) throws(Errno) -> any SocketHandle {
        throw .addressFamilyNotSupported
    }

    public func makePair(family: Int32, type: Int32, protocol: Int32) throws(Errno) -> (any SocketHandle, any SocketHandle) {
        guard type == SocketConstants.SOCK_STREAM else { throw .notSupported }  // no DGRAM/SEQPACKET pairs here yet
        guard `protocol` == 0 else { throw .protocolNotSupported }
        let (a, b) = SocketPairEnd.makePair()
        return (UnixPairSocket(a), UnixPairSocket(b))
    }
}

/// One end of a connected AF_UNIX stream pair.
final class UnixPairSocket: SocketHandle, @unchecked Sendable {
    let end: SocketPairEnd
    let common = SocketCommon()
    var family: Int32 { SocketConstants.AF_UNIX }
    var socketType: Int32 { SocketConstants.SOCK_STREAM }
    var protocolNumber: Int32 { 0 }

    init(_ end: SocketPairEnd) { self.end = end }

    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64, nonBlocking: Bool) throws(Errno) -> Int {
        try end.read(into: buffer, at: offset, nonBlocking: nonBlocking)
    }
    func write(from buffer: UnsafeRawBufferPointer, at offset: Int64, nonBlocking: Bool) throws(Errno) -> Int {
        try end.write(from: buffer, at: offset, nonBlocking: nonBlocking)
    }
    func size() throws(Errno) -> Int64 { 0 }
    func close() { end.close() }
    var readiness: Readiness { end.readiness }
    func addReadinessObserver(_ o: @escaping @Sendable (Readiness) -> Void) -> Int { end.addReadinessObserver(o) }
    func removeReadinessObserver(_ t: Int) { end.removeReadinessObserver(t) }

    // A connected pair: unix_bind/listen/accept refuse it, connect says EISCONN.
    func bind(_ address: SocketAddress) throws(Errno) { throw .invalidArgument }
    func listen(backlog: Int32) throws(Errno) { throw .invalidArgument }
    func accept(nonBlocking: Bool) throws(Errno) -> (socket: any SocketHandle, peer: SocketAddress) { throw .invalidArgument }
    func connect(_ address: SocketAddress, nonBlocking: Bool) throws(Errno) { throw .socketIsConnected }

    func send(_ buffers: UnsafeBufferPointer<UnsafeRawBufferPointer>, to address: SocketAddress?,
              control: [ControlMessage], flags: MessageFlags, nonBlocking: Bool) throws(Errno) -> Int {
        if address != nil { throw .socketIsConnected }
        guard control.isEmpty else { throw .notSupported }  // SCM_RIGHTS arrives with the AF_UNIX backend
        guard flags.isDisjoint(with: [.outOfBand]) else { throw .notSupported }
        var total = 0
        for buffer in buffers where buffer.count > 0 {
            var done = 0
            while done < buffer.count {
                let n: Int
                do { n = try end.write(from: UnsafeRawBufferPointer(rebasing: buffer[done...]), at: 0, nonBlocking: nonBlocking) } catch {
                    if total + done > 0 { return total + done }  // a partial count, as Linux returns it
                    throw error
                }
                done += n
                if nonBlocking && done < buffer.count { return total + done }
            }
            total += done
        }
        return total
    }

    func receive(into buffers: UnsafeBufferPointer<UnsafeMutableRawBufferPointer>, flags: MessageFlags,
                 nonBlocking: Bool, wantAddress: Bool, controlCapacity: Int) throws(Errno) -> ReceivedMessage {
        guard flags.isDisjoint(with: [.outOfBand, .peek]) else { throw .notSupported }
        var total = 0
        for buffer in buffers where buffer.count > 0 {
            var done = 0
            while done < buffer.count {
                let n: Int
                do { n = try end.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[done...]), at: 0, nonBlocking: nonBlocking || total + done > 0 && !flags.contains(.waitAll)) } catch {
                    if total + done > 0 { return ReceivedMessage(count: total + done) }
                    throw error
                }
                if n == 0 { return ReceivedMessage(count: total + done) }
                done += n
            }
            total += done
        }
        return ReceivedMessage(count: total)
    }

    func shutdown(_ how: Int32) throws(Errno) { try end.shutdown(how) }
    func localAddress() throws(Errno) -> SocketAddress { Self.unnamed }
    func peerAddress() throws(Errno) -> SocketAddress { Self.unnamed }

    /// An unnamed AF_UNIX address: the family alone.
    static var unnamed: SocketAddress {
        var a = SocketAddress()
        a[0] = UInt8(SocketConstants.AF_UNIX)
        a.setLength(2)
        return a
    }

    func setOption(level: Int32, name: Int32, value: UnsafeRawBufferPointer) throws(Errno) {
        guard level == SocketConstants.SOL_SOCKET else { throw .protocolNotAvailable }
        guard value.count >= 4 else { throw .invalidArgument }
        switch name {
        case 2, 7, 8, 9, 32, 33: return  // SO_REUSEADDR, SO_SNDBUF, SO_RCVBUF, SO_KEEPALIVE, SO_SNDBUFFORCE, SO_RCVBUFFORCE
        default: throw .protocolNotAvailable
        }
    }

    func getOption(level: Int32, name: Int32, into: UnsafeMutableRawBufferPointer) throws(Errno) -> Int {
        guard level == SocketConstants.SOL_SOCKET else { throw .protocolNotAvailable }
        let value: Int32
        switch name {
        case 4, 30: value = 0           // SO_ERROR, SO_ACCEPTCONN
        case 7, 8: value = 212_992      // SO_SNDBUF, SO_RCVBUF
        default: throw .protocolNotAvailable
        }
        withUnsafeBytes(of: value) { into.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0.prefix(into.count))) }
        return 4
    }

    func bytesReadable() throws(Errno) -> Int { end.available }
    func bytesUnsent() throws(Errno) -> Int { 0 }
}
