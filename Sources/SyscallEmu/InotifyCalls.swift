// InotifyCalls.swift: placeholder during the build.
extension Handlers {
    static func registerInotify(_ d: Dispatcher) {}
}
