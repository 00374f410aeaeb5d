import ArgumentParser
import Foundation
import MegaFSGraph
import MegaFSONNX
import MegaFSRuntime
#if canImport(Glibc)
import Glibc
#endif

/// `megafs run`: runs a model on .npy inputs, writes .npy outputs, reports timings.
struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a model (.mfs, or .onnx) on .npy inputs and write its outputs as .npy files.",
        discussion: """
            Inputs are given as NAME=path.npy (float32 or int64, the dtype and shape the model \
            declares); a model with one input also takes a bare path. Each output is written as \
            DIR/<output name>.npy, the name made file-safe. --repeat N runs N more times after the \
            first and reports min/median/max latency (loading excluded). --profile prints the time \
            and memory of every operator and the peak arena size, and for convolutions and GEMMs \
            their GFLOP/s and percent of the machine's nominal peak (clock x vector lanes x 2 FMA \
            units x threads, stated).

            Environment (for measurements and tests): \
            MEGAFS_CONV=auto|im2col|direct|winograd|winograd-f4 picks how 3x3 convolutions and \
            stride-2 transposed convolutions are computed (auto: Winograd for 3x3 stride-1 convs \
            with 32-512 channels and 16x16 outputs or more (32x32 with AVX-512), F(4x4,3x3) \
            from 128x128 up (and from 64x64 with at least 256 channels, its transformed \
            weight then made on every call) and F(2x2,3x3) below, the direct kernel for the other 3x3 stride-1 \
            convs at least 16 columns wide and for 3x3 stride-2 transposed convs with at least \
            16 input columns, GEMM + col2im for the other transposed convs, im2col + sgemm \
            for the rest and the streamed products for convs of at most 32 output columns; \
            im2col: im2col + sgemm (and GEMM + col2im) for all of those; direct: the direct \
            kernels wherever they apply; winograd: Winograd for every 3x3 stride-1 conv; winograd-f4: F(4x4,3x3) for \
            all of them); MEGAFS_CONV3X3_PATH=ref|avx2|avx512 forces the code path of our own \
            kernels; MEGAFS_GEMV=openblas runs one-row linears (the FTM swapper's) with \
            OpenBLAS's sgemv instead of our streaming GEMV; MEGAFS_HUGE_PAGES=off loads the \
            weights without asking for transparent huge pages; MEGAFS_MAP_WEIGHTS=off reads the \
            weights of a file converted with --uncompressed instead of mapping them; \
            MEGAFS_GEMV_GROUPS=off runs every one-row product as a step of its own; \
            MEGAFS_BANDED_TAIL=off runs the generator's last block (upsampling conv, 3x3 conv, \
            ToRGB) as three steps instead of one step in bands of rows; MEGAFS_POOL_SPIN_US=N sets how \
            long idle worker threads poll for the next parallel loop before they sleep \
            (default 200, 0 = sleep at once).
            """)

    @Argument(help: "The model file (.mfs; an .onnx file is imported and optimised on the fly).")
    var model: String

    @Option(name: .customLong("input"), help: ArgumentHelp("An input as NAME=path.npy (or path.npy for a single-input model).", valueName: "NAME=PATH"))
    var inputs: [String] = []

    @Option(name: .customLong("output-dir"), help: "Folder for the outputs (created if missing).")
    var outputDir: String?

    @Flag(name: .customLong("int8-activations"), help: "Dynamic int8 mode for int8-weight models: quantize each convolution's input per call and multiply with int8 dot products (faster where the CPU has VNNI; a little more drift).")
    var int8Activations = false

    @Option(help: "Threads for the kernels and OpenBLAS (default: all cores).")
    var threads: Int = ProcessInfo.processInfo.activeProcessorCount

    @Flag(name: .customLong("no-fusion"), help: "Run every node on its own (no fused kernels).")
    var noFusion = false

    @Flag(help: "Time every operator; print per-operator time and memory, and the peak arena.")
    var profile = false

    @Option(name: .customLong("profile-nodes"), help: "With --profile: how many of the slowest nodes to list (0: all).")
    var profileNodes: Int = 15

    @Option(help: "Runs after the first one, for latency statistics.")
    var `repeat`: Int = 0

    @Flag(help: "Print timings as JSON: load_ms, first_run_ms, latency_ms {min, median, max}, peak_rss_mb.")
    var json = false

    func validate() throws {
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
        guard `repeat` >= 0 else { throw ValidationError("--repeat must be 0 or more") }
        guard profileNodes >= 0 else { throw ValidationError("--profile-nodes must be 0 or more") }
        guard !inputs.isEmpty else { throw ValidationError("no input given: use --input NAME=path.npy") }
    }

    func run() throws {
        let options = SessionOptions(threads: threads, enableFusion: !noFusion, int8Activations: int8Activations)
        let loadStart = DispatchTime.now().uptimeNanoseconds
        let session: InferenceSession
        guard FileManager.default.fileExists(atPath: model) else { throw RunError("model file not found: \(model)") }
        session = try loadSession(model, onnx: model.lowercased().hasSuffix(".onnx"), options: options)
        let loadMs = Self.ms(since: loadStart)

        let feeds = try readInputs(session)

        let firstStart = DispatchTime.now().uptimeNanoseconds
        var result = try session.run(feeds, profile: profile && `repeat` == 0)
        let firstMs = Self.ms(since: firstStart)
        var latencies: [Double] = []
        for i in 0..<`repeat` {
            // Let go of the previous outputs first: the session then reuses their buffers (a
            // fresh one per run would time its page faults, 134 MB for a 1024 px conv).
            result.outputs = [:]
            let t0 = DispatchTime.now().uptimeNanoseconds
            let r = try session.run(feeds, profile: profile && i == `repeat` - 1)
            latencies.append(Self.ms(since: t0))
            result.outputs = r.outputs
            if r.profile != nil { result.profile = r.profile }
        }

        if let outputDir { try writeOutputs(result.outputs, session: session, to: outputDir) }

        let stats = latencies.isEmpty ? [firstMs] : latencies.sorted()
        let median = stats.count % 2 == 1 ? stats[stats.count / 2] : (stats[stats.count / 2 - 1] + stats[stats.count / 2]) / 2
        let fusions = session.fusions
        let summary = session.lastPlanSummary
        if json {
            var object: [String: Any] = [
                "load_ms": Self.round(loadMs),
                "first_run_ms": Self.round(firstMs),
                "latency_ms": ["min": Self.round(stats.first!), "median": Self.round(median), "max": Self.round(stats.last!)],
                "peak_rss_mb": Self.round(Self.peakRSSMegabytes()),
                "runs": 1 + `repeat`,
                "threads": threads,
                "fusions": fusions.map { ["name": $0.name, "count": $0.count] },
            ]
            if let summary { object["arena_bytes"] = summary.arenaBytes }
            if let p = result.profile {
                var profileObject: [String: Any] = [
                    "total_ms": Self.round(p.totalMilliseconds),
                    "arena_bytes": p.arenaBytes,
                    "unshared_bytes": p.unsharedBytes,
                    "operators": p.byOperatorType.map { row -> [String: Any] in
                        var o: [String: Any] = ["op": row.opType, "count": row.count, "ms": Self.round(row.milliseconds),
                                                "output_bytes": row.outputBytes]
                        if row.flops > 0 && row.milliseconds > 0 {
                            o["gflop"] = Self.round(row.flops / 1e9)
                            o["gflops_per_s"] = Self.round(row.flops / row.milliseconds / 1e6)
                        }
                        return o
                    },
                    "gflop": Self.round(p.totalFlops / 1e9),
                ]
                if let peak = MachinePeak.current(threads: threads) {
                    profileObject["peak_gflops_per_s"] = Self.round(peak.gflopsPerSecond)
                    profileObject["peak_assumption"] = peak.assumption
                }
                object["profile"] = profileObject
            }
            let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
            print(String(decoding: data, as: UTF8.self))
            return
        }

        print("model \(model): loaded in \(Self.fmt(loadMs)) ms, \(threads) thread\(threads == 1 ? "" : "s")")
        if let summary {
            print("plan: \(summary.nodeCount) steps, arena \(Self.bytes(summary.arenaBytes)) (without reuse \(Self.bytes(summary.unsharedBytes)))")
        }
        if !fusions.isEmpty {
            print("fusions: " + fusions.map { "\($0.name) x\($0.count)" }.joined(separator: ", "))
        } else {
            print("fusions: none")
        }
        for o in session.outputs {
            if let t = result.outputs[o.name] { print("output \(o.name): \(t.dtype.name)\(t.shape)\(Self.stats(t))") }
        }
        print("first run: \(Self.fmt(firstMs)) ms")
        if `repeat` > 0 {
            print("latency over \(`repeat`) runs: min \(Self.fmt(stats.first!)) ms, median \(Self.fmt(median)) ms, max \(Self.fmt(stats.last!)) ms")
        }
        print("peak RSS: \(Self.fmt(Self.peakRSSMegabytes())) MB")
        if let p = result.profile { printProfile(p) }
    }

    // MARK: - inputs and outputs

    /// NAME=path split at the first "=", when there is a name before it.
    static func splitInputSpec(_ spec: String) -> (name: String, path: String)? {
        guard let eq = spec.firstIndex(of: "="), eq != spec.startIndex else { return nil }
        return (String(spec[..<eq]), String(spec[spec.index(after: eq)...]))
    }

    func readInputs(_ session: InferenceSession) throws -> [String: Tensor] {
        let names = session.inputs.map(\.name)
        var feeds: [String: Tensor] = [:]
        for spec in inputs {
            var name: String
            var path: String
            if !FileManager.default.fileExists(atPath: spec), let split = Self.splitInputSpec(spec) {
                (name, path) = split
            } else {
                guard names.count == 1 else {
                    throw RunError("--input \(spec): the model has \(names.count) inputs (\(names.joined(separator: ", "))); give them as NAME=path.npy")
                }
                name = names[0]; path = spec
            }
            guard names.contains(name) else {
                throw RunError("unknown input '\(name)' (the model's inputs: \(names.joined(separator: ", ")))")
            }
            guard feeds[name] == nil else { throw RunError("input '\(name)' given twice") }
            let t = try NPY.read(path: path)
            let info = session.inputs.first { $0.name == name }!
            guard t.dtype == info.type.dtype else {
                throw RunError("input '\(name)' (\(path)) is \(t.dtype.name), the model expects \(info.type.dtype.name)")
            }
            feeds[name] = t
        }
        let missing = names.filter { feeds[$0] == nil }
        guard missing.isEmpty else {
            throw RunError("missing input\(missing.count > 1 ? "s" : ""): " + missing.map { name in
                "\(name) (\(session.inputs.first { $0.name == name }!.type))" }.joined(separator: ", "))
        }
        return feeds
    }

    func writeOutputs(_ outputs: [String: Tensor], session: InferenceSession, to dir: String) throws {
        do {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        } catch {
            throw RunError("cannot create output folder \(dir): \(error.localizedDescription)")
        }
        var used = Set<String>()
        for o in session.outputs {
            guard let t = outputs[o.name] else { continue }
            var base = Self.fileSafe(o.name)
            var k = 1
            while used.contains(base) { k += 1; base = Self.fileSafe(o.name) + "_\(k)" }
            used.insert(base)
            try NPY.write(t, to: (dir as NSString).appendingPathComponent(base + ".npy"))
        }
    }

    /// Letters, digits, '.', '-' and '_' kept; anything else becomes '_'; never empty or hidden.
    static func fileSafe(_ name: String) -> String {
        var s = String(name.map { c -> Character in
            (c.isASCII && (c.isLetter || c.isNumber)) || c == "-" || c == "_" || c == "." ? c : "_"
        })
        while s.hasPrefix(".") { s = "_" + s.dropFirst() }
        return s.isEmpty ? "output" : s
    }

    // MARK: - reporting

    func printProfile(_ p: RunProfile) {
        print("machine: \(RuntimeInfo.summary)")
        let peak = MachinePeak.current(threads: threads)
        if let peak { print(String(format: "peak: %.0f GFLOP/s = ", peak.gflopsPerSecond) + peak.assumption) }
        // GFLOP/s and % of peak where the kernel counts its work (convolutions, GEMMs).
        func rate(_ flops: Double, _ ms: Double) -> String {
            guard flops > 0, ms > 0 else { return "".leftPad(9) + "".leftPad(7) }
            let g = flops / ms / 1e6
            return String(format: "%.1f", g).leftPad(9) + (peak.map { String(format: "%.0f%%", 100 * g / $0.gflopsPerSecond) } ?? "-").leftPad(7)
        }
        let total = p.totalFlops
        print("profile: total \(Self.fmt(p.totalMilliseconds)) ms, peak arena \(Self.bytes(p.arenaBytes)) (without reuse \(Self.bytes(p.unsharedBytes))), outputs \(Self.bytes(p.outputBytes))"
              + (total > 0 ? String(format: ", %.2f GFLOP counted: %.1f GFLOP/s over the whole run", total / 1e9, total / p.totalMilliseconds / 1e6) : ""))
        print("  " + "operator [kernel]".padding(toLength: 44, withPad: " ", startingAt: 0) + "nodes".leftPad(6) + "ms".leftPad(11) + "%".leftPad(7)
              + "GFLOP/s".leftPad(9) + "% peak".leftPad(7) + "written".leftPad(11))
        for row in p.byOperatorType {
            let pct = p.totalMilliseconds > 0 ? 100 * row.milliseconds / p.totalMilliseconds : 0
            print("  " + row.opType.padding(toLength: 44, withPad: " ", startingAt: 0) + String(row.count).leftPad(6)
                  + Self.fmt(row.milliseconds).leftPad(11) + String(format: "%.1f", pct).leftPad(7) + rate(row.flops, row.milliseconds)
                  + Self.bytes(row.outputBytes).leftPad(11))
        }
        print("  slowest nodes:")
        let slowest = p.operators.sorted(by: { $0.milliseconds > $1.milliseconds })
        for op in slowest.prefix(profileNodes > 0 ? profileNodes : slowest.count) {
            let mem = "out \(Self.bytes(op.outputBytes))" + (op.scratchBytes > 0 ? ", scratch \(Self.bytes(op.scratchBytes))" : "")
            let speed = op.gflopsPerSecond.map { g in
                String(format: ", %.1f GFLOP/s", g) + (peak.map { String(format: ", %.0f%% of peak", 100 * g / $0.gflopsPerSecond) } ?? "")
            } ?? ""
            print("    \(Self.fmt(op.milliseconds).leftPad(9)) ms  \(op.opType) [\(op.kernel)] \(op.node)  (\(mem)\(speed))")
        }
    }

    static func stats(_ t: Tensor) -> String {
        guard t.dtype == .float32, t.elementCount > 0 else { return "" }
        let v = t.floats
        let mean = v.reduce(0, +) / Float(v.count)
        return String(format: "  min %.4g max %.4g mean %.4g", v.min()!, v.max()!, mean)
    }

    static func ms(since start: UInt64) -> Double { Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6 }
    static func round(_ v: Double) -> Double { (v * 1000).rounded() / 1000 }
    static func fmt(_ v: Double) -> String { String(format: v >= 100 ? "%.1f" : "%.3f", v) }
    static func bytes(_ n: Int) -> String {
        let b = Double(n)
        if b >= 1e9 { return String(format: "%.2f GB", b / 1e9) }
        if b >= 1e6 { return String(format: "%.1f MB", b / 1e6) }
        if b >= 1e3 { return String(format: "%.1f kB", b / 1e3) }
        return "\(n) B"
    }

    static func peakRSSMegabytes() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_maxrss) / 1024   // kilobytes on Linux
    }
}

/// A one-line error of `megafs run`.
struct RunError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

private extension String {
    func leftPad(_ width: Int) -> String { count >= width ? self : String(repeating: " ", count: width - count) + self }
}
