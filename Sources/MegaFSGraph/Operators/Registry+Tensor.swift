extension OperatorRegistry {
    /// Elementwise, reduction and shape/indexing operators.
    static let tensorOperators: [any Operator.Type] = [
        // Unary (Operators/Tensor/Unary.swift)
        ReluOperator.self, LeakyReluOperator.self, SigmoidOperator.self, TanhOperator.self,
        SqrtOperator.self, ReciprocalOperator.self, NegOperator.self, AbsOperator.self,
        ExpOperator.self, LogOperator.self, ErfOperator.self, FloorOperator.self, CeilOperator.self,
        NotOperator.self,
        // Binary arithmetic, comparison, logic (Elementwise.swift)
        AddOperator.self, SubOperator.self, MulOperator.self, DivOperator.self, PowOperator.self,
        EqualOperator.self, LessOperator.self, GreaterOperator.self, LessOrEqualOperator.self,
        GreaterOrEqualOperator.self, AndOperator.self, OrOperator.self, XorOperator.self,
        // Variadic and clipping (MinMaxClip.swift), selection (Where.swift)
        MinOperator.self, MaxOperator.self, ClipOperator.self, WhereOperator.self,
        // Reductions (Reduce.swift, Softmax.swift)
        ReduceSumOperator.self, ReduceMeanOperator.self, ReduceMaxOperator.self, ReduceMinOperator.self,
        ReduceProdOperator.self, ReduceSumSquareOperator.self, ReduceL1Operator.self, ReduceL2Operator.self,
        SoftmaxOperator.self, LogSoftmaxOperator.self,
        // Shapes and data movement
        ReshapeOperator.self, FlattenOperator.self, SqueezeOperator.self, UnsqueezeOperator.self,
        TransposeOperator.self, ConcatOperator.self, SliceOperator.self, GatherOperator.self,
        SplitOperator.self, ExpandOperator.self, TileOperator.self, ShapeOperator.self, SizeOperator.self,
        // Constants and conversions
        ConstantOperator.self, ConstantOfShapeOperator.self, RangeOperator.self, CastOperator.self,
        IdentityOperator.self, DropoutOperator.self,
        // Quantized weights (Quantization.swift)
        DequantizeLinearOperator.self,
    ]
}
