#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A file opened for positional reads (`pread`), safe to share between threads.
final class ReadableFile: @unchecked Sendable {
    let path: String
    let fd: Int32
    let size: UInt64

    init(path: String) throws {
        self.path = path
        fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw ModelFileError.io(path: path, operation: "open", message: errnoMessage()) }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            let message = errnoMessage()
            close(fd)
            throw ModelFileError.io(path: path, operation: "stat", message: message)
        }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            close(fd)
            throw ModelFileError.io(path: path, operation: "open", message: "not a regular file")
        }
        size = UInt64(st.st_size)
    }

    deinit { close(fd) }

    /// Reads exactly `count` bytes at `offset` (the caller has checked the range against `size`).
    func read(at offset: UInt64, count: Int, into destination: UnsafeMutableRawPointer, what: String) throws {
        var done = 0
        while done < count {
            let n = pread(fd, destination + done, count - done, off_t(offset) + off_t(done))
            if n < 0 {
                if errno == EINTR { continue }
                throw ModelFileError.io(path: path, operation: "read \(what) at offset \(offset)", message: errnoMessage())
            }
            if n == 0 {
                throw ModelFileError.truncated(path: path, what: what, needed: offset + UInt64(count),
                                               fileSize: offset + UInt64(done))
            }
            done += n
        }
    }

    func readBytes(at offset: UInt64, count: Int, what: String) throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        try out.withUnsafeMutableBytes { buf in
            if count > 0 { try read(at: offset, count: count, into: buf.baseAddress!, what: what) }
        }
        return out
    }
}

/// A new file opened for writing; removed by `discard()` unless `commit(to:)` renamed it.
final class TemporaryFile {
    let path: String
    private(set) var fd: Int32
    /// Renamed into place, or removed: nothing left to clean up.
    private var finished = false

    /// Creates a fresh temporary file beside `destination` (same folder, so the rename is atomic).
    init(beside destination: String) throws {
        let slash = destination.lastIndex(of: "/")
        let folder = slash.map { String(destination[...$0]) } ?? ""   // with its trailing "/"
        let base = slash.map { String(destination[destination.index(after: $0)...]) } ?? destination
        var attempt = 0
        while true {
            let candidate = folder + ".\(base).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
            let f = open(candidate, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
            if f >= 0 { path = candidate; fd = f; return }
            if errno == EEXIST && attempt < 8 { attempt += 1; continue }
            throw ModelFileError.io(path: destination, operation: "create a temporary file in '\(folder.isEmpty ? "." : folder)'",
                                    message: errnoMessage())
        }
    }

    deinit { discard() }

    func write(_ bytes: UnsafeRawBufferPointer, at offset: UInt64) throws {
        guard let base = bytes.baseAddress else { return }
        var done = 0
        while done < bytes.count {
            let n = pwrite(fd, base + done, bytes.count - done, off_t(offset) + off_t(done))
            if n < 0 {
                if errno == EINTR { continue }
                throw ModelFileError.io(path: path, operation: "write at offset \(offset + UInt64(done))", message: errnoMessage())
            }
            done += n
        }
    }

    func write(_ bytes: [UInt8], at offset: UInt64) throws {
        try bytes.withUnsafeBytes { try write($0, at: offset) }
    }

    /// Flushes, closes and renames over `destination`, then syncs the folder.
    func commit(to destination: String) throws {
        guard fsync(fd) == 0 else { throw ModelFileError.io(path: path, operation: "fsync", message: errnoMessage()) }
        let r = close(fd)
        fd = -1
        guard r == 0 else { throw ModelFileError.io(path: path, operation: "close", message: errnoMessage()) }
        guard rename(path, destination) == 0 else {
            throw ModelFileError.io(path: destination, operation: "rename \(path) to it", message: errnoMessage())
        }
        finished = true
        let slash = destination.lastIndex(of: "/")
        let folder = slash.map { String(destination[...$0]) } ?? "."
        let dfd = open(folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 { _ = fsync(dfd); close(dfd) }
    }

    /// Closes and removes the file if it was not committed. Idempotent.
    func discard() {
        if fd >= 0 { close(fd); fd = -1 }
        if !finished { unlink(path); finished = true }
    }
}
