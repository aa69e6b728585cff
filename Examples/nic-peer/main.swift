// main.swift: nic-peer, the other end of a NICQueues link for tests and demos:
//   nic-peer info SPEC              open SPEC and print what it is (or the error)
//   nic-peer echo SPEC COUNT        send back each of COUNT frames, MACs swapped
//   nic-peer send SPEC COUNT SIZE   send COUNT numbered frames of SIZE bytes
//   nic-peer die SPEC COUNT         send COUNT frames, then die by SIGKILL
import Glibc
import NICQueues

func fail(_ message: String) -> Never {
    let text = "nic-peer: \(message)\n"
    _ = text.withCString { write(2, $0, strlen($0)) }
    exit(1)
}

let args = CommandLine.arguments
guard args.count >= 3 else { fail("usage: nic-peer info|echo|send|die SPEC [COUNT [SIZE]]") }
let mode = args[1]
let count = args.count > 3 ? Int(args[3]) ?? 0 : 0
let size = args.count > 4 ? Int(args[4]) ?? 64 : 64

/// A numbered test frame (the tests build the same): broadcast, our MAC, EtherType
/// 0x88B5, a big-endian sequence number, then a pattern.
func numberedFrame(_ seq: UInt32, size: Int, from src: MACAddress) -> [UInt8] {
    var f = MACAddress.broadcast.bytes + src.bytes + [0x88, 0xB5]
    f += withUnsafeBytes(of: seq.bigEndian) { Array($0) }
    while f.count < size { f.append(UInt8(truncatingIfNeeded: Int(seq) &+ f.count - 14)) }
    return f
}

func run() throws(NICError) {
    let spec = try DeviceSpec(parsing: args[2])
    let device = try spec.open(shmTimeout: .seconds(20))
    switch mode {
    case "info":
        let i = device.info
        print("\(i.name) backend=\(i.backend) mtu=\(i.mtu) mac=\(i.mac) queues=\(i.queueCount)")
    case "echo":
        var batch = PacketBatch(capacity: 32)
        var echoed = 0
        while echoed < count {
            if try device.receive(queue: 0, into: &batch, limit: 32) == 0 {
                _ = try device.waitForFrames(timeoutMs: 1000)
                continue
            }
            for i in 0..<batch.count {
                batch.withMutableBytes(at: i) { f in
                    for k in 0..<6 { let t = f[k]; f[k] = f[6 + k]; f[6 + k] = t }
                }
            }
            echoed += batch.count
            while !batch.isEmpty {
                if try device.transmit(queue: 0, from: &batch) == 0 { _ = try device.reclaim(queue: 0); usleep(10) }
            }
            _ = try device.reclaim(queue: 0)
        }
        print("echoed \(echoed)")
    case "send", "die":
        var batch = PacketBatch(capacity: 32)
        var seq: UInt32 = 0
        var completed = 0
        while Int(seq) < count || !batch.isEmpty {
            while Int(seq) < count && !batch.isFull {
                batch.append(try device.pool.allocate(copying: numberedFrame(seq, size: size, from: device.info.mac)))
                seq += 1
            }
            if try device.transmit(queue: 0, from: &batch) == 0 { usleep(10) }
            completed += try device.reclaim(queue: 0)
        }
        print("sent \(count)")
        fflush(nil)
        if mode == "die" { kill(getpid(), SIGKILL) }
        // Stay until the peer has taken every frame (or is gone), at most 10 s.
        var waits = 0
        while completed < count && device.linkAlive && waits < 100_000 {
            let n = try device.reclaim(queue: 0)
            completed += n
            if n == 0 { usleep(100); waits += 1 }
        }
    default:
        fail("unknown mode \(mode)")
    }
}

do { try run() } catch { fail(error.description) }
