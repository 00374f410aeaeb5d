import Foundation
import MegaFSFormat
import MegaFSGraph
import MegaFSRuntime
#if canImport(Glibc)
import Glibc
#endif

/// Which weights `WeightQuantizer` turns into int8.
public struct QuantizationOptions: Sendable {
    /// Weights with fewer elements stay float32 (their bytes do not matter, their error might).
    public var minElements: Int
    /// Glob patterns (`*`, `?`, `[...]`) over node and weight names: matches stay float32.
    public var keepFloat32: [String]
    /// Weights kept float32 by name (the drift budget's choice).
    public var keepWeights: Set<String>
    /// Threads for rounding (all cores when nil); the result does not depend on it.
    public var threads: Int?

    public init(minElements: Int = 1024, keepFloat32: [String] = [], keepWeights: Set<String> = [], threads: Int? = nil) {
        self.minElements = minElements
        self.keepFloat32 = keepFloat32
        self.keepWeights = keepWeights
        self.threads = threads
    }
}

/// One weight the quantizer looked at.
public struct WeightCandidate: Sendable, Codable {
    /// The float initializer's name (the DequantizeLinear output keeps it, so consumers and
    /// per-layer drift reports see the same names as in the float model).
    public var weight: String
    /// The first node reading it.
    public var node: String
    public var opType: String
    public var shape: [Int]
    /// The per-channel axis: output channels of a conv or a matrix's output columns.
    public var axis: Int
    public var elements: Int
    /// Why it stays float32, or nil when it is quantized.
    public var keptBecause: String?
    public var floatBytes: Int { elements * 4 }
}

/// What quantization did to a graph.
public struct QuantizationReport: Sendable, Codable {
    public var candidates: [WeightCandidate]
    public var quantizedWeights: Int { candidates.filter { $0.keptBecause == nil }.count }
    public var quantizedFloatBytes: Int { candidates.filter { $0.keptBecause == nil }.reduce(0) { $0 + $1.floatBytes } }
    public var keptFloatBytes: Int { candidates.filter { $0.keptBecause != nil }.reduce(0) { $0 + $1.floatBytes } }
    /// Drift of the chosen set on seeded inputs, when the drift budget measured it.
    public var drift: DriftBudget.Outcome?
}

/// Per-output-channel symmetric int8 weights: channel c's values become round(w / s[c]) in
/// [-127, 127] with s[c] = max|w[c]| / 127, stored int8 with float32 scales. In the graph the
/// float initializer `W` is replaced by `DequantizeLinear(W.int8, W.scale, axis)` writing `W`,
/// which keeps the graph's meaning (ONNX semantics) and lets the runtime keep the int8 bytes.
public enum WeightQuantizer {
    /// The weights that can be quantized and their channel axis, in node order.
    public static func candidates(in graph: Graph) -> [WeightCandidate] {
        var seen = Set<String>()
        var out: [WeightCandidate] = []
        var consumers: [String: [Node]] = [:]
        for node in graph.nodes { for input in Set(node.inputs) where !input.isEmpty { consumers[input, default: []].append(node) } }
        for node in graph.nodes where node.domain.isEmpty {
            for (index, name) in node.inputs.enumerated() where !name.isEmpty && !seen.contains(name) {
                guard let t = graph.initializers[name], t.dtype == .float32,
                      let axis = channelAxis(node, inputIndex: index, weight: t, consumers: consumers[name] ?? []) else { continue }
                seen.insert(name)
                out.append(WeightCandidate(weight: name, node: node.displayName, opType: node.opType, shape: t.shape,
                                           axis: axis, elements: t.elementCount, keptBecause: nil))
            }
        }
        return out
    }

    /// The output-channel axis of a weight read by `node` as input `inputIndex`, or nil when
    /// that use is not one we quantize.
    static func channelAxis(_ node: Node, inputIndex: Int, weight t: Tensor, consumers: [Node]) -> Int? {
        switch (node.opType, inputIndex) {
        case ("Conv", 1) where t.shape.count >= 3:
            // A [1, 1, k, k] weight is a fixed filter (upfirdn2d's blur applied plane by
            // plane), not a learned weight: a handful of bytes, and the runtime fuses it.
            if t.shape[0] == 1 && t.shape[1] == 1 { return nil }
            return 0
        case ("ConvTranspose", 1) where t.shape.count >= 3:
            // [Cin, Cout/group, k...]: output channels when ungrouped.
            return (node.int("group") ?? 1) == 1 ? 1 : 0
        case ("Gemm", 1) where t.shape.count == 2:
            return (node.int("transB") ?? 0) != 0 ? 0 : 1
        case ("MatMul", 1) where t.shape.count >= 2:
            return t.shape.count - 1
        case ("Mul", _) where t.shape.count == 5 && t.shape[0] == 1 && consumers.allSatisfy({ $0.opType == "Mul" }):
            // StyleGAN2's modulated conv weight [1, Cout, Cin, k, k], scaled by the style.
            return 1
        default:
            return nil
        }
    }

