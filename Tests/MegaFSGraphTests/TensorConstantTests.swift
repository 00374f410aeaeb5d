import Foundation
import Testing
@testable import MegaFSGraph

private typealias T = TensorTestSupport

@Suite("Tensor operators: shape, constants, casts, identity")
struct TensorConstantTests {
    @Test func shapeAndSize() throws {
        let x = Tensor(zeros: .float32, shape: [2, 3, 4, 5])
        #expect(try T.run1(ShapeOperator.self, [x]).int64s == [2, 3, 4, 5])
        #expect(try T.run1(ShapeOperator.self, [x], ["start": .int(1), "end": .int(-1)], opset: 15).int64s == [3, 4])
        #expect(try T.run1(ShapeOperator.self, [x], ["start": .int(-10), "end": .int(10)], opset: 15).int64s == [2, 3, 4, 5])
        #expect(try T.run1(ShapeOperator.self, [x], ["start": .int(3), "end": .int(1)], opset: 15).shape == [0])
        let size = try T.run1(SizeOperator.self, [x])
        #expect(size.shape == [] && size.int64s == [120])
        #expect(try T.infer(ShapeOperator.self, [T.f32([T.N, .fixed(3), T.H, T.W])])
                == [TensorType(dtype: .int64, dims: [4])])
        #expect(try T.infer(ShapeOperator.self, [T.f32([T.N, .fixed(3), T.H, T.W])], ["start": .int(-2)], opset: 15)
                == [TensorType(dtype: .int64, dims: [2])])
        #expect(try T.infer(SizeOperator.self, [T.f32([T.N])]) == [TensorType(dtype: .int64, dims: [])])
    }

    @Test func constantAttributes() throws {
        #expect(try T.run1(ConstantOperator.self, [], ["value_ints": .ints([1, -1])]).int64s == [1, -1])
        let i = try T.run1(ConstantOperator.self, [], ["value_int": .int(7)])
        #expect(i.dtype == .int64 && i.shape == [])
        let f = try T.run1(ConstantOperator.self, [], ["value_float": .float(0.5)])
        #expect(f.dtype == .float32 && f.shape == [] && f.floats == [0.5])
        #expect(try T.run1(ConstantOperator.self, [], ["value_floats": .floats([1, 2])]).shape == [2])
        let t = T.floats([1, 2, 3, 4], [2, 2])
        #expect(try T.run1(ConstantOperator.self, [], ["value": .tensor(t)]).isIdentical(to: t))
        #expect(try T.infer(ConstantOperator.self, [], ["value": .tensor(t)]) == [T.f32(2, 2)])
        T.expectGraphError("no value") { _ = try T.run1(ConstantOperator.self, []) }
        T.expectGraphError("several") { _ = try T.run1(ConstantOperator.self, [], ["value_int": .int(1), "value_float": .float(1)]) }
        T.expectGraphError("not supported") { _ = try T.run1(ConstantOperator.self, [], ["value_string": .string("a")]) }
    }

    @Test func constantOfShape() throws {
        let z = try T.run1(ConstantOfShapeOperator.self, [T.i64([2, 3])])
        #expect(z.dtype == .float32 && z.shape == [2, 3] && z.floats.allSatisfy { $0 == 0 })
        let v = try T.run1(ConstantOfShapeOperator.self, [T.i64([3])], ["value": .tensor(T.i64([-7], [1]))])
        #expect(v.int64s == [-7, -7, -7])
        let s = try T.run1(ConstantOfShapeOperator.self, [T.i64([])], ["value": .tensor(T.floats([2], [1]))])
        #expect(s.shape == [] && s.floats == [2])
        T.expectGraphError("negative") { _ = try T.run1(ConstantOfShapeOperator.self, [T.i64([-1])]) }
        T.expectGraphError("one element") {
            _ = try T.run1(ConstantOfShapeOperator.self, [T.i64([1])], ["value": .tensor(T.floats([1, 2], [2]))])
        }
        #expect(try T.infer(ConstantOfShapeOperator.self, [nil], constants: [0: T.i64([4, 5])]) == [T.f32(4, 5)])
        #expect(try T.infer(ConstantOfShapeOperator.self, [TensorType(dtype: .int64, dims: [2])],
                            ["value": .tensor(T.i64([1], [1]))]) == [TensorType(dtype: .int64, shape: [.unknown, .unknown])])
    }

    @Test func range() throws {
        #expect(try T.run1(RangeOperator.self, [Tensor(scalar: Int64(1)), Tensor(scalar: Int64(10)), Tensor(scalar: Int64(3))]).int64s == [1, 4, 7])
        #expect(try T.run1(RangeOperator.self, [Tensor(scalar: Int64(5)), Tensor(scalar: Int64(1)), Tensor(scalar: Int64(-2))]).int64s == [5, 3])
        #expect(try T.run1(RangeOperator.self, [Tensor(scalar: Int64(5)), Tensor(scalar: Int64(1)), Tensor(scalar: Int64(1))]).shape == [0])
        #expect(try T.run1(RangeOperator.self, [Tensor(scalar: Float(0)), Tensor(scalar: Float(1)), Tensor(scalar: Float(0.25))]).floats == [0, 0.25, 0.5, 0.75])
        T.expectGraphError("delta is 0") {
            _ = try T.run1(RangeOperator.self, [Tensor(scalar: Int64(0)), Tensor(scalar: Int64(1)), Tensor(scalar: Int64(0))])
        }
        T.expectGraphError("differ") {
            _ = try T.run1(RangeOperator.self, [Tensor(scalar: Int64(0)), Tensor(scalar: Float(1)), Tensor(scalar: Int64(1))])
        }
        let i = TensorType(dtype: .int64, dims: [])
        #expect(try T.infer(RangeOperator.self, [i, i, i]) == [TensorType(dtype: .int64, shape: [.unknown])])
    }

    @Test func castConversions() throws {
        let x = T.floats([-2.7, -0.5, 0, 0.5, 2.7], [5])
        let i = try T.run1(CastOperator.self, [x], ["to": .int(7)])
        #expect(i.dtype == .int64 && i.int64s == [-2, 0, 0, 0, 2]) // truncates toward zero
        let b = try T.run1(CastOperator.self, [x], ["to": .int(9)])
        #expect(b.dtype == .bool && b.int64s == [1, 1, 0, 1, 1])
        let h = try T.run1(CastOperator.self, [T.floats([1.0 / 3.0, 65504, 70000], [3])], ["to": .int(10)])
        #expect(h.dtype == .float16 && h.floats == [Float(Float16(1.0 / 3.0)), 65504, .infinity])
        #expect(try T.run1(CastOperator.self, [h], ["to": .int(1)]).dtype == .float32)
        let w = try T.run1(CastOperator.self, [T.i64([Int64(Int32.max) + 1, -1])], ["to": .int(6)])
        #expect(w.dtype == .int32 && w.int64s == [Int64(Int32.min), -1]) // wraps
        #expect(try T.run1(CastOperator.self, [T.bools([true, false])], ["to": .int(1)]).floats == [1, 0])
        // NaN / out of range do not trap
        let n = try T.run1(CastOperator.self, [T.floats([.nan, 1e30], [2])], ["to": .int(7)])
        #expect(n.int64s == [Int64.min, Int64.min])
        #expect(try T.infer(CastOperator.self, [T.f32([T.N, .fixed(2)])], ["to": .int(7)])
                == [TensorType(dtype: .int64, shape: [T.N, .fixed(2)])])
        T.expectGraphError("DOUBLE") { _ = try T.run1(CastOperator.self, [x], ["to": .int(11)]) }
        T.expectGraphError("needs the attribute 'to'") { _ = try T.run1(CastOperator.self, [x]) }
    }

    @Test func shapeArithmeticChainFoldsToAReshape() throws {
        // x.view(x.shape[0], -1) as the TorchScript exporter writes it:
        // Shape -> Gather(0) -> Unsqueeze(0) -> Concat([n, -1]) -> Reshape
        let x = Tensor((0..<32).map { Float($0) }, shape: [2, 4, 2, 2])
        let shape = try T.run1(ShapeOperator.self, [x])
        let n = try T.run1(GatherOperator.self, [shape, Tensor(scalar: Int64(0))])
        let n1 = try T.run1(UnsqueezeOperator.self, [n, T.i64([0])], opset: 13)
        let target = try T.run1(ConcatOperator.self, [n1, T.i64([-1])], ["axis": .int(0)])
        #expect(target.int64s == [2, -1])
        let y = try T.run1(ReshapeOperator.self, [x, target])
        #expect(y.shape == [2, 16] && y.floats == x.floats)

        // The same chain on a symbolic batch: every step keeps what can be known.
        let xt = T.f32([T.N, .fixed(4), .fixed(2), .fixed(2)])
        let st = try T.infer(ShapeOperator.self, [xt])[0]
        #expect(st == TensorType(dtype: .int64, dims: [4]))
        let nt = try T.infer(GatherOperator.self, [st, nil], constants: [1: Tensor(scalar: Int64(0))])[0]
        #expect(nt == TensorType(dtype: .int64, dims: []))
        let n1t = try T.infer(UnsqueezeOperator.self, [nt, nil], constants: [1: T.i64([0])], opset: 13)[0]
        #expect(n1t == TensorType(dtype: .int64, dims: [1]))
        let tt = try T.infer(ConcatOperator.self, [n1t, nil], constants: [1: T.i64([-1])], ["axis": .int(0)])[0]
        #expect(tt == TensorType(dtype: .int64, dims: [2]))
        #expect(try T.infer(ReshapeOperator.self, [xt, tt]) == [T.f32([.unknown, .unknown])])
    }

    @Test func demodulationChainOnConstantWeights() throws {
        // w * rsqrt(sum(w^2, [2,3,4]) + 1e-8), as the generator's modulated conv exports it.
        let w = Tensor((0..<16).map { Float($0 % 5) - 2 }, shape: [1, 2, 2, 2, 2])
        let sq = try T.run1(PowOperator.self, [w, Tensor(scalar: Float(2))])
        let sum = try T.run1(ReduceSumOperator.self, [sq, T.i64([2, 3, 4])], opset: 13)
        #expect(sum.shape == [1, 2, 1, 1, 1])
        #expect(sum.floats == [15, 19]) // 4+1+0+1+4+4+1+0, 1+4+4+1+0+1+4+4
        let d = try T.run1(SqrtOperator.self, [try T.run1(AddOperator.self, [sum, Tensor(scalar: Float(1e-8))])])
        let r = try T.run1(DivOperator.self, [w, d])
        #expect(r.shape == w.shape)
        #expect(abs(r.floats[0] - (-2 / Float(15).squareRoot())) < 1e-6)
    }

    @Test func identityAndDropout() throws {
        let x = T.floats([1, 2], [2])
        #expect(try T.run1(IdentityOperator.self, [x]).storage === x.storage)
        #expect(try T.run1(DropoutOperator.self, [x], opset: 13).isIdentical(to: x))
        let withMask = try T.run(DropoutOperator.self, [x, Tensor(scalar: Float(0.5))], opset: 12, outputs: 2)
        #expect(withMask[1].dtype == .bool && withMask[1].int64s == [1, 1])
        let old = try T.run(DropoutOperator.self, [x], ["ratio": .float(0.2)], opset: 7, outputs: 2)
        #expect(old[1].dtype == .float32 && old[1].floats == [1, 1])
        T.expectGraphError("training") {
            _ = try T.run1(DropoutOperator.self, [x, nil, T.bools([true], [])], opset: 13)
        }
        #expect(try T.infer(DropoutOperator.self, [T.f32([T.N])], opset: 13, outputs: 2)
                == [T.f32([T.N]), TensorType(dtype: .bool, shape: [T.N])])
    }
}
