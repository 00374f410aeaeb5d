extension OperatorRegistry {
    /// Convolution, matrix products, normalisation, pooling, resizing and padding.
    static let networkOperators: [any Operator.Type] = [
        ConvOperator.self,
        ConvTransposeOperator.self,
        GemmOperator.self,
        MatMulOperator.self,
        BatchNormalizationOperator.self,
        MaxPoolOperator.self,
        AveragePoolOperator.self,
        GlobalAveragePoolOperator.self,
        GlobalMaxPoolOperator.self,
        ResizeOperator.self,
        PadOperator.self,
    ]
}
