import Foundation
import MegaFSGraph
import Testing
@testable import MegaFSFormat

@Suite struct WriterAtomicityTests {
    @Test func missingOrNonFolderDestinationLeavesNothing() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let graph = makeTestGraph()
        expectModelError({ try ModelFileWriter.write(graph, to: dir.file("no/such/dir/m.mfs")) }) {
            if case .io(_, let op, _) = $0 { return op.contains("temporary") } else { return false }
        }
        try writeBytes([1, 2, 3], to: dir.file("plain"))
        expectModelError({ try ModelFileWriter.write(graph, to: dir.file("plain/m.mfs")) }) {
            if case .io = $0 { return true } else { return false }
        }
        #expect(dir.contents == ["plain"])
    }

    /// An unwritable folder: permission bits for a normal user; for root (who ignores them)
    /// the immutable attribute, when chattr and the file system support it.
    @Test func unwritableFolderLeavesNothing() throws {
        let dir = try TempDir(onDisk: true)
        var immutable = false
        defer {
            if immutable { _ = runTool("/usr/bin/chattr", ["-i", dir.path]) }
            chmod(dir.path, 0o755)
            dir.cleanup()
        }
        if getuid() == 0 {
            guard FileManager.default.fileExists(atPath: "/usr/bin/chattr"),
                  runTool("/usr/bin/chattr", ["+i", dir.path]) == 0 else { return }
            immutable = true
        } else {
            chmod(dir.path, 0o555)
        }
        expectModelError({ try ModelFileWriter.write(makeTestGraph(), to: dir.file("m.mfs")) }) {
            if case .io(_, let op, _) = $0 { return op.contains("temporary") } else { return false }
        }
        #expect(dir.contents.isEmpty)
    }

    @Test func cancellationMidWriteLeavesNoFileAndKeepsTheOldOne() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let path = dir.file("m.mfs")
        try writeBytes(Array("previous".utf8), to: path)
        var options = smallFrames(threads: 1)
        let calls = Locked(0)
        // Stop after some frames have been written to the temporary file.
        options.progress = { f in calls.mutate { $0 += 1 }; return f < 0.3 }
        expectModelError({ try ModelFileWriter.write(makeTestGraph(bigElements: 20_000), to: path, options: options) }) {
            $0 == .cancelled
        }
        #expect(calls.value >= 2)
        #expect(dir.contents == ["m.mfs"])
        #expect(try readBytes(path) == Array("previous".utf8))
    }

    @Test func failedRenameRemovesTheTemporaryFile() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        // The destination is a non-empty folder: everything is written, then rename fails.
        try FileManager.default.createDirectory(atPath: dir.file("m.mfs/inner"), withIntermediateDirectories: true)
        expectModelError({ try ModelFileWriter.write(makeTestGraph(), to: dir.file("m.mfs"), options: smallFrames()) }) {
            if case .io(_, let op, _) = $0 { return op.contains("rename") } else { return false }
        }
        #expect(dir.contents == ["m.mfs"])
        #expect((try FileManager.default.contentsOfDirectory(atPath: dir.file("m.mfs"))) == ["inner"])
    }

    @Test func invalidOptionsWriteNothing() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        for options in [WriteOptions(frameSize: 1000), WriteOptions(compressionLevel: 99),
                        WriteOptions(quantization: ["nope": .none])] {
            expectModelError({ try ModelFileWriter.write(makeTestGraph(), to: dir.file("m.mfs"), options: options) }) {
                if case .invalidInput = $0 { return true } else { return false }
            }
        }
        #expect(dir.contents.isEmpty)
    }
}
