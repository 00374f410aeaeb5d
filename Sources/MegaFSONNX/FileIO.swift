#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Small POSIX helpers shared by the importer and the writer.
enum FileIO {
    static func errorString(_ code: Int32 = errno) -> String {
        String(cString: strerror(code))
    }

    /// `open(path, O_RDONLY)`; -1 with `errno` set on failure.
    static func openForReading(_ path: String) -> Int32 {
        open(path, O_RDONLY | O_CLOEXEC)
    }

    /// The folder holding `path` ("." for a bare file name).
    static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        let dir = String(path[..<slash])
        return dir.isEmpty ? "/" : dir
    }

    /// The last path component.
    static func fileName(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return path }
        return String(path[path.index(after: slash)...])
    }

    /// `realpath(3)`: absolute, symlinks resolved; nil when the path does not resolve.
    static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    /// Reads exactly `count` bytes at `offset` (64-bit) into `buffer`, looping over short reads.
    /// Returns nil on success, or a reason.
    static func readFully(fd: Int32, into buffer: UnsafeMutableRawPointer, count: Int, offset: Int64) -> String? {
        var done = 0
        while done < count {
            // Keep each call under 1 GiB: some kernels cap a single read near 2 GiB.
            let chunk = min(count - done, 1 << 30)
            let n = pread(fd, buffer + done, chunk, off_t(offset + Int64(done)))
            if n < 0 {
                if errno == EINTR { continue }
                return errorString()
            }
            if n == 0 { return "unexpected end of file after \(done) of \(count) bytes" }
            done += n
        }
        return nil
    }

    /// Writes all of `bytes` to `fd`, looping over short writes. Returns nil on success, or a reason.
    static func writeFully(fd: Int32, _ bytes: UnsafeRawBufferPointer) -> String? {
        guard var base = bytes.baseAddress else { return nil }
        var left = bytes.count
        while left > 0 {
            let n = write(fd, base, min(left, 1 << 30))
            if n < 0 {
                if errno == EINTR { continue }
                return errorString()
            }
            base += n
            left -= n
        }
        return nil
    }
}
