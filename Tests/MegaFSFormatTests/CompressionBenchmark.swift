import Foundation
import MegaFSGraph
import Testing
@testable import MegaFSFormat

/// Measurements behind the numbers in formats/FORMAT.md. Skipped unless asked for:
///
///     MEGAFS_FORMAT_BENCH=1 swift test -c release -Xswiftc -enable-testing --filter CompressionBenchmark
///     MEGAFS_FORMAT_BENCH_ONNX=/work/full/torchscript/encoder.onnx swift test -c release -Xswiftc -enable-testing --filter CompressionBenchmark
///
/// Speeds are per core: CPU time of the calling thread (the machine is shared, so wall time
/// would measure the neighbours), zstd and the filter only, 4 MiB frames.
@Suite struct CompressionBenchmark {
    static let env = ProcessInfo.processInfo.environment

    @Test func synthetic() throws {
        guard Self.env["MEGAFS_FORMAT_BENCH"] != nil else { return }
        // 64 MiB of conv-like weights: N(0, 1) * He scale for a 3x3 conv with 512 inputs,
        // times a per-output-channel factor exp(N(0, 0.5)) as BN folding produces.
        var rng = SplitMix(state: 2024)
        let perChannel = 512 * 9
        let channels = (64 << 20) / 4 / perChannel
        var values: [Float] = []
        values.reserveCapacity(channels * perChannel)
        let he = (2.0 / Float(perChannel)).squareRoot()
        for _ in 0..<channels {
            let s = he * exp(0.5 * rng.normal())
            for _ in 0..<perChannel { values.append(rng.normal() * s) }
        }
        let bytes = values.withUnsafeBytes { Array($0) }
        print("synthetic conv weights: \(bytes.count >> 20) MiB float32")
        try measureLevels(bytes, levels: [-5, 1, 3, 6, 9, 19], label: "synthetic")
    }

    @Test func onnxInitializers() throws {
        guard let path = Self.env["MEGAFS_FORMAT_BENCH_ONNX"] else { return }
        let graph = try loadONNXInitializers(path)
        let floats = graph.initializers.values.filter { $0.dtype == .float32 }
        print("\(path): \(graph.initializers.count) initializers, \(graph.parameterBytes) bytes")
        // Sample: 16 MiB from each of up to 8 tensors spread over sizes (largest first), so the
        // level sweep stays affordable; then the whole model through the writer and reader.
        var sample: [UInt8] = []
        for t in floats.sorted(by: { $0.byteCount > $1.byteCount }).enumerated()
        where t.offset % max(1, floats.count / 8) == 0 && sample.count < 64 << 20 {
            sample += t.element.bytes.prefix(16 << 20)
        }
        try measureLevels(sample, levels: [-5, 1, 3, 6, 9, 19], label: "onnx sample")
        try endToEnd(graph, label: URL(fileURLWithPath: path).lastPathComponent)
    }

