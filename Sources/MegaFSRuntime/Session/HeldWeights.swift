import MegaFSGraph

/// What a session holds in place of weights it gave back, by value name, for its later plans
/// (other input shapes). Once the only reader of a constant weight in a plan has made its own
/// form of it, the planner replaces the weight by an unreadable placeholder
/// (`TensorStorage.released`) in the session's graph, the plan and its specialised graph, so
/// that no weight is held twice: Winograd's U is 16/9 of its weight for F(2x2, 3x3) and 4x for
/// F(4x4, 3x3) (held beside the weights it cost the encoder 116 MB), and a dynamic-int8 conv's
/// packed weight is as large as its int8 weight. Used under the session's lock.
final class HeldWeights: @unchecked Sendable {
    struct Winograd {
        let tile: Int
        let u: TensorStorage
        /// A modulated conv's per-(output, input) sums of squared weights, for its demodulation.
        let weightSquares: [Float]
    }
    /// By the name of the conv's float32 weight.
    var winograd: [String: Winograd] = [:]
    /// By the name of the float value the weight's DequantizeLinear would make (the conv's
    /// weight input), which then never runs.
    var int8: [String: PackedInt8Weights] = [:]
}
