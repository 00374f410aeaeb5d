import Foundation
import MegaFSGraph
import Testing
@testable import MegaFSFormat

@Suite struct RoundTripTests {
    @Test(arguments: [ShufflePolicy.auto, .on, .off])
    func everythingSurvives(shuffle: ShufflePolicy) throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let graph = makeTestGraph()
        let path = dir.file("model.mfs")
        let summary = try ModelFileWriter.write(graph, to: path, options: smallFrames(shuffle: shuffle))
        #expect(dir.contents == ["model.mfs"])
        let back = try ModelFileReader.read(path)
        #expect(difference(graph, back) == nil, "\(difference(graph, back) ?? "")")
        // NaN payloads and -0 survive bit for bit.
        #expect(back.initializers["nan"]!.elements(as: UInt32.self)[1] == 0x7FC0_1234)
        #expect(back.initializers["conv.bias"]!.elements(as: UInt32.self)[3] == 0x8000_0000)

        #expect(summary.tensorCount == graph.initializers.count)
        #expect(summary.rawBytes == UInt64(graph.parameterBytes))
        #expect(summary.fileBytes == UInt64(try readBytes(path).count))
        // 12,000 bytes of big weights in 4 KiB frames: at least 3 frames for it alone.
        #expect(summary.frames >= 4)
        switch shuffle {
        case .off: #expect(summary.shuffledFrames == 0)
        case .on: #expect(summary.shuffledFrames > 0)
        case .auto: break
        }
    }

    @Test func singleThreadAndDeterministic() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let graph = makeTestGraph()
        try ModelFileWriter.write(graph, to: dir.file("a.mfs"), options: smallFrames(threads: 1))
        try ModelFileWriter.write(graph, to: dir.file("b.mfs"), options: smallFrames(threads: 3))
        #expect(try readBytes(dir.file("a.mfs")) == readBytes(dir.file("b.mfs")))
        let back = try ModelFileReader.read(dir.file("a.mfs"), options: ReadOptions(threads: 1))
        #expect(difference(graph, back) == nil)
    }

    @Test func defaultOptionsAndEmptyGraph() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let graph = makeTestGraph()
        try ModelFileWriter.write(graph, to: dir.file("d.mfs"))
        #expect(difference(graph, try ModelFileReader.read(dir.file("d.mfs"))) == nil)
        let empty = Graph(opsets: [:])
        let s = try ModelFileWriter.write(empty, to: dir.file("e.mfs"))
        #expect(s.frames == 0 && s.tensorCount == 0)
        #expect(difference(empty, try ModelFileReader.read(dir.file("e.mfs"))) == nil)
    }

    @Test func layoutIsAligned() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let path = dir.file("m.mfs")
        try ModelFileWriter.write(makeTestGraph(), to: path, options: smallFrames())
        let file = try readBytes(path)
        #expect(Array(file[0..<8]) == ModelFileFormat.magic)
        #expect(le(file, 8, UInt16.self) == 1 && le(file, 10, UInt16.self) == 0)
        let reader = try ModelFileReader(path: path)
        for s in reader.sections { #expect(s.offset % 64 == 0, "\(s)") }
        for f in reader.frames {
            #expect(f.fileOffset % 64 == 0 && f.rawOffset % 64 == 0 && f.rawLength % 64 == 0)
            #expect(f.rawLength <= 4096)
        }
        for t in reader.tensors where t.byteLength > 0 { #expect(t.dataOffset % 64 == 0) }
        // The big tensor spans several frames; a small one sits in one.
        let big = reader.tensors.first { $0.name == "conv.weight" }!
        #expect(big.frameCount == 3)
        #expect(reader.tensors.first { $0.name == "conv.bias" }!.frameCount == 1)
        #expect(reader.tensors.first { $0.name == "empty" }!.frameCount == 0)
        // Frames hold a single element size (the writer groups tensors by it).
        for f in reader.frames where f.filter == .byteShuffle { #expect([2, 4, 8].contains(f.elementSize)) }
    }

    @Test func uncompressedWeightsAreMappedFromTheFile() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let graph = makeTestGraph()
        let path = dir.file("u.mfs")
        var options = smallFrames()
        options.compress = false
        let summary = try ModelFileWriter.write(graph, to: path, options: options)
        #expect(summary.storedFrames == summary.frames && summary.compressedBytes == summary.frameRawBytes)
        let mapped = try ModelFileReader.read(path)
        #expect(difference(graph, mapped) == nil, "\(difference(graph, mapped) ?? "")")
        for (name, t) in mapped.initializers where t.byteCount > 0 {
            #expect(t.storage.isFileBacked, "\(name) should be mapped")
        }
        let copied = try ModelFileReader.read(path, options: ReadOptions(mapWeights: false))
        #expect(difference(graph, copied) == nil)
        #expect(copied.initializers.values.allSatisfy { !$0.storage.isFileBacked })
        // An 80 kB float32 matrix (which a compressed file puts in the huge-page slab) is mapped too.
        let large = makeTestGraph(bigElements: 20_000)
        try ModelFileWriter.write(large, to: dir.file("l.mfs"), options: options)
        let largeBack = try ModelFileReader.read(dir.file("l.mfs"))
        #expect(difference(large, largeBack) == nil)
        #expect(largeBack.initializers["conv.weight"]?.storage.isFileBacked == true)
        // Replacing the file (the writer renames a new one into place) leaves the mapped tensors as they were.
        var other = makeTestGraph(bigElements: 5000)
        other.name = "other"
        try ModelFileWriter.write(other, to: path, options: options)
        #expect(difference(graph, mapped) == nil)
        #expect(difference(other, try ModelFileReader.read(path)) == nil)
    }

    @Test func aDamagedByteOfAMappedFrameFailsTheLoad() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let path = dir.file("u.mfs")
        var options = smallFrames()
        options.compress = false
        try ModelFileWriter.write(makeTestGraph(), to: path, options: options)
        let reader = try ModelFileReader(path: path)
        let weight = try #require(reader.tensors.first { $0.name == "conv.weight" })
        let frame = reader.frames[weight.firstFrame]
        let at = Int(frame.fileOffset + (weight.dataOffset - frame.rawOffset)) + 100
        var bytes = try readBytes(path)
        bytes[at] ^= 0x10
        try writeBytes(bytes, to: path)
        for map in [true, false] {
            #expect(throws: ModelFileError.self, "mapWeights \(map)") {
                do { _ = try ModelFileReader.read(path, options: ReadOptions(mapWeights: map)) } catch let e as ModelFileError {
                    #expect(isChecksum(e), "\(e)")
                    throw e
                }
            }
        }
    }

    @Test func summaryWithoutDecompressing() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let graph = makeTestGraph()
        let path = dir.file("m.mfs")
        let written = try ModelFileWriter.write(graph, to: path, options: smallFrames())
        let s = try ModelFileReader.inspect(path)
        #expect(s.fileBytes == written.fileBytes)
        #expect(s.majorVersion == 1 && s.minorVersion == 0)
        #expect(s.tensorCount == graph.initializers.count)
        #expect(s.rawBytes == written.rawBytes && s.compressedBytes == written.compressedBytes)
        #expect(s.frameCount == written.frames && s.shuffledFrames == written.shuffledFrames)
        #expect(s.nodeCount == graph.nodes.count && s.graphName == "test graph")
        #expect(s.metadata == graph.metadata)
        #expect(s.inputs.map(\.name) == ["x"] && s.outputs.map(\.name) == ["y", "r"])
        #expect(s.operatorHistogram["Conv"] == 1)
        #expect(Set(s.sections.map(\.name)) == ["graph", "metadata", "tensor directory", "frame table", "data"])
        #expect(s.description.contains("source.sha256 = abab"))
        #expect(s.description.contains("input  x: float32[N,3,?,256]"))
    }

    @Test func quantizationRecord() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        var graph = makeTestGraph()
        graph.initializers["q.weight"] = Tensor([Int8](repeating: 3, count: 12), shape: [4, 3])
        graph.initializers["q.scales"] = Tensor([0.1, 0.2, 0.3, 0.4], shape: [4])
        let path = dir.file("q.mfs")
        var options = smallFrames()
        options.quantization = ["q.weight": .int8Symmetric(axis: 0, scales: "q.scales")]
        try ModelFileWriter.write(graph, to: path, options: options)
        let reader = try ModelFileReader(path: path)
        #expect(reader.tensors.first { $0.name == "q.weight" }!.quantization == .int8Symmetric(axis: 0, scales: "q.scales"))
        #expect(reader.tensors.first { $0.name == "q.scales" }!.quantization == TensorQuantization.none)
        #expect(reader.summary.quantizedTensors == 1)
        #expect(difference(graph, try reader.readGraph()) == nil)

        // Invalid records are refused at write time, and nothing is written.
        for bad: TensorQuantization in [.int8Symmetric(axis: 1, scales: "q.scales"),   // scales length 4 != 3
                                        .int8Symmetric(axis: 2, scales: "q.scales"),   // axis out of range
                                        .int8Symmetric(axis: 0, scales: "missing")] {
            options.quantization = ["q.weight": bad]
            expectModelError({ try ModelFileWriter.write(graph, to: dir.file("bad.mfs"), options: options) }) {
                if case .invalidInput = $0 { return true } else { return false }
            }
        }
        options.quantization = ["conv.weight": .int8Symmetric(axis: 0, scales: "q.scales")]   // not int8
        expectModelError({ try ModelFileWriter.write(graph, to: dir.file("bad.mfs"), options: options) }) {
            if case .invalidInput = $0 { return true } else { return false }
        }
        #expect(dir.contents == ["q.mfs"])
    }

    @Test func incompressibleFramesAreStored() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        var rng = SplitMix(state: 11)
        let graph = Graph(initializers: ["noise": Tensor(rng.bytes(3 * 4096), shape: [3 * 4096])])
        let s = try ModelFileWriter.write(graph, to: dir.file("n.mfs"), options: smallFrames())
        #expect(s.storedFrames == s.frames && s.frames == 3)
        #expect(difference(graph, try ModelFileReader.read(dir.file("n.mfs"))) == nil)
    }

    @Test func progressIsReportedAndMonotonic() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let seen = Locked<[Double]>([])
        var options = smallFrames(threads: 1)
        options.progress = { f in seen.mutate { $0.append(f) }; return true }
        try ModelFileWriter.write(makeTestGraph(), to: dir.file("p.mfs"), options: options)
        let values = seen.value
        #expect(values.first == 0 && values.last == 1)
        #expect(zip(values, values.dropFirst()).allSatisfy { $0 <= $1 })
        #expect(values.count >= 3)
    }
}

/// A tiny lock-protected box for test callbacks.
final class Locked<T>: @unchecked Sendable {
    private var v: T
    private let lock = NSLock()
    init(_ v: T) { self.v = v }
    var value: T { lock.lock(); defer { lock.unlock() }; return v }
    func mutate(_ f: (inout T) -> Void) { lock.lock(); f(&v); lock.unlock() }
}
