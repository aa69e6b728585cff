// MemXattr.swift: extended attributes of MemFS nodes, as a tmpfs keeps them: user.* on
// regular files and directories (EPERM elsewhere), trusted.* for root, security.*;
// other namespaces EOPNOTSUPP; XATTR_CREATE/XATTR_REPLACE; names up to 255 bytes and
// values up to 64 KiB.
import SystemPackage

/// A node that keeps its own extended attributes (the libOS's file systems).
public protocol ExtendedAttributes {
    func attribute(_ name: String, credentials: Credentials) throws(Errno) -> [UInt8]
    func setAttribute(_ name: String, _ value: [UInt8], flags: Int32, credentials: Credentials) throws(Errno)
    func attributeNames(credentials: Credentials) -> [String]
    func removeAttribute(_ name: String, credentials: Credentials) throws(Errno)
}

extension MemNode: ExtendedAttributes {
    /// Whether `name`'s namespace is one this node may hold (and the caller may use).
    private func check(_ name: String, _ credentials: Credentials, writing: Bool) throws(Errno) {
        if name.hasPrefix("user.") {
            guard kind == .regular || kind == .directory else { throw writing ? .notPermitted : .noData }
        } else if name.hasPrefix("trusted.") {
            guard credentials.uid == 0 else { throw writing ? .notPermitted : .noData }
        } else if !name.hasPrefix("security.") {
            throw .notSupported
        }
    }

    public func attribute(_ name: String, credentials: Credentials) throws(Errno) -> [UInt8] {
        try check(name, credentials, writing: false)
        guard let v = core.lock.withLock({ xattrs[name] }) else { throw .noData }
        return v
    }

    public func setAttribute(_ name: String, _ value: [UInt8], flags: Int32, credentials: Credentials) throws(Errno) {
        try check(name, credentials, writing: true)
        if name.hasPrefix("user.") && credentials.uid != 0 && credentials.uid != uid { throw .permissionDenied }
        try core.lock.withLock { () throws(Errno) in
            let exists = xattrs[name] != nil
            if flags & 1 != 0 && exists { throw .fileExists }     // XATTR_CREATE
            if flags & 2 != 0 && !exists { throw .noData }        // XATTR_REPLACE
            xattrs[name] = value
            changeTime = .now
        }
    }

    public func attributeNames(credentials: Credentials) -> [String] {
        core.lock.withLock { xattrs.keys.filter { !$0.hasPrefix("trusted.") || credentials.uid == 0 }.sorted() }
    }

    public func removeAttribute(_ name: String, credentials: Credentials) throws(Errno) {
        try check(name, credentials, writing: true)
        try core.lock.withLock { () throws(Errno) in
            guard xattrs.removeValue(forKey: name) != nil else { throw .noData }
            changeTime = .now
        }
    }
}
