import Foundation
import Testing
@testable import MegaFSGraph

private typealias T = TensorTestSupport

@Suite("Tensor operators: elementwise")
struct TensorElementwiseTests {
    @Test func addBroadcastsRowAgainstColumn() throws {
        let a = T.floats([10, 20], [2, 1]), b = T.floats([1, 2, 3], [3])
        let r = try T.run1(AddOperator.self, [a, b])
        #expect(r.shape == [2, 3])
        #expect(r.floats == [11, 12, 13, 21, 22, 23])
    }

    @Test func broadcastingWithSizeOneInTheMiddle() throws {
        // [2,1,3] * [4,1] -> [2,4,3]
        let a = T.floats([1, 2, 3, 4, 5, 6], [2, 1, 3]), b = T.floats([1, 10, 100, 1000], [4, 1])
        let r = try T.run1(MulOperator.self, [a, b])
        #expect(r.shape == [2, 4, 3])
        #expect(Array(r.floats[0..<6]) == [1, 2, 3, 10, 20, 30])
        #expect(Array(r.floats[21..<24]) == [4000, 5000, 6000])
    }

    @Test func int64ShapeArithmetic() throws {
        let shape = T.i64([1, 512, 4, 4])
        #expect(try T.run1(MulOperator.self, [shape, Tensor(scalar: Int64(2))]).int64s == [2, 1024, 8, 8])
        #expect(try T.run1(SubOperator.self, [shape, T.i64([1])]).int64s == [0, 511, 3, 3])
        #expect(try T.run1(AddOperator.self, [T.i64([Int64.max]), T.i64([1])]).int64s == [Int64.min]) // wraps
    }

    @Test func integerDivisionTruncatesTowardZero() throws {
        let r = try T.run1(DivOperator.self, [T.i64([7, -7, 7, -7, Int64.min]), T.i64([2, 2, -2, -2, -1])])
        #expect(r.int64s == [3, -3, -3, 3, Int64.min])
        let r32 = try T.run1(DivOperator.self, [Tensor([Int32(-9)], shape: [1]), Tensor([Int32(4)], shape: [1])])
        #expect(r32.dtype == .int32 && r32.int64s == [-2])
    }

    @Test func integerDivisionByZeroThrows() {
        T.expectGraphError("division by zero") { _ = try T.run1(DivOperator.self, [T.i64([1, 2]), T.i64([1, 0])]) }
    }

    @Test func floatDivisionByZeroIsInfinite() throws {
        let r = try T.run1(DivOperator.self, [T.floats([1, -1, 0], [3]), T.floats([0, 0, 0], [3])])
        #expect(r.floats[0] == .infinity && r.floats[1] == -.infinity && r.floats[2].isNaN)
    }

    @Test func mismatchedTypesAndShapesThrow() {
        T.expectGraphError("differ") { _ = try T.run1(AddOperator.self, [T.floats([1], [1]), T.i64([1])]) }
        T.expectGraphError("do not broadcast") { _ = try T.run1(AddOperator.self, [T.floats([1, 2], [2]), T.floats([1, 2, 3], [3])]) }
        T.expectGraphError("bool") { _ = try T.run1(AddOperator.self, [T.bools([true]), T.bools([true])]) }
        T.expectGraphError("differ") { _ = try T.infer(MulOperator.self, [T.f32(2), TensorType(dtype: .int64, dims: [2])]) }
    }

    @Test func float16GoesThroughFloat32AndStaysFloat16() throws {
        let a = TensorOpSupport.toFloat16(T.floats([1, 2.5], [2])), b = TensorOpSupport.toFloat16(T.floats([0.25], [1]))
        let r = try T.run1(AddOperator.self, [a, b])
        #expect(r.dtype == .float16)
        #expect(r.floats == [1.25, 2.75])
    }

    @Test func powSpecialCases() throws {
        #expect(try T.run1(PowOperator.self, [T.floats([3, -2], [2]), Tensor(scalar: Float(2))]).floats == [9, 4])
        // float base, int64 exponent (opset 12+ mixed types): result keeps the base type
        let r = try T.run1(PowOperator.self, [T.floats([2, -2], [2]), Tensor(scalar: Int64(3))])
        #expect(r.dtype == .float32 && r.floats == [8, -8])
        // int64 base: computed in double, truncated
        #expect(try T.run1(PowOperator.self, [T.i64([2, -3, 2]), T.i64([10, 3, -1])]).int64s == [1024, -27, 0])
        #expect(try T.run1(PowOperator.self, [T.floats([4], [1]), T.floats([0.5], [1])]).floats == [2])
    }

