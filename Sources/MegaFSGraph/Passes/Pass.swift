/// A graph transformation. Passes keep the graph's meaning; each reports what it changed.
public protocol GraphPass {
    var name: String { get }
    /// Rewrites `graph` and returns how many rewrites it made (0 when nothing matched).
    func run(_ graph: inout Graph) throws -> Int
}

/// An ordered list of passes. The converter runs `PassPipeline.converter`; later stages
/// (runtime fusions, quantization) append their own passes.
public struct PassPipeline {
    public var passes: [any GraphPass]

    public init(_ passes: [any GraphPass]) { self.passes = passes }

    /// The converter's default: fold constants and shape arithmetic, fold BatchNormalization
    /// into the producing Conv/Gemm, drop identities and dead nodes, infer every type, then crop
    /// conv kernels whose edge taps only meet padding (that needs the inferred sizes).
    public static var converter: PassPipeline {
        PassPipeline([
            ConstantFolding(),
            IdentityElimination(),
            BatchNormFolding(),
            DeadNodeElimination(),
            ShapeInference(),
            ConvTapCropping(),
        ])
    }

    /// Runs every pass in order; returns (pass name, rewrites) per pass.
    @discardableResult
    public func run(_ graph: inout Graph, progress: ((String) -> Void)? = nil) throws -> [(String, Int)] {
        var report: [(String, Int)] = []
        for pass in passes {
            progress?(pass.name)
            report.append((pass.name, try pass.run(&graph)))
        }
        return report
    }
}

extension Graph {
    /// `base`, or `base_2`, `base_3`... : the first name no initializer or value has yet.
    func uniqueInitializerName(_ base: String) -> String {
        var name = base
        var n = 1
        while initializers[name] != nil || valueTypes[name] != nil { n += 1; name = "\(base)_\(n)" }
        return name
    }

    /// Number of nodes reading each value (graph outputs count as readers).
    func consumerCounts() -> [String: Int] {
        var counts: [String: Int] = [:]
        for node in nodes { for input in node.inputs where !input.isEmpty { counts[input, default: 0] += 1 } }
        for output in outputs { counts[output.name, default: 0] += 1 }
        return counts
    }

    /// Builds the context a shape rule needs for `node` from the types and constants known so far.
    func operatorContext(for node: Node, types: [String: TensorType]) -> OperatorContext {
        OperatorContext(
            node: node,
            inputTypes: node.inputs.map { $0.isEmpty ? nil : (types[$0] ?? type(of: $0)) },
            constantInputs: node.inputs.map { $0.isEmpty ? nil : initializers[$0] },
            opset: opset)
    }
}
