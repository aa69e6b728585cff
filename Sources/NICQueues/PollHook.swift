// PollHook.swift: runs a device queue from a UThreads kthread's scheduler loop, and lets
// the kthread sleep in the kernel on the queue's notification fd when no frames come.
import UThreads

/// A device shared with a UThreads poll hook (the hook closure needs a reference).
public final class SharedDevice<Device: NetworkDevice & ~Copyable>: @unchecked Sendable {
    public let device: Device
    public init(_ device: consuming Device) { self.device = device }

    /// A poll hook that receives up to `batchSize` frames from `queue` and passes them to
    /// `deliver` each time the kthread polls. After `armAfterIdlePolls` empty polls in a
    /// row it arms the device's notification, so when the kthread runs out of work it
    /// sleeps in epoll on the notification fd (Junction's way to avoid a polling core)
    /// and wakes when frames arrive.
    ///
    /// Register it on one kthread only: a queue is driven by one thread.
    public func pollHook(queue: Int, name: String? = nil, batchSize: Int = 32, armAfterIdlePolls: Int = 16,
                         deliver: @escaping @Sendable (inout PacketBatch) -> Void) -> PollHook {
        let state = HookState(batchSize: batchSize)
        return PollHook(name: name ?? "\(device.info.name) queue \(queue)", fd: device.notificationFD(queue: queue)) { [self] in
            let n = (try? device.receive(queue: queue, into: &state.batch, limit: batchSize)) ?? 0
            _ = try? device.reclaim(queue: queue)
            if n > 0 {
                state.idle = 0
                deliver(&state.batch)
                state.batch.removeAll()
                return n
            }
            state.idle += 1
            if state.idle == armAfterIdlePolls {
                // Frames already waiting: poll again rather than sleep.
                if (try? device.armNotification(queue: queue)) == false { state.idle = 0; return 1 }
            }
            return 0
        }
    }
}

/// The hook's own batch and idle count; only the hook's kthread touches them.
final class HookState: @unchecked Sendable {
    var batch: PacketBatch
    var idle = 0
    init(batchSize: Int) { batch = PacketBatch(capacity: batchSize) }
}
