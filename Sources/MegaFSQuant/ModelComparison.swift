import Foundation
import MegaFSGraph
import MegaFSRuntime

/// A candidate model's outputs (and layers) against a reference's, on the same inputs: what
/// `megafs validate` reports.
public struct ModelComparison: Sendable, Codable {
    public struct Output: Sendable, Codable {
        public var name: String
        public var shape: [Int]
        /// Images (N, 3, H, W): PSNR over the reference's value range (the swap min-max
        /// normalises the generator's output).
        public var isImage: Bool
        public var metrics: DriftMetrics
    }

    /// One layer output (a conv, transposed conv, gemm or matmul, fused or not) present in both
    /// models with the same name and shape.
    public struct Layer: Sendable, Codable {
        public var value: String
        public var node: String
        public var opType: String
        public var shape: [Int]
        public var metrics: DriftMetrics
    }

    public var outputs: [Output]
    /// Ranked: most drift (1 − cosine) first.
    public var layers: [Layer]
    /// Where the inputs came from: "seeded (seed N)" or the files given.
    public var inputs: String

    public init(outputs: [Output], layers: [Layer], inputs: String) {
        self.outputs = outputs; self.layers = layers; self.inputs = inputs
    }

    /// Op types whose outputs are compared layer by layer.
    static let layerOps: Set<String> = ["Conv", "ConvTranspose", "Gemm", "MatMul", "FusedConv", "FusedGemm"]

    /// Output shapes that are images: (N, 3, H, W) with H, W >= 16.
    static func isImage(_ shape: [Int]) -> Bool { shape.count == 4 && shape[1] == 3 && shape[2] >= 16 && shape[3] >= 16 }

    /// Runs both sessions on `inputs`. With `layers`, the reference's layer outputs are kept in
    /// memory (one copy each) and compared as the candidate produces them.
    public static func compare(candidate: InferenceSession, reference: InferenceSession, inputs: [String: Tensor],
                               inputsDescription: String, layers: Bool)
        throws -> (comparison: ModelComparison, candidate: [String: Tensor], reference: [String: Tensor]) {
        var kept: [String: (node: String, opType: String, tensor: Tensor)] = [:]
        let refOut: [String: Tensor]
        if layers {
            refOut = try reference.run(inputs) { v in
                guard layerOps.contains(v.opType), v.dtype == .float32 else { return }
                kept[v.name] = (v.node, v.opType, v.copy())
            }
        } else {
            refOut = try reference.run(inputs)
        }
        var layerResults: [Layer] = []
        let candOut: [String: Tensor]
        if layers {
            candOut = try candidate.run(inputs) { v in
                guard let ref = kept[v.name], ref.tensor.shape == v.shape, v.dtype == .float32 else { return }
                let c = Array(v.bytes.bindMemory(to: Float.self))
                layerResults.append(Layer(value: v.name, node: v.node, opType: v.opType, shape: v.shape,
                                          metrics: DriftMetrics(reference: ref.tensor.floats, candidate: c)))
                kept[v.name] = nil
            }
        } else {
            candOut = try candidate.run(inputs)
        }
        layerResults.sort { $0.metrics.drift > $1.metrics.drift }
        let outputs = try compareOutputs(candidate: candOut, reference: refOut, order: candidate.outputs.map(\.name))
        return (ModelComparison(outputs: outputs, layers: layerResults, inputs: inputsDescription), candOut, refOut)
    }

    /// Compares outputs by name (every reference output must be among the candidate's).
    public static func compareOutputs(candidate: [String: Tensor], reference: [String: Tensor], order: [String]) throws -> [Output] {
        var out: [Output] = []
        let names = order.filter { reference[$0] != nil } + reference.keys.filter { !order.contains($0) }.sorted()
        for name in names {
            let ref = reference[name]!
            guard let cand = candidate[name] else {
                throw QuantError.badInput("the candidate has no output '\(name)' (it has \(candidate.keys.sorted().joined(separator: ", ")))")
            }
            guard cand.shape == ref.shape else {
                throw QuantError.badInput("output '\(name)': the candidate's shape \(cand.shape) differs from the reference's \(ref.shape)")
            }
            guard ref.dtype.isFloatingPoint, cand.dtype.isFloatingPoint else {
                throw QuantError.badInput("output '\(name)' is \(ref.dtype.name); only float outputs are compared")
            }
            let image = isImage(ref.shape)
            out.append(Output(name: name, shape: ref.shape, isImage: image,
                              metrics: DriftMetrics(reference: ref, candidate: cand, psnr: image ? .referenceRange : nil)))
        }
        return out
    }
}

/// Limits a validation must meet; `violations` says which were crossed.
public struct ValidationThresholds: Sendable, Codable {
    public var minPSNR: Double?
    public var minCosine: Double?
    public var maxAbs: Double?

    public init(minPSNR: Double? = nil, minCosine: Double? = nil, maxAbs: Double? = nil) {
        self.minPSNR = minPSNR; self.minCosine = minCosine; self.maxAbs = maxAbs
    }

    public var isEmpty: Bool { minPSNR == nil && minCosine == nil && maxAbs == nil }

    /// One line per crossed limit. PSNR applies to outputs that have one (images).
    public func violations(_ outputs: [(name: String, metrics: DriftMetrics)]) -> [String] {
        var out: [String] = []
        for (name, m) in outputs {
            if let t = minPSNR, let p = m.psnr, p < t {
                out.append(String(format: "%@: PSNR %.2f dB is below --min-psnr %.2f", name, p, t))
            }
            if let t = minCosine, m.cosine < t {
                out.append(String(format: "%@: cosine %.8f is below --min-cosine %.8f", name, m.cosine, t))
            }
            if let t = maxAbs, m.maxAbsError > t {
                out.append(String(format: "%@: max abs error %.6g is above --max-abs %.6g", name, m.maxAbsError, t))
            }
        }
        return out
    }
}
