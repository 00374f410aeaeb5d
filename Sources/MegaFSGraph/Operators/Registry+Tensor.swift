extension OperatorRegistry {
    /// Elementwise, reduction and shape/indexing operators.
    static let tensorOperators: [any Operator.Type] = []
}
