// PollHook.swift: runs a device queue from a UThreads kthread's scheduler loop, and lets
// the kthread sleep in the kernel on the queue's notification fd when no frames come.
import UThreads

/// A device shared with a UThreads poll hook (the hook closure needs a reference).
public final class SharedDevice<Device: NetworkDevice & ~Copyable>: @unchecked Sendable {
    public let device: Device
    public init(_ device: consuming Device) { self.device = device }

    /// A poll hook that receives up to `batchSize` frames from `queue` and passes them to
    /// `deliver` each time the kthread polls. Every poll that finds nothing arms the
    /// device's notification (cheap when it is already armed), so whenever the kthread
    /// runs out of work and sleeps in epoll on the notification fd it is woken by the next
    /// frame: Junction's way to avoid a polling core. (UThreads calls hooks while it spins
    /// and then sleeps without telling them, so arming only "before sleeping" would race.)
    ///
    /// Register it on one kthread only: a queue is driven by one thread.
    public func pollHook(queue: Int, name: String? = nil, batchSize: Int = 32,
                         deliver: @escaping @Sendable (inout PacketBatch) -> Void) -> PollHook {
        let state = HookState(batchSize: batchSize)
        return PollHook(name: name ?? "\(device.info.name) queue \(queue)", fd: device.notificationFD(queue: queue)) { [self] in
            let n = (try? device.receive(queue: queue, into: &state.batch, limit: batchSize)) ?? 0
            _ = try? device.reclaim(queue: queue)
            if n > 0 {
                deliver(&state.batch)
                state.batch.removeAll()
                return n
            }
            // Frames slipped in before the arm: report work, so the kthread polls again.
            return (try? device.armNotification(queue: queue)) == false ? 1 : 0
        }
    }
}

/// The hook's own batch; only the hook's kthread touches it.
final class HookState: @unchecked Sendable {
    var batch: PacketBatch
    init(batchSize: Int) { batch = PacketBatch(capacity: batchSize) }
}
