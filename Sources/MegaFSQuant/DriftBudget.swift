import Foundation
import MegaFSGraph
import MegaFSRuntime

/// Chooses which weights stay float32 so that the quantized model's outputs drift no more than
/// a budget from the float32 model's, on seeded inputs.
///
/// Drift is 1 − cosine similarity of each output (flattened), the worst over the outputs. Each
/// weight's sensitivity is measured alone (only it rounded to int8); weights are then ranked by
/// sensitivity per float32 byte, and the shortest prefix of that ranking that, kept float32,
/// brings the whole model within budget is found by bisection, each step measured (drift is not
/// additive, so no step is estimated). The rounding is simulated exactly (weights replaced by
/// their dequantized values), so the measured drift is the int8 model's.
public struct DriftBudget: Sendable {
    /// Largest allowed drift (1 − cosine), e.g. 0.001 for cosine ≥ 0.999.
    public var budget: Double
    public var seed: UInt64
    public var threads: Int?
    /// Inputs to measure on (seeded ones when nil).
    public var inputs: [String: Tensor]?

    public init(budget: Double, seed: UInt64 = 0x5EED, threads: Int? = nil, inputs: [String: Tensor]? = nil) {
        self.budget = budget
        self.seed = seed
        self.threads = threads
        self.inputs = inputs
    }

    /// What the search found.
    public struct Outcome: Sendable, Codable {
        public var budget: Double
        /// Drift with every eligible weight in int8.
        public var allInt8Drift: Double
        /// Drift of the chosen set.
        public var drift: Double
        /// Weights kept float32, most sensitive (per byte) first.
        public var keptFloat32: [String]
        public var keptFloat32Bytes: Int
        /// Per-weight drift alone, in ranking order.
        public var sensitivities: [Sensitivity]
        public var evaluations: Int
        public var seconds: Double
    }

    public struct Sensitivity: Sendable, Codable {
        public var weight: String
        public var drift: Double
        public var floatBytes: Int
    }

    public enum Progress: Sendable {
        case reference
        case sensitivity(done: Int, of: Int)
        case search(keeping: Int, drift: Double)
    }

    /// Runs the search over `candidates` (those the quantizer would quantize).
    public func choose(graph: Graph, candidates: [WeightCandidate],
                       progress: ((Progress) -> Void)? = nil) throws -> Outcome {
        let start = Date()
        let inputs = try self.inputs ?? SeededInputs.make(for: graph, seed: seed)
        var evaluations = 0
        let options = SessionOptions(threads: threads)
        progress?(.reference)
        let reference = try InferenceSession(graph: graph, options: options).run(inputs)

        // Rounded once; each evaluation only swaps initializers.
        let rounded = WeightQuantizer.roundedWeights(graph, weights: candidates)
        func drift(quantizing weights: [WeightCandidate]) throws -> Double {
            evaluations += 1
            var g = graph
            for c in weights { g.initializers[c.weight] = rounded[c.weight] }
            let outputs = try InferenceSession(graph: g, options: options).run(inputs)
            var worst = 0.0
            for (name, ref) in reference {
                guard let out = outputs[name], ref.dtype == .float32 else { continue }
                worst = max(worst, DriftMetrics(reference: ref, candidate: out).drift)
            }
            return worst
        }

        let all = try drift(quantizing: candidates)
        if all <= budget || candidates.isEmpty {
            return Outcome(budget: budget, allInt8Drift: all, drift: all, keptFloat32: [], keptFloat32Bytes: 0,
                           sensitivities: [], evaluations: evaluations, seconds: Date().timeIntervalSince(start))
        }
        var sensitivities: [Sensitivity] = []
        for (i, c) in candidates.enumerated() {
            progress?(.sensitivity(done: i, of: candidates.count))
            sensitivities.append(Sensitivity(weight: c.weight, drift: try drift(quantizing: [c]), floatBytes: c.floatBytes))
        }
        progress?(.sensitivity(done: candidates.count, of: candidates.count))
        sensitivities.sort { $0.drift / Double(max(1, $0.floatBytes)) > $1.drift / Double(max(1, $1.floatBytes)) }
        let byName = Dictionary(uniqueKeysWithValues: candidates.map { ($0.weight, $0) })

        // Smallest k such that keeping the first k float32 meets the budget (k = n: all float).
        func driftKeeping(_ k: Int) throws -> Double {
            let kept = Set(sensitivities.prefix(k).map(\.weight))
            let d = try drift(quantizing: candidates.filter { !kept.contains($0.weight) })
            progress?(.search(keeping: k, drift: d))
            return d
        }
        var lo = 0, hi = sensitivities.count   // drift(lo) > budget; drift(hi) = 0
        var best = (k: sensitivities.count, drift: 0.0)
        while hi - lo > 1 {
            let mid = (lo + hi) / 2
            let d = try driftKeeping(mid)
            if d <= budget { hi = mid; best = (mid, d) } else { lo = mid }
        }
        if best.k == sensitivities.count { best.drift = 0 }
        let kept = Array(sensitivities.prefix(best.k).map(\.weight))
        return Outcome(budget: budget, allInt8Drift: all, drift: best.drift, keptFloat32: kept,
                       keptFloat32Bytes: kept.reduce(0) { $0 + (byName[$1]?.floatBytes ?? 0) },
                       sensitivities: sensitivities, evaluations: evaluations, seconds: Date().timeIntervalSince(start))
    }
}
