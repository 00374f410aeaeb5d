import Foundation
import MegaFSGraph

/// How far a candidate tensor is from a reference tensor of the same shape.
public struct DriftMetrics: Sendable, Codable, Equatable {
    public var elements: Int
    public var maxAbsError: Double
    public var meanAbsError: Double
    /// Cosine similarity of the flattened tensors (1 when both are zero).
    public var cosine: Double
    /// ‖candidate − reference‖ / ‖reference‖.
    public var relativeRMS: Double
    /// Max abs error over the reference's value range (max − min).
    public var maxAbsOverRange: Double
    /// Peak signal-to-noise ratio in dB, for images (see `PSNRPeak`).
    public var psnr: Double?

    /// The peak of a PSNR.
    public enum PSNRPeak: Sendable {
        /// A fixed peak-to-peak range: 255 for 8-bit images.
        case fixed(Double)
        /// The reference's max − min: the generator's output is min-max normalised before it is
        /// blended, so this is the PSNR of the image the swap shows.
        case referenceRange
    }

    /// 1 − cosine: the figure the drift budget bounds.
    public var drift: Double { max(0, 1 - cosine) }

    public init(reference: Tensor, candidate: Tensor, psnr: PSNRPeak? = nil) {
        self.init(reference: reference.floats, candidate: candidate.floats, psnr: psnr)
    }

    public init(reference r: [Float], candidate c: [Float], psnr peakKind: PSNRPeak? = nil) {
        precondition(r.count == c.count, "drift of tensors of different sizes")
        var maxAbs = 0.0, sumAbs = 0.0, dot = 0.0, rr = 0.0, cc = 0.0, sq = 0.0
        var lo = Double.infinity, hi = -Double.infinity
        for i in 0..<r.count {
            let a = Double(r[i]), b = Double(c[i])
            let d = b - a
            let ad = d.magnitude.isNaN ? Double.infinity : d.magnitude
            maxAbs = max(maxAbs, ad); sumAbs += ad
            dot += a * b; rr += a * a; cc += b * b; sq += d * d
            lo = min(lo, a); hi = max(hi, a)
        }
        elements = r.count
        maxAbsError = maxAbs
        meanAbsError = r.isEmpty ? 0 : sumAbs / Double(r.count)
        if rr == 0 && cc == 0 { cosine = 1 } else if rr == 0 || cc == 0 { cosine = 0 } else { cosine = dot / (rr * cc).squareRoot() }
        if cosine.isNaN { cosine = 0 }
        relativeRMS = rr > 0 ? (sq / rr).squareRoot() : (sq > 0 ? .infinity : 0)
        let range = hi - lo
        maxAbsOverRange = range > 0 ? maxAbs / range : (maxAbs > 0 ? .infinity : 0)
        if let peakKind {
            let peak: Double
            switch peakKind {
            case .fixed(let p): peak = p
            case .referenceRange: peak = range
            }
            let mse = r.isEmpty ? 0 : sq / Double(r.count)
            psnr = mse > 0 ? 10 * log10(peak * peak / mse) : .infinity
        } else {
            psnr = nil
        }
    }
}

/// Seeded inputs for a graph: dynamic dimensions become 1; float inputs of rank 4 (images)
/// uniform in [-1, 1], other float inputs standard normal. Deterministic for a seed.
public enum SeededInputs {
    public static func make(for graph: Graph, seed: UInt64 = 0x5EED, batch: Int = 1) throws -> [String: Tensor] {
        var rng = SplitMix64(seed: seed)
        var out: [String: Tensor] = [:]
        for input in graph.inputs {
            guard let dims = input.type.shape else {
                throw QuantError.badInput("input '\(input.name)' has no known rank; give it with --input")
            }
            let shape = dims.enumerated().map { i, d in d.value ?? (i == 0 ? batch : 1) }
            let n = shape.reduce(1, *)
            switch input.type.dtype {
            case .float32:
                var v = [Float](repeating: 0, count: n)
                if shape.count == 4 {
                    for i in 0..<n { v[i] = Float(rng.nextUnit() * 2 - 1) }
                } else {
                    for i in 0..<n { v[i] = Float(rng.nextNormal()) }
                }
                out[input.name] = Tensor(v, shape: shape)
            default:
                throw QuantError.badInput("input '\(input.name)' is \(input.type.dtype.name); seeded inputs are float32 only, give it with --input")
            }
        }
        return out
    }
}

/// A small, fast, seedable generator (SplitMix64): the same inputs on every machine.
public struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    mutating func nextUnit() -> Double { Double(next() >> 11) / Double(1 << 53) }
    /// Standard normal (Box-Muller).
    mutating func nextNormal() -> Double {
        let u1 = max(nextUnit(), 1e-300), u2 = nextUnit()
        return (-2 * log(u1)).squareRoot() * cos(2 * .pi * u2)
    }
}

public enum QuantError: Error, CustomStringConvertible {
    case badInput(String)
    case budgetUnreachable(String)

    public var description: String {
        switch self {
        case .badInput(let m): return m
        case .budgetUnreachable(let m): return m
        }
    }
}
