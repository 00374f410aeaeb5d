import MegaFSGraph

/// Load-time checks: every operator has a kernel (fast or reference) and every attribute is
/// one the runtime knows for that operator, with a value it supports. All problems are
/// collected, so one error names them all.
enum Validation {
    /// Attributes the runtime accepts per operator (ONNX names). Operators not listed here run
    /// only their reference kernel, which checks its own attributes.
    static let knownAttributes: [String: Set<String>] = [
        "Conv": ["auto_pad", "dilations", "group", "kernel_shape", "pads", "strides"],
        "ConvTranspose": ["auto_pad", "dilations", "group", "kernel_shape", "output_padding", "output_shape", "pads", "strides"],
        "Gemm": ["alpha", "beta", "transA", "transB"],
        "MatMul": [],
        "Relu": [], "Sigmoid": [], "Tanh": [], "Sqrt": [], "Reciprocal": [], "Neg": [], "Exp": [], "Abs": [],
        "LeakyRelu": ["alpha"],
        "Clip": ["min", "max"],
        "Add": [], "Sub": [], "Mul": [], "Div": [], "Pow": [], "Max": [], "Min": [],
        "Reshape": ["allowzero"], "Flatten": ["axis"], "Squeeze": ["axes"], "Unsqueeze": ["axes"],
        "Identity": [], "Dropout": ["seed", "ratio"],
        "Concat": ["axis"], "Slice": ["starts", "ends", "axes"], "Transpose": ["perm"],
        "Pad": ["mode", "pads", "value"], "Gather": ["axis"],
        "Resize": ["mode", "coordinate_transformation_mode", "cubic_coeff_a", "exclude_outside",
                   "extrapolation_value", "nearest_mode", "antialias", "axes", "keep_aspect_ratio_policy"],
        "MaxPool": ["auto_pad", "ceil_mode", "dilations", "kernel_shape", "pads", "storage_order", "strides"],
        "BatchNormalization": ["epsilon", "momentum", "spatial", "training_mode"],
        "ReduceSum": ["keepdims", "noop_with_empty_axes", "axes"],
        "ReduceMean": ["keepdims", "noop_with_empty_axes", "axes"],
        "Constant": ["value", "value_float", "value_floats", "value_int", "value_ints", "sparse_value", "value_string", "value_strings"],
        "DequantizeLinear": ["axis", "block_size"],
        "ConstantOfShape": ["value"], "Shape": ["start", "end"], "Cast": ["to", "saturate"],
    ]

    /// Attribute values the runtime supports, checked per operator.
    static func valueProblems(_ node: Node) -> [String] {
        var out: [String] = []
        func bad(_ attr: String, _ value: String) { out.append("\(node.opType) attribute \(attr)=\(value) (node \(node.displayName))") }
        switch node.opType {
        case "Conv":
            if let a = node.string("auto_pad"), !["NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER"].contains(a) { bad("auto_pad", a) }
        case "ConvTranspose":
            if let a = node.string("auto_pad"), a != "NOTSET" { bad("auto_pad", a) }
        case "Resize":
            if let m = node.string("mode"), !["nearest", "linear", "cubic"].contains(m) { bad("mode", m) }
            if let a = node.int("antialias"), a != 0 { bad("antialias", String(a)) }
        case "Pad":
            if let m = node.string("mode"), !["constant", "reflect", "edge", "wrap"].contains(m) { bad("mode", m) }
        case "BatchNormalization":
            if let t = node.int("training_mode"), t != 0 { bad("training_mode", String(t)) }
        default: break
        }
        return out
    }

    static func problems(in graph: Graph) -> [String] {
        var unsupported: [String: Int] = [:]
        var attributes: [String] = []
        var seenAttr = Set<String>()
        for node in graph.nodes {
            let known = node.domain == runtimeDomain ? KernelFactory.fusedOps.contains(node.opType)
                                                     : OperatorRegistry.lookup(node.opType, domain: node.domain) != nil
            if !known {
                let name = node.domain.isEmpty || node.domain == "ai.onnx" ? node.opType : "\(node.domain).\(node.opType)"
                unsupported[name, default: 0] += 1
                continue
            }
            if node.domain == runtimeDomain { continue }
            if let allowed = knownAttributes[node.opType] {
                for key in node.attributes.keys.sorted() where !allowed.contains(key) {
                    let text = "\(node.opType) attribute '\(key)'"
                    if seenAttr.insert(text).inserted { attributes.append(text) }
                }
            }
            for p in valueProblems(node) where seenAttr.insert(p).inserted { attributes.append(p) }
        }
        var problems: [String] = []
        if !unsupported.isEmpty {
            problems.append("unsupported operators: " + unsupported.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
                .map { "\($0.key) (\($0.value))" }.joined(separator: ", "))
        }
        if !attributes.isEmpty { problems.append("unsupported attributes: " + attributes.joined(separator: ", ")) }
        for input in graph.inputs where ![.float32, .int64, .int32, .float16, .uint8, .int8, .bool].contains(input.type.dtype) {
            problems.append("input \(input.name) has element type \(input.type.dtype.name)")
        }
        return problems
    }
}