    @Test func unaryMath() throws {
        let x = T.floats([-100, -1, 0, 1, 100], [5])
        #expect(try T.run1(ReluOperator.self, [x]).floats == [0, 0, 0, 1, 100])
        #expect(try T.run1(LeakyReluOperator.self, [x]).floats == [-1, -0.01, 0, 1, 100]) // alpha default 0.01
        #expect(try T.run1(LeakyReluOperator.self, [x], ["alpha": .float(0.5)]).floats == [-50, -0.5, 0, 1, 100])
        let s = try T.run1(SigmoidOperator.self, [x]).floats
        #expect(s[0] >= 0 && s[0] < 1e-40 && s[2] == 0.5 && s[4] == 1)
        #expect(try T.run1(TanhOperator.self, [x]).floats == [-1, Foundation.tanh(-1), 0, Foundation.tanh(1), 1])
        #expect(try T.run1(NegOperator.self, [x]).floats == [100, 1, 0, -1, -100])
        #expect(try T.run1(AbsOperator.self, [x]).floats == [100, 1, 0, 1, 100])
        #expect(try T.run1(ErfOperator.self, [x]).floats == [-1, Foundation.erf(Float(-1)), 0, Foundation.erf(Float(1)), 1])
        #expect(try T.run1(FloorOperator.self, [T.floats([-1.5, 1.5], [2])]).floats == [-2, 1])
        #expect(try T.run1(CeilOperator.self, [T.floats([-1.5, 1.5], [2])]).floats == [-1, 2])
        #expect(try T.run1(SqrtOperator.self, [T.floats([4, 2.25], [2])]).floats == [2, 1.5])
        #expect(try T.run1(ReciprocalOperator.self, [T.floats([4, -0.5], [2])]).floats == [0.25, -2])
        #expect(try T.run1(ExpOperator.self, [T.floats([0], [1])]).floats == [1])
        #expect(try T.run1(LogOperator.self, [T.floats([1], [1])]).floats == [0])
    }

    @Test func sigmoidMatchesDoublePrecision() throws {
        // ONNX Runtime's Sigmoid is an approximation (relative error up to 2e-3 near 0); ours is not.
        let xs = stride(from: Float(-30), through: 30, by: 0.37).map { $0 }
        let r = try T.run1(SigmoidOperator.self, [T.floats(xs, [xs.count])]).floats
        for (x, y) in zip(xs, r) {
            let exact = 1 / (1 + Foundation.exp(-Double(x)))
            #expect(abs(Double(y) - exact) <= 2 * Double(Float(exact).ulp), "sigmoid(\(x)) = \(y), exact \(exact)")
        }
    }

    @Test func unaryOnIntegers() throws {
        #expect(try T.run1(NegOperator.self, [T.i64([3, -4, Int64.min])]).int64s == [-3, 4, Int64.min])
        #expect(try T.run1(AbsOperator.self, [T.i64([3, -4])]).int64s == [3, 4])
        #expect(try T.run1(ReluOperator.self, [Tensor([Int32(-2), 5], shape: [2])]).int64s == [0, 5])
        T.expectGraphError("does not support") { _ = try T.run1(SqrtOperator.self, [T.i64([4])]) }
        T.expectGraphError("does not support") { _ = try T.infer(ExpOperator.self, [TensorType(dtype: .int64, dims: [2])]) }
    }

    @Test func comparisonsProduceBool() throws {
        let a = T.i64([1, 2, 3]), b = T.i64([2])
        let eq = try T.run1(EqualOperator.self, [a, b])
        #expect(eq.dtype == .bool && eq.int64s == [0, 1, 0])
        #expect(try T.run1(LessOperator.self, [a, b]).int64s == [1, 0, 0])
        #expect(try T.run1(GreaterOperator.self, [a, b]).int64s == [0, 0, 1])
        #expect(try T.run1(LessOrEqualOperator.self, [a, b]).int64s == [1, 1, 0])
        #expect(try T.run1(GreaterOrEqualOperator.self, [a, b]).int64s == [0, 1, 1])
        #expect(try T.run1(EqualOperator.self, [T.bools([true, false]), T.bools([true])]).int64s == [1, 0])
        #expect(try T.run1(EqualOperator.self, [T.floats([.nan], [1]), T.floats([.nan], [1])]).int64s == [0])
        #expect(try T.infer(LessOperator.self, [T.f32([T.N, .fixed(3)]), T.f32(3)]) == [TensorType(dtype: .bool, shape: [T.N, .fixed(3)])])
        T.expectGraphError("does not support") { _ = try T.run1(LessOperator.self, [T.bools([true]), T.bools([false])]) }
    }

    @Test func logic() throws {
        let a = T.bools([true, true, false, false]), b = T.bools([true, false, true, false])
        #expect(try T.run1(AndOperator.self, [a, b]).int64s == [1, 0, 0, 0])
        #expect(try T.run1(OrOperator.self, [a, b]).int64s == [1, 1, 1, 0])
        #expect(try T.run1(XorOperator.self, [a, b]).int64s == [0, 1, 1, 0])
        #expect(try T.run1(NotOperator.self, [a]).int64s == [0, 0, 1, 1])
        T.expectGraphError("does not support") { _ = try T.run1(AndOperator.self, [T.i64([1]), T.i64([1])]) }
    }

