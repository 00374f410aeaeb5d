import Foundation

/// Identity(input) -> input (same storage).
public enum IdentityOperator: Operator {
    public static let opType = "Identity"

    public static func inferTypes(_ context: OperatorContext) throws -> [TensorType] {
        guard context.inputTypes.count == 1 else {
            throw TensorOpSupport.shapeError(context.node, "Identity takes 1 input, got \(context.inputTypes.count)")
        }
        return [try context.inputType(0)]
    }

    public static func evaluate(_ node: Node, inputs: [Tensor?], opset: Int) throws -> [Tensor] {
        try TensorOpSupport.checkInputCount(node, inputs, min: 1, max: 1)
        return [try TensorOpSupport.required(inputs, 0, node)]
    }
}

/// Dropout at inference: output = input; the optional mask output is all true (bool from
/// opset 10; before, of the input's type, all ones). A constant training_mode = true (opset 12+)
/// is rejected: training-time dropout is random.
public enum DropoutOperator: Operator {
    public static let opType = "Dropout"

    static func maskType(_ input: DType, opset: Int) -> DType { opset >= 10 ? .bool : input }

    static func checkTraining(_ node: Node, _ training: Tensor?) throws {
        if let training, training.elementCount > 0, training.int64s[0] != 0 {
            throw TensorOpSupport.attributeError(node, "Dropout in training mode is not supported (inference only)")
        }
        if let isTest = try TensorOpSupport.int(node, "is_test"), isTest == 0 {
            throw TensorOpSupport.attributeError(node, "Dropout with is_test = 0 is not supported (inference only)")
        }
    }

    public static func inferTypes(_ context: OperatorContext) throws -> [TensorType] {
        let node = context.node
        guard (1...3).contains(context.inputTypes.count), (1...2).contains(node.outputs.count) else {
            throw TensorOpSupport.shapeError(node, "Dropout takes 1 to 3 inputs and 1 or 2 outputs")
        }
        let t = try context.inputType(0)
        try checkTraining(node, TensorOpSupport.constant(context, 2))
        var out = [t]
        if node.outputs.count == 2 { out.append(TensorType(dtype: maskType(t.dtype, opset: context.opset), shape: t.shape)) }
        return out
    }

    public static func evaluate(_ node: Node, inputs: [Tensor?], opset: Int) throws -> [Tensor] {
        try TensorOpSupport.checkInputCount(node, inputs, min: 1, max: 3)
        let x = try TensorOpSupport.required(inputs, 0, node)
        try checkTraining(node, TensorOpSupport.optional(inputs, 2))
        guard node.outputs.count == 2 else { return [x] }
        let maskType = maskType(x.dtype, opset: opset)
        let one: Tensor
        switch maskType {
        case .bool: one = Tensor([true], shape: [])
        case .float16: one = TensorOpSupport.toFloat16(Tensor(scalar: Float(1)))
        default: one = CastOperator.cast(Tensor(scalar: Int64(1)), to: maskType)
        }
        let mask = TensorOpSupport.stridedCopy(one, shape: x.shape, strides: Array(repeating: 0, count: x.rank), outShape: x.shape)
        return [x, mask]
    }
}