    /// The candidates with `keptBecause` set where `options` keep a weight float32; nothing is
    /// quantized (for choosing before quantizing, as the drift budget does).
    public static func plan(_ graph: Graph, options: QuantizationOptions) -> [WeightCandidate] {
        candidates(in: graph).map { c in
            var c = c
            if c.elements < options.minElements {
                c.keptBecause = "smaller than \(options.minElements) elements"
            } else if options.keepWeights.contains(c.weight) {
                c.keptBecause = "kept by the drift budget"
            } else if let pattern = options.keepFloat32.first(where: { matches($0, c.weight) || matches($0, c.node) }) {
                c.keptBecause = "matches --keep-fp32 \(pattern)"
            }
            return c
        }
    }

    /// Quantizes the graph's eligible weights as `options` says. Returns the quantization
    /// records for the model file writer (int8 tensor name -> record) and the report.
    public static func quantize(_ graph: inout Graph, options: QuantizationOptions)
        -> (records: [String: TensorQuantization], report: QuantizationReport) {
        let candidates = plan(graph, options: options)
        var records: [String: TensorQuantization] = [:]
        var dequantizeNodes: [Node] = []
        var usedNames = Set(graph.nodes.flatMap(\.outputs)).union(graph.inputs.map(\.name)).union(graph.initializers.keys)
        func freshName(_ base: String) -> String {
            var name = base
            var i = 1
            while usedNames.contains(name) { name = "\(base).\(i)"; i += 1 }
            usedNames.insert(name)
            return name
        }
        for c in candidates where c.keptBecause == nil {
            let w = graph.initializers[c.weight]!
            let (q, scales) = quantizePerChannel(w, axis: c.axis, threads: options.threads)
            let qName = freshName(c.weight + ".int8")
            let sName = freshName(c.weight + ".scale")
            graph.initializers[qName] = q
            graph.initializers[sName] = scales
            graph.initializers[c.weight] = nil
            dequantizeNodes.append(Node(name: c.weight + "/dequantize", opType: "DequantizeLinear", domain: "",
                                        inputs: [qName, sName], outputs: [c.weight], attributes: ["axis": .int(c.axis)]))
            graph.valueTypes[c.weight] = TensorType(dtype: .float32, dims: w.shape)
            records[qName] = .int8Symmetric(axis: c.axis, scales: sName)
        }
        // Producers first: a topological order that the runtime re-schedules late anyway.
        graph.nodes = dequantizeNodes + graph.nodes
        if graph.opset < 13 { graph.opsets[""] = 13 }
        return (records, QuantizationReport(candidates: candidates, drift: nil))
    }

    /// Each weight with its values rounded as int8 rounds them, kept float32: a model using
    /// these computes exactly what its quantized form computes (used to measure drift).
    public static func roundedWeights(_ graph: Graph, weights: [WeightCandidate]) -> [String: Tensor] {
        var out: [String: Tensor] = [:]
        for c in weights {
            guard let w = graph.initializers[c.weight] else { continue }
            let (q, scales) = quantizePerChannel(w, axis: c.axis)
            out[c.weight] = dequantize(q, scales: scales.floats, axis: c.axis)
        }
        return out
    }