    @Test func whereBroadcastsThreeWays() throws {
        let c = T.bools([true, false], [2, 1])
        let r = try T.run1(WhereOperator.self, [c, T.i64([1, 2, 3], [1, 3]), Tensor(scalar: Int64(-1))])
        #expect(r.shape == [2, 3] && r.int64s == [1, 2, 3, -1, -1, -1])
        let t = try T.infer(WhereOperator.self, [TensorType(dtype: .bool, shape: [T.N, .fixed(1)]), T.f32(1, 4), T.f32(4)])
        #expect(t == [T.f32([T.N, .fixed(4)])])
        T.expectGraphError("condition") { _ = try T.run1(WhereOperator.self, [T.i64([1]), T.i64([1]), T.i64([1])]) }
    }

    @Test func minMaxAreVariadic() throws {
        let r = try T.run1(MaxOperator.self, [T.floats([1, 5], [2]), T.floats([3], [1]), T.floats([0, 4, 9, 2], [2, 2])])
        #expect(r.shape == [2, 2] && r.floats == [3, 5, 9, 5])
        #expect(try T.run1(MinOperator.self, [T.i64([4, -2]), T.i64([0])]).int64s == [0, -2])
        #expect(try T.run1(MaxOperator.self, [T.floats([1, 2], [2])]).floats == [1, 2])
        #expect(try T.run1(MaxOperator.self, [T.floats([.nan, 2], [2]), T.floats([1, .nan], [2])]).floats.allSatisfy(\.isNaN))
        let t = try T.infer(MinOperator.self, [T.f32([T.N, .fixed(1)]), T.f32(3), T.f32(1, 1)])
        #expect(t == [T.f32([T.N, .fixed(3)])])
    }

    @Test func clipBoundsFromAttributesOrInputs() throws {
        let x = T.floats([-3, -0.5, 0.5, 3], [4])
        // opset 6: attributes
        #expect(try T.run1(ClipOperator.self, [x], ["min": .float(-1), "max": .float(1)], opset: 6).floats == [-1, -0.5, 0.5, 1])
        #expect(try T.run1(ClipOperator.self, [x], ["min": .float(0)], opset: 6).floats == [0, 0, 0.5, 3])
        // opset 11+: optional inputs, min omitted
        #expect(try T.run1(ClipOperator.self, [x, nil, Tensor(scalar: Float(0))], opset: 13).floats == [-3, -0.5, 0, 0])
        #expect(try T.run1(ClipOperator.self, [x], opset: 13).floats == [-3, -0.5, 0.5, 3])
        // min > max: everything becomes max
        #expect(try T.run1(ClipOperator.self, [x, Tensor(scalar: Float(1)), Tensor(scalar: Float(-1))], opset: 13).floats == [-1, -1, -1, -1])
        // integers
        #expect(try T.run1(ClipOperator.self, [T.i64([-9, 0, 9]), Tensor(scalar: Int64(-2)), Tensor(scalar: Int64(5))], opset: 13).int64s == [-2, 0, 5])
        T.expectGraphError("scalars") { _ = try T.run1(ClipOperator.self, [x, T.floats([0, 1], [2])], opset: 13) }
        T.expectGraphError("differs") { _ = try T.run1(ClipOperator.self, [x, Tensor(scalar: Int64(0))], opset: 13) }
    }

    @Test func elementwiseShapeRulesPropagateSymbols() throws {
        let a = T.f32([T.N, .fixed(512), T.H, T.W]), b = T.f32(1, 512, 1, 1)
        #expect(try T.infer(AddOperator.self, [a, b]) == [a])
        #expect(try T.infer(MulOperator.self, [T.f32(512, 1, 1), a]) == [a])
        // symbolic against fixed non-1: the fixed size wins
        #expect(try T.infer(SubOperator.self, [T.f32([T.N]), T.f32(3)]) == [T.f32(3)])
        // two different symbols: unknown
        #expect(try T.infer(DivOperator.self, [T.f32([T.H]), T.f32([T.W])]) == [T.f32([.unknown])])
        // unknown rank stays unknown
        #expect(try T.infer(AddOperator.self, [TensorType(dtype: .float32, shape: nil), T.f32(3)]) == [TensorType(dtype: .float32, shape: nil)])
        #expect(try T.infer(ReluOperator.self, [a]) == [a])
        #expect(try T.infer(PowOperator.self, [a, TensorType(dtype: .int64, dims: [])]) == [a])
        T.expectGraphError("do not broadcast") { _ = try T.infer(AddOperator.self, [T.f32(2, 3), T.f32(4)]) }
    }
}
