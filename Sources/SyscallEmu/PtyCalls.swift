// PtyCalls.swift: the pseudo-terminal ioctls on a host /dev/ptmx master (openpty, posix_openpt).
import CJunction
import FileSystem
import SystemPackage
import Glibc

extension Handlers {
    /// TIOCGPTN, TIOCSPTLCK, TIOCGPTLCK, TIOCPKT, TIOCGPKT, TIOCSIG: the host master's
    /// answers; TIOCGPTPEER opens the host's slave and installs it as a descriptor named
    /// /dev/pts/N (the instance mounts the host's /dev/pts). Nil for other requests.
    static func ptyIoctl(_ f: SyscallFrame, _ p: LinuxProcess, _ file: OpenFile) throws(LinuxError) -> Int64? {
        switch f.a1 {
        case 0x8004_5430, 0x4004_5431, 0x8004_5439, 0x5420, 0x8004_5438, 0x4004_5436:
            guard let host = file.handle.hostDescriptor, isatty(host) == 1 else { throw LinuxError(.ENOTTY) }
            return try hostCall(16, UInt64(host), f.a1, f.a2)
        case 0x5441:  // TIOCGPTPEER: flags O_RDWR, O_NOCTTY, O_CLOEXEC, O_NONBLOCK...
            guard let host = file.handle.hostDescriptor, isatty(host) == 1 else { throw LinuxError(.ENOTTY) }
            let cloexec = UInt64(O_CLOEXEC)
            let slave = Int32(try hostCall(16, UInt64(host), f.a1, (f.a2 | cloexec | UInt64(O_NOCTTY))))
            var number: UInt32 = 0
            let r = withUnsafeMutablePointer(to: &number) { cj_host_syscall(16, UInt64(host), 0x8004_5430, UInt64(UInt(bitPattern: $0)), 0, 0, 0) }
            guard r == 0 else {
                Glibc.close(slave)
                throw LinuxError(Errno(rawValue: Int32(-r)))
            }
            let path = "/dev/pts/\(number)"
            let location: Location
            do { location = try p.fs.resolve(path) } catch {
                Glibc.close(slave)
                throw LinuxError(error)
            }
            var flags = OpenFlags(rawValue: Int32(truncatingIfNeeded: f.a2) & 0o3)
            if f.a2 & UInt64(O_NONBLOCK) != 0 { flags.insert(.nonBlocking) }
            let opened = OpenFile(location: location, handle: HostDescriptorHandle(fd: slave, owned: true), flags: flags)
            return Int64(try p.descriptors.install(opened, closeOnExec: f.a2 & cloexec != 0))
        default:
            return nil
        }
    }
}
