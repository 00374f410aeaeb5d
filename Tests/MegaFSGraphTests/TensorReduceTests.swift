import Foundation
import Testing
@testable import MegaFSGraph

private typealias T = TensorTestSupport

@Suite("Tensor operators: reductions and softmax")
struct TensorReduceTests {
    let m = T.floats([1, 2, 3, 4, 5, 6], [2, 3])

    @Test func axesAsAttributeBeforeOpset13AndAsInputAfter() throws {
        let a = try T.run1(ReduceSumOperator.self, [m], ["axes": .ints([1])], opset: 11)
        #expect(a.shape == [2, 1] && a.floats == [6, 15])
        let b = try T.run1(ReduceSumOperator.self, [m, T.i64([0])], ["keepdims": .int(0)], opset: 13)
        #expect(b.shape == [3] && b.floats == [5, 7, 9])
        // ReduceMean takes axes as an attribute until opset 17, as an input from 18
        #expect(try T.run1(ReduceMeanOperator.self, [m], ["axes": .ints([-1])], opset: 17).floats == [2, 5])
        #expect(try T.run1(ReduceMeanOperator.self, [m, T.i64([-1])], opset: 18).floats == [2, 5])
    }

    @Test func emptyAxes() throws {
        let all = try T.run1(ReduceSumOperator.self, [m], opset: 13)
        #expect(all.shape == [1, 1] && all.floats == [21])
        let noKeep = try T.run1(ReduceSumOperator.self, [m, T.i64([])], ["keepdims": .int(0)], opset: 13)
        #expect(noKeep.shape == [] && noKeep.floats == [21])
        let noop = try T.run1(ReduceSumOperator.self, [m], ["noop_with_empty_axes": .int(1)], opset: 13)
        #expect(noop.shape == [2, 3] && noop.floats == m.floats)
    }

    @Test func kinds() throws {
        let axes: [String: Attribute] = ["axes": .ints([1]), "keepdims": .int(0)]
        #expect(try T.run1(ReduceMaxOperator.self, [m], axes, opset: 13).floats == [3, 6])
        #expect(try T.run1(ReduceMinOperator.self, [m], axes, opset: 13).floats == [1, 4])
        #expect(try T.run1(ReduceProdOperator.self, [m], axes, opset: 13).floats == [6, 120])
        #expect(try T.run1(ReduceSumSquareOperator.self, [m], axes, opset: 13).floats == [14, 77])
        #expect(try T.run1(ReduceL1Operator.self, [T.floats([-3, 4], [1, 2])], axes, opset: 13).floats == [7])
        #expect(try T.run1(ReduceL2Operator.self, [T.floats([-3, 4], [1, 2])], axes, opset: 13).floats == [5])
    }

    @Test func integerReductions() throws {
        let i = T.i64([1, 2, -1, -2], [2, 2])
        let axes: [String: Attribute] = ["axes": .ints([1]), "keepdims": .int(0)]
        #expect(try T.run1(ReduceSumOperator.self, [i], axes, opset: 11).int64s == [3, -3])
        // integer mean truncates toward zero: 3/2 = 1, -3/2 = -1
        #expect(try T.run1(ReduceMeanOperator.self, [i], axes, opset: 13).int64s == [1, -1])
        #expect(try T.run1(ReduceMaxOperator.self, [i], axes, opset: 13).int64s == [2, -1])
        #expect(try T.run1(ReduceProdOperator.self, [i], axes, opset: 13).int64s == [2, 2])
    }

    @Test func middleAxisOfA4DTensor() throws {
        // Demodulation: sum over (in, kh, kw) of w^2 for each out channel.
        let w = Tensor((0..<24).map { Float($0) }, shape: [2, 3, 2, 2])
        let r = try T.run1(ReduceSumOperator.self, [w, T.i64([1, 2, 3])], opset: 13)
        #expect(r.shape == [2, 1, 1, 1] && r.floats == [66, 210])
        let mid = try T.run1(ReduceMaxOperator.self, [w], ["axes": .ints([1])], opset: 13)
        #expect(mid.shape == [2, 1, 2, 2] && mid.floats == [8, 9, 10, 11, 20, 21, 22, 23])
    }

