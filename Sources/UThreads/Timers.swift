// Timers.swift: the per-kthread timer heap: a min-heap of parked uthreads keyed by their
// deadline, with O(log n) removal so a wake-up before the deadline cancels the timer.
import CUThreads

extension UnsafeMutablePointer where Pointee == KThread {
    /// Arms `t`'s timer for `deadline` on this kthread's heap.
    func addTimer(_ t: UT, deadline: Int64) {
        pointee.timerLock.lock()
        defer { pointee.timerLock.unlock() }
        require(t.pointee.timer_index < 0, "UThreads internal error: a uthread armed two timers")
        if pointee.timerCount == pointee.timerCapacity {
            let bigger = UnsafeMutablePointer<UT?>.allocate(capacity: pointee.timerCapacity * 2)
            bigger.moveInitialize(from: pointee.timers, count: pointee.timerCount)
            pointee.timers.deallocate()
            pointee.timers = bigger
            pointee.timerCapacity *= 2
        }
        t.pointee.deadline = deadline
        t.pointee.timed_out = 0
        t.pointee.timer_owner = UnsafeMutableRawPointer(self)
        let i = pointee.timerCount
        pointee.timerCount += 1
        (pointee.timers + i).initialize(to: t)
        t.pointee.timer_index = Int64(i)
        siftUp(i)
        pointee.earliestTimer.store(pointee.timers[0]!.pointee.deadline, ordering: .releasing)
    }

    /// Disarms `t`'s timer if it is still in this heap. Returns true if it was.
    @discardableResult
    func cancelTimer(_ t: UT) -> Bool {
        pointee.timerLock.lock()
        defer { pointee.timerLock.unlock() }
        guard t.pointee.timer_index >= 0, t.pointee.timer_owner == UnsafeMutableRawPointer(self) else { return false }
        removeAt(Int(t.pointee.timer_index))
        return true
    }

    /// Fires every timer whose deadline has passed: marks the uthread timed out and
    /// unparks it. Returns how many fired.
    func fireTimers(now: Int64) -> Int {
        if pointee.earliestTimer.load(ordering: .acquiring) > now { return 0 }
        var fired = WakeList()
        pointee.timerLock.lock()
        while pointee.timerCount > 0, let t = pointee.timers[0], t.pointee.deadline <= now {
            removeAt(0)
            t.pointee.timed_out = 1
            fired.push(t)
        }
        pointee.timerLock.unlock()
        let n = fired.count
        pointee.timersFired &+= UInt64(n)
        fired.wakeAll()
        return n
    }

    /// Number of armed timers (racy; for tests and statistics).
    var armedTimers: Int {
        pointee.timerLock.lock()
        defer { pointee.timerLock.unlock() }
        return pointee.timerCount
    }

    // MARK: heap internals, called with timerLock held

    private func removeAt(_ i: Int) {
        let t = pointee.timers[i]!
        t.pointee.timer_index = -1
        t.pointee.timer_owner = nil
        pointee.timerCount -= 1
        let last = pointee.timerCount
        if i != last {
            pointee.timers[i] = pointee.timers[last]
            pointee.timers[i]!.pointee.timer_index = Int64(i)
            (pointee.timers + last).deinitialize(count: 1)
            siftDown(i)
            siftUp(i)
        } else {
            (pointee.timers + last).deinitialize(count: 1)
        }
        let earliest = pointee.timerCount > 0 ? pointee.timers[0]!.pointee.deadline : .max
        pointee.earliestTimer.store(earliest, ordering: .releasing)
    }

    private func less(_ a: Int, _ b: Int) -> Bool {
        pointee.timers[a]!.pointee.deadline < pointee.timers[b]!.pointee.deadline
    }

    private func swapAt(_ a: Int, _ b: Int) {
        let ta = pointee.timers[a]!, tb = pointee.timers[b]!
        pointee.timers[a] = tb
        pointee.timers[b] = ta
        tb.pointee.timer_index = Int64(a)
        ta.pointee.timer_index = Int64(b)
    }

    private func siftUp(_ start: Int) {
        var i = start
        while i > 0 {
            let parent = (i - 1) / 2
            if !less(i, parent) { break }
            swapAt(i, parent)
            i = parent
        }
    }

    private func siftDown(_ start: Int) {
        var i = start
        let n = pointee.timerCount
        while true {
            let l = 2 * i + 1, r = l + 1
            var m = i
            if l < n, less(l, m) { m = l }
            if r < n, less(r, m) { m = r }
            if m == i { break }
            swapAt(i, m)
            i = m
        }
    }
}
