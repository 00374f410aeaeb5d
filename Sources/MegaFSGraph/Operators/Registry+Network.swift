extension OperatorRegistry {
    /// Convolution, matrix products, normalisation, pooling, resizing and padding.
    static let networkOperators: [any Operator.Type] = []
}