    @Test func reduceErrors() {
        T.expectGraphError("repeat") { _ = try T.run1(ReduceSumOperator.self, [m, T.i64([1, -1])], opset: 13) }
        T.expectGraphError("out of range") { _ = try T.run1(ReduceSumOperator.self, [m], ["axes": .ints([2])], opset: 11) }
        T.expectGraphError("keepdims") { _ = try T.run1(ReduceSumOperator.self, [m], ["keepdims": .int(2)], opset: 11) }
        T.expectGraphError("does not support") { _ = try T.run1(ReduceSumOperator.self, [T.bools([true])], opset: 13) }
    }

    @Test func reduceShapeRules() throws {
        let x = T.f32([T.N, .fixed(8), T.H, T.W])
        #expect(try T.infer(ReduceMeanOperator.self, [x], ["axes": .ints([2, 3])], opset: 17)
                == [T.f32([T.N, .fixed(8), .fixed(1), .fixed(1)])])
        #expect(try T.infer(ReduceSumOperator.self, [x, nil], constants: [1: T.i64([-1, 1])], ["keepdims": .int(0)], opset: 13)
                == [T.f32([T.N, T.H])])
        // non-constant axes: keepdims keeps the rank; without it, the axes' static length decides
        let axes2 = TensorType(dtype: .int64, dims: [2])
        #expect(try T.infer(ReduceSumOperator.self, [x, axes2], opset: 13)
                == [T.f32([.unknown, .unknown, .unknown, .unknown])])
        #expect(try T.infer(ReduceSumOperator.self, [x, axes2], ["keepdims": .int(0)], opset: 13)
                == [T.f32([.unknown, .unknown])])
        #expect(try T.infer(ReduceSumOperator.self, [x], ["noop_with_empty_axes": .int(1)], opset: 13) == [x])
        #expect(try T.infer(ReduceMaxOperator.self, [x], ["keepdims": .int(0)], opset: 13) == [T.f32([])])
    }

    @Test func softmaxOpsetSemantics() throws {
        let x = T.floats([0, 0, 0, Foundation.log(3)], [1, 2, 2])
        // opset 13: along the last axis only
        let a = try T.run1(SoftmaxOperator.self, [x], opset: 13).floats
        #expect(abs(a[0] - 0.5) < 1e-7 && abs(a[2] - 0.25) < 1e-7 && abs(a[3] - 0.75) < 1e-7)
        // opset 11, axis 1: over the flattened [2*2] block
        let b = try T.run1(SoftmaxOperator.self, [x], opset: 11).floats
        #expect(b.allSatisfy { $0 > 0 } && abs(b.reduce(0, +) - 1) < 1e-6 && abs(b[3] - 0.5) < 1e-7)
        let c = try T.run1(SoftmaxOperator.self, [x], ["axis": .int(1)], opset: 13).floats
        #expect(abs(c[0] - 0.5) < 1e-7 && abs(c[1] - 0.25) < 1e-7)
        // numerically stable for large inputs
        let big = try T.run1(SoftmaxOperator.self, [T.floats([1000, 1000], [2])], opset: 13).floats
        #expect(big == [0.5, 0.5])
        let ls = try T.run1(LogSoftmaxOperator.self, [T.floats([0, 0], [2])], opset: 13).floats
        #expect(abs(ls[0] + Foundation.log(2)) < 1e-6)
        T.expectGraphError("out of range") { _ = try T.run1(SoftmaxOperator.self, [x], ["axis": .int(3)], opset: 13) }
        #expect(try T.infer(SoftmaxOperator.self, [T.f32([T.N, .fixed(10)])], opset: 13) == [T.f32([T.N, .fixed(10)])])
    }
}