    /// Ratio and per-core speed, shuffled and not, per zstd level.
    func measureLevels(_ data: [UInt8], levels: [Int], label: String) throws {
        let frame = ModelFileFormat.defaultFrameSize
        print("| data | level | filter | ratio | compress MB/s/core | decompress+unfilter MB/s/core |")
        print("|---|---|---|---|---|---|")
        for level in levels {
            // Level 19 is slow: measure it on the first 16 MiB only.
            let input = level >= 15 ? Array(data.prefix(16 << 20)) : data
            for shuffle in [false, true] {
                let compressor = try ZstdCompressor(level: level)
                let decompressor = ZstdDecompressor()
                let shuffled = UnsafeMutableRawBufferPointer.allocate(byteCount: frame, alignment: 64)
                let out = UnsafeMutableRawBufferPointer.allocate(byteCount: ZstdCompressor.bound(frame), alignment: 64)
                let back = UnsafeMutableRawBufferPointer.allocate(byteCount: frame, alignment: 64)
                let raw = UnsafeMutableRawBufferPointer.allocate(byteCount: frame, alignment: 64)
                defer { shuffled.deallocate(); out.deallocate(); back.deallocate(); raw.deallocate() }
                var compressed = 0
                var cTime = 0.0, dTime = 0.0
                try input.withUnsafeBytes { all in
                    var at = 0
                    while at < all.count {
                        let n = min(frame, all.count - at)
                        let src = UnsafeRawBufferPointer(rebasing: all[at..<at + n])
                        var t0 = threadCPUTime()
                        var toCompress = src
                        if shuffle {
                            ByteShuffle.shuffle(src, into: shuffled, elementSize: 4)
                            toCompress = UnsafeRawBufferPointer(rebasing: shuffled[0..<n])
                        }
                        let size = try compressor.compress(toCompress, into: out)
                        cTime += threadCPUTime() - t0
                        compressed += size
                        t0 = threadCPUTime()
                        let dst = UnsafeMutableRawBufferPointer(rebasing: back[0..<n])
                        let problem = decompressor.decompress(UnsafeRawBufferPointer(rebasing: out[0..<size]), into: dst)
                        if shuffle {
                            ByteShuffle.unshuffle(UnsafeRawBufferPointer(dst), into: raw, elementSize: 4)
                        }
                        dTime += threadCPUTime() - t0
                        #expect(problem == nil)
                        #expect(memcmp(shuffle ? raw.baseAddress! : dst.baseAddress!, src.baseAddress!, n) == 0)
                        at += n
                    }
                }
                let mb = Double(input.count) / 1e6
                print(String(format: "| %@ | %d | %@ | %.4f | %.0f | %.0f |", label, level, shuffle ? "shuffle" : "none",
                             Double(input.count) / Double(compressed), mb / cTime, mb / dTime))
            }
        }
        // Frame size: level 1, shuffled.
        for frame in [64 << 10, 256 << 10, 1 << 20, 4 << 20, 16 << 20] {
            let compressor = try ZstdCompressor(level: 1)
            let sh = UnsafeMutableRawBufferPointer.allocate(byteCount: frame, alignment: 64)
            let out = UnsafeMutableRawBufferPointer.allocate(byteCount: ZstdCompressor.bound(frame), alignment: 64)
            defer { sh.deallocate(); out.deallocate() }
            var compressed = 0
            try data.withUnsafeBytes { all in
                var at = 0
                while at < all.count {
                    let n = min(frame, all.count - at)
                    ByteShuffle.shuffle(UnsafeRawBufferPointer(rebasing: all[at..<at + n]), into: sh, elementSize: 4)
                    compressed += try compressor.compress(UnsafeRawBufferPointer(rebasing: sh[0..<n]), into: out)
                    at += n
                }
            }
            print(String(format: "%@: frame %d KiB, level 1, shuffle: ratio %.4f", label, frame >> 10, Double(data.count) / Double(compressed)))
        }
        // Cost of the filter alone and of the checksum.
        let t0 = threadCPUTime()
        var sink: UInt64 = 0
        data.withUnsafeBytes { sink ^= XXH64.hash($0) }
        let xxhTime = threadCPUTime() - t0
        let s = UnsafeMutableRawBufferPointer.allocate(byteCount: data.count, alignment: 64)
        defer { s.deallocate() }
        let t1 = threadCPUTime()
        data.withUnsafeBytes { ByteShuffle.shuffle($0, into: s, elementSize: 4) }
        let shufTime = threadCPUTime() - t1
        let t2 = threadCPUTime()
        let u = UnsafeMutableRawBufferPointer.allocate(byteCount: data.count, alignment: 64)
        defer { u.deallocate() }
        ByteShuffle.unshuffle(UnsafeRawBufferPointer(s), into: u, elementSize: 4)
        let unshufTime = threadCPUTime() - t2
        let t3 = threadCPUTime()
        let digest = data.withUnsafeBytes { SHA256.hash($0) }
        let shaTime = threadCPUTime() - t3
        let mb = Double(data.count) / 1e6
        print(String(format: "SHA-256 %.0f MB/s per core [%@]", mb / shaTime, String(digest.hex.prefix(4))))
        print(String(format: "XXH64 %.0f MB/s, shuffle %.0f MB/s, unshuffle %.0f MB/s (per core) [%llx]",
                     mb / xxhTime, mb / shufTime, mb / unshufTime, sink & 0xF))
    }

