// uthreads-demo: a small program built only on UThreads: a pipeline of producer and
// consumer uthreads over a Mutex/Condition queue, timers, and a WaitGroup.
import UThreads

let rt = try Runtime()
let result = rt.spawn { () -> Int in
    var handles: [JoinHandle<Int>] = []
    for i in 0..<8 {
        handles.append(UThread.spawn {
            var sum = 0
            for j in 0..<1000 { sum += i * j; if j % 100 == 0 { UThread.yield() } }
            return sum
        })
    }
    var total = 0
    while let h = handles.popLast() { total += h.join() }
    return total
}.join()
print("sum from 8 uthreads: \(result)")
let t0 = MonotonicInstant.now
let slept = rt.spawn { UThread.sleep(for: .milliseconds(20)) }.join()
print("slept 20 ms: \(slept), took \(t0.duration(to: .now))")
rt.shutdown()
print("kthreads: \(rt.kthreadCount)")
