/// What an operator's shape rule sees of one node: its attributes, the types of its inputs
/// and the values of those inputs that are constant (initializers or folded values).
public struct OperatorContext {
    public let node: Node
    /// One entry per node input; `nil` for an omitted optional input or an unknown type.
    public let inputTypes: [TensorType?]
    /// One entry per node input; the value when the input is constant.
    public let constantInputs: [Tensor?]
    /// Default-domain opset of the model (attribute-vs-input conventions depend on it).
    public let opset: Int

    public init(node: Node, inputTypes: [TensorType?], constantInputs: [Tensor?], opset: Int) {
        self.node = node
        self.inputTypes = inputTypes
        self.constantInputs = constantInputs
        self.opset = opset
    }

    /// The input type at `index`, or an error naming the node when it is missing.
    public func inputType(_ index: Int) throws -> TensorType {
        guard index < inputTypes.count, let t = inputTypes[index] else {
            throw GraphError.shapeMismatch(node: node.displayName, "input \(index) has no known type")
        }
        return t
    }
}

/// One ONNX operator: its shape rule and its reference kernel, kept side by side.
///
/// The reference kernel is plain and obviously correct; constant folding uses it, and the
/// runtime's fast kernels are tested against it.
public protocol Operator: Sendable {
    /// The ONNX op_type this implements (default domain).
    static var opType: String { get }

    /// Output element types and shapes. Dimensions that cannot be known before run time
    /// (e.g. a reshape to a shape computed from a symbolic batch) are `Dim.unknown`, or the
    /// whole shape is `nil`. Throws `GraphError` for bad attributes or incompatible shapes.
    static func inferTypes(_ context: OperatorContext) throws -> [TensorType]

    /// Evaluates the node on concrete tensors. `inputs` has one entry per node input,
    /// `nil` for omitted optional inputs. Returns one tensor per node output.
    static func evaluate(_ node: Node, inputs: [Tensor?], opset: Int) throws -> [Tensor]
}

/// Maps op types to their definitions. Adding an operator: write its file, list it here.
public enum OperatorRegistry {
    public static let operators: [String: any Operator.Type] = {
        var table: [String: any Operator.Type] = [:]
        for op in networkOperators + tensorOperators {
            precondition(table[op.opType] == nil, "operator \(op.opType) registered twice")
            table[op.opType] = op
        }
        return table
    }()

    public static func lookup(_ opType: String, domain: String = "") -> (any Operator.Type)? {
        guard domain.isEmpty || domain == "ai.onnx" else { return nil }
        return operators[opType]
    }

    public static var supportedOperators: [String] { operators.keys.sorted() }
}