    /// Symmetric per-channel int8 along `axis`: (int8 values, float32 scales [dims[axis]]).
    ///
    /// Each channel's scale is the one, among max|w|/127 and clipped versions of it (down to
    /// half), with the least squared rounding error over the channel: clipping a few outliers
    /// makes the step finer for all other values (worth about 1 dB of generator PSNR on
    /// Gaussian-like weights). Channels are independent, so they are shared among `threads`
    /// workers; the result does not depend on the thread count.
    public static func quantizePerChannel(_ w: Tensor, axis: Int, threads: Int? = nil) -> (values: Tensor, scales: Tensor) {
        let v = w.floats
        let channels = w.shape[axis]
        let inner = w.shape[(axis + 1)...].reduce(1, *)
        let outer = channels == 0 || inner == 0 ? 0 : v.count / (channels * inner)
        let perChannel = outer * inner
        var scales = [Float](repeating: 1, count: channels)
        var q = [Int8](repeating: 0, count: v.count)
        let partition = ThreadPartition(threads: threads ?? ProcessInfo.processInfo.activeProcessorCount)
        v.withUnsafeBufferPointer { src in
            q.withUnsafeMutableBufferPointer { dst in
                scales.withUnsafeMutableBufferPointer { scaleOut in
                    partition.forRanges(channels, minPerThread: max(1, 65_536 / max(perChannel, 1))) { range in
                        // The channel's elements are `outer` runs of `inner`: gathered into one
                        // contiguous run so that the 26 trial passes stream it.
                        let run = UnsafeMutableBufferPointer<Float>.allocate(capacity: max(perChannel, 1))
                        defer { run.deallocate() }
                        for c in range {
                            for o in 0..<outer {
                                let base = (o * channels + c) * inner
                                for i in 0..<inner { run[o * inner + i] = src[base + i] }
                            }
                            // An all-zero channel keeps scale 1 (its values are 0 either way).
                            guard let scale = bestScale(UnsafeBufferPointer(start: run.baseAddress, count: perChannel)) else { continue }
                            scaleOut[c] = scale
                            for o in 0..<outer {
                                let base = (o * channels + c) * inner
                                for i in base..<(base + inner) {
                                    let r = (src[i] / scale).rounded(.toNearestOrEven)
                                    dst[i] = Int8(max(-127, min(127, r.isNaN ? 0 : r)))
                                }
                            }
                        }
                    }
                }
            }
        }
        return (Tensor(q, shape: w.shape), Tensor(scales, shape: [channels]))
    }

    /// The least-squared-error scale among max|x|/127 x (1, 0.98, ..., 0.5); nil when every
    /// finite value is zero.
    static func bestScale(_ x: UnsafeBufferPointer<Float>) -> Float? {
        var amax: Float = 0
        for value in x where value.isFinite { amax = max(amax, abs(value)) }
        guard amax > 0 else { return nil }
        var best = amax / 127, bestError = Double.infinity
        for step in 0...25 {
            let scale = amax * (1 - Float(step) * 0.02) / 127
            let err = roundingError(x, scale: scale)
            if err < bestError { bestError = err; best = scale }
        }
        return best
    }

    /// Sum of squared errors of rounding `x / scale` to an integer in [-127, 127] and back.
    /// Eight lanes at a time, each accumulating in Double (a fixed order: the same sum on
    /// every machine and thread count). Clamping before rounding equals clamping after, as
    /// the bounds are integers; adding and subtracting 1.5 * 2^23 rounds to nearest-even
    /// without a call to rintf (x86-64's baseline has no round instruction).
    static func roundingError(_ x: UnsafeBufferPointer<Float>, scale: Float) -> Double {
        let magic: Float = 12_582_912
        let lo = SIMD8<Float>(repeating: -127), hi = SIMD8<Float>(repeating: 127)
        let scale8 = SIMD8<Float>(repeating: scale), magic8 = SIMD8<Float>(repeating: magic)
        var acc = SIMD8<Double>(repeating: 0)
        let n = x.count, body = n - n % 8
        guard let base = x.baseAddress else { return 0 }
        var i = 0
        while i < body {
            let value = UnsafeRawPointer(base + i).loadUnaligned(as: SIMD8<Float>.self)
            let quotient = value / scale8
            let clamped = quotient.replacing(with: lo, where: quotient .< lo).replacing(with: hi, where: quotient .> hi)
            let rounded = (clamped + magic8) - magic8
            let d = value - rounded * scale8
            let dd = SIMD8<Double>(d)
            acc += dd * dd
            i += 8
        }
        var err = acc.sum()
        while i < n {
            let r = (min(max(x[i] / scale, -127), 127) + magic) - magic
            let d = Double(x[i] - r * scale)
            err += d * d
            i += 1
        }
        return err
    }

    /// Float values of int8 `q` with per-channel `scales` along `axis`: the reference
    /// DequantizeLinear, so rounded weights are exactly what the int8 model computes with.
    public static func dequantize(_ q: Tensor, scales: [Float], axis: Int) -> Tensor {
        let node = Node(name: "", opType: DequantizeLinearOperator.opType, domain: "", inputs: ["q", "s"], outputs: ["w"],
                        attributes: ["axis": .int(axis)])
        // Inputs built here always fit the operator; a failure would be a bug in this file.
        return try! DequantizeLinearOperator.evaluate(node, inputs: [q, Tensor(scales, shape: [scales.count])], opset: 13)[0]
    }

    static func matches(_ pattern: String, _ name: String) -> Bool {
        fnmatch(pattern, name, 0) == 0
    }
}