    /// The whole graph through ModelFileWriter and ModelFileReader with 2 threads: wall time
    /// and process CPU time; then, frame by frame, shuffled vs plain at the same level.
    func endToEnd(_ graph: Graph, label: String) throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        var frameSizes: [String: [UInt64]] = [:]
        var rawLengths: [UInt64] = []
        for (level, shuffle) in [(1, ShufflePolicy.off), (1, .on), (1, .auto), (3, .on), (3, .off)] {
            let path = dir.file("m.mfs")
            let c0 = processCPUTime()
            let w = try ModelFileWriter.write(graph, to: path, options: WriteOptions(compressionLevel: level, threads: 2, shuffle: shuffle))
            let c1 = processCPUTime()
            let t0 = Date()
            let reader = try ModelFileReader(path: path, options: ReadOptions(threads: 2))
            let back = try reader.readGraph()
            let readSeconds = Date().timeIntervalSince(t0)
            let c2 = processCPUTime()
            #expect(difference(graph, back) == nil)
            frameSizes["\(level) \(shuffle)"] = reader.frames.map(\.storedLength)
            rawLengths = reader.frames.map(\.rawLength)
            print(String(format: "%@ level %d shuffle %@: %d frames (%d shuffled), %.1f MB -> %.1f MB file, ratio %.4f; write %.1f s wall / %.1f s CPU, read+verify %.1f s wall / %.1f s CPU",
                         label, level, shuffle.rawValue, w.frames, w.shuffledFrames, Double(w.rawBytes) / 1e6,
                         Double(w.fileBytes) / 1e6, Double(w.rawBytes) / Double(w.fileBytes), w.seconds, c1 - c0,
                         readSeconds, c2 - c1))
            try? FileManager.default.removeItem(atPath: path)
        }
        for level in [1, 3] {
            guard let on = frameSizes["\(level) on"], let off = frameSizes["\(level) off"] else { continue }
            var plainWins = 0, plainWinsLarge = 0, worst = 1.0
            for i in on.indices where off[i] < on[i] {
                plainWins += 1
                if rawLengths[i] > 1 << 20 { plainWinsLarge += 1 }
                worst = min(worst, Double(off[i]) / Double(on[i]))
            }
            print("level \(level): plain beat shuffled in \(plainWins) of \(on.count) frames (\(plainWinsLarge) of them over 1 MiB raw); largest loss from shuffling \(String(format: "%.2f", (1 / worst - 1) * 100))%")
        }
    }
}

func processCPUTime() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

func threadCPUTime() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

/// Initializers (raw_data only) of an ONNX file, by a minimal protobuf scan: ModelProto.graph
/// (field 7) -> GraphProto.initializer (field 5) -> TensorProto dims (1), data_type (2),
/// name (8), raw_data (9). Enough to measure compression on real exported weights.
func loadONNXInitializers(_ path: String) throws -> Graph {
    let data = try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped)
    var graph = Graph()
    try data.withUnsafeBytes { (buf: UnsafeRawBufferPointer) in
        let p = buf.bindMemory(to: UInt8.self)
        func varint(_ i: inout Int) -> UInt64 {
            var v: UInt64 = 0, shift: UInt64 = 0
            while true {
                let b = p[i]; i += 1
                v |= UInt64(b & 0x7F) << shift
                if b < 0x80 { return v }
                shift += 7
            }
        }
        /// Calls body(field, wireType, start, end) for each field in [from, to).
        func fields(_ from: Int, _ to: Int, _ body: (Int, Int, inout Int, Int) throws -> Void) rethrows {
            var i = from
            while i < to {
                let key = varint(&i)
                let field = Int(key >> 3), wire = Int(key & 7)
                switch wire {
                case 0: var j = i; let v = varint(&j); try body(field, wire, &i, Int(v)); i = j
                case 1: i += 8
                case 5: i += 4
                case 2:
                    let n = Int(varint(&i))
                    var s = i
                    try body(field, wire, &s, i + n)
                    i += n
                default: fatalError("unexpected wire type \(wire)")
                }
            }
        }
        try fields(0, p.count) { field, wire, start, end in
            guard field == 7, wire == 2 else { return }
            try fields(start, end) { f, w, s, e in
                guard f == 5, w == 2 else { return }
                var dims: [Int] = [], type = 0, name = "", raw: Range<Int>? = nil
                fields(s, e) { tf, tw, ts, te in
                    switch (tf, tw) {
                    case (1, 0): dims.append(te)
                    case (1, 2): var k = ts; while k < te { dims.append(Int(varint(&k))) }
                    case (2, 0): type = te
                    case (8, 2): name = String(decoding: UnsafeRawBufferPointer(rebasing: buf[ts..<te]), as: UTF8.self)
                    case (9, 2): raw = ts..<te
                    default: break
                    }
                }
                guard let raw, let dtype = DType(rawValue: Int32(type)) else { return }
                graph.initializers[name] = try Tensor(dtype: dtype, shape: dims, bytes: UnsafeRawBufferPointer(rebasing: buf[raw]))
            }
        }
    }
    return graph
}

/// Reads real model files end to end (skipped unless asked):
///     MEGAFS_FORMAT_CHECK=/tmp/a.mfs:/tmp/b.mfs swift test --filter ExistingFiles
@Suite struct ExistingFiles {
    @Test func readAndVerify() throws {
        guard let list = ProcessInfo.processInfo.environment["MEGAFS_FORMAT_CHECK"] else { return }
        for path in list.split(separator: ":").map(String.init) {
            let t0 = Date()
            let reader = try ModelFileReader(path: path)
            let g = try reader.readGraph()
            print(reader.summary)
            print(String(format: "read and verified %d tensors, %d nodes in %.2f s", g.initializers.count, g.nodes.count,
                         Date().timeIntervalSince(t0)))
        }
    }
}
