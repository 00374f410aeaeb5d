import Foundation
import Testing
@testable import MegaFSGraph

private typealias T = TensorTestSupport

@Suite("Tensor operators: reshape family, transpose, concat")
struct TensorReshapeTests {
    let x = Tensor((0..<24).map { Float($0) }, shape: [2, 3, 4])

    @Test func reshapeZeroCopiesAndMinusOneInfers() throws {
        let r = try T.run1(ReshapeOperator.self, [x, T.i64([0, -1])])
        #expect(r.shape == [2, 12])
        #expect(r.storage === x.storage) // no copy
        #expect(try T.run1(ReshapeOperator.self, [x, T.i64([-1, 2, 2])]).shape == [6, 2, 2])
        #expect(try T.run1(ReshapeOperator.self, [x], ["shape": .ints([4, 6])], opset: 4).shape == [4, 6])
    }

    @Test func reshapeAllowZero() throws {
        let empty = Tensor(zeros: .float32, shape: [3, 0])
        #expect(try T.run1(ReshapeOperator.self, [empty, T.i64([0, 3])], ["allowzero": .int(1)], opset: 14).shape == [0, 3])
        // without allowzero the 0 copies dim 0 (3): [3, 3] has 9 elements, not 0
        T.expectGraphError("cannot reshape") { _ = try T.run1(ReshapeOperator.self, [empty, T.i64([0, 3])], opset: 14) }
        T.expectGraphError("mixes 0 and -1") {
            _ = try T.run1(ReshapeOperator.self, [empty, T.i64([0, -1])], ["allowzero": .int(1)], opset: 14)
        }
    }

    @Test func reshapeErrors() {
        T.expectGraphError("more than one -1") { _ = try T.run1(ReshapeOperator.self, [x, T.i64([-1, -1])]) }
        T.expectGraphError("cannot reshape") { _ = try T.run1(ReshapeOperator.self, [x, T.i64([5, -1])]) }
        T.expectGraphError("invalid dimension -2") { _ = try T.run1(ReshapeOperator.self, [x, T.i64([-2, 12])]) }
        T.expectGraphError("must be int64") { _ = try T.run1(ReshapeOperator.self, [x, T.floats([2, 12], [2])]) }
        // absurd shapes from a corrupt model throw instead of trapping on overflow
        T.expectGraphError("too large") { _ = try T.run1(ReshapeOperator.self, [x, T.i64([1 << 62, 1 << 62, -1])]) }
        T.expectGraphError("too large") { _ = try T.run1(ExpandOperator.self, [x, T.i64([1 << 40, 1, 1, 1])]) }
        T.expectGraphError("overflows") { _ = try T.run1(TileOperator.self, [x, T.i64([1 << 62, 1, 1])]) }
        T.expectGraphError("too large") { _ = try T.run1(ConstantOfShapeOperator.self, [T.i64([1 << 31, 1 << 31])]) }
    }

    @Test func reshapeShapeRuleSolvesMinusOneSymbolically() throws {
        let shape = { (v: [Int64]) in [1: T.i64(v)] }
        // [N,512,4,4] -> [-1, 8192]: the -1 is N
        #expect(try T.infer(ReshapeOperator.self, [T.f32([T.N, .fixed(512), .fixed(4), .fixed(4)]), nil],
                            constants: shape([-1, 8192])) == [T.f32([T.N, .fixed(8192)])])
        // [N,3,H,W] -> [0, 3, -1]: N copied; H*W cannot be named
        #expect(try T.infer(ReshapeOperator.self, [T.f32([T.N, .fixed(3), T.H, T.W]), nil],
                            constants: shape([0, 3, -1])) == [T.f32([T.N, .fixed(3), .unknown])])
        // [N,6,H] -> [0, -1, 2, H]? (H is not a constant) -- [0, -1, 2] with H fixed 4: -1 = 12
        #expect(try T.infer(ReshapeOperator.self, [T.f32([T.N, .fixed(6), .fixed(4)]), nil],
                            constants: shape([0, -1, 2])) == [T.f32([T.N, .fixed(12), .fixed(2)])])
        // non-constant shape of static length 3: rank 3, dims unknown
        #expect(try T.infer(ReshapeOperator.self, [T.f32(2, 3, 4), TensorType(dtype: .int64, dims: [3])])
                == [T.f32([.unknown, .unknown, .unknown])])
        T.expectGraphError("cannot reshape") {
            _ = try T.infer(ReshapeOperator.self, [T.f32(2, 3, 4), nil], constants: shape([5, -1]))
        }
    }

    @Test func flatten() throws {
        #expect(try T.run1(FlattenOperator.self, [x]).shape == [2, 12])
        #expect(try T.run1(FlattenOperator.self, [x], ["axis": .int(0)]).shape == [1, 24])
        #expect(try T.run1(FlattenOperator.self, [x], ["axis": .int(3)]).shape == [24, 1])
        #expect(try T.run1(FlattenOperator.self, [x], ["axis": .int(-1)]).shape == [6, 4])
        #expect(try T.infer(FlattenOperator.self, [T.f32([T.N, .fixed(3), .fixed(4)])]) == [T.f32([T.N, .fixed(12)])])
        #expect(try T.infer(FlattenOperator.self, [T.f32([T.N, .fixed(3), .fixed(4)])], ["axis": .int(2)])
                == [T.f32([.unknown, .fixed(4)])])
        T.expectGraphError("out of range") { _ = try T.run1(FlattenOperator.self, [x], ["axis": .int(4)]) }
    }

    @Test func squeezeAxesFromAttributeOrInput() throws {
        let y = Tensor(zeros: .float32, shape: [1, 3, 1, 4])
        #expect(try T.run1(SqueezeOperator.self, [y], ["axes": .ints([0])], opset: 11).shape == [3, 1, 4])
        #expect(try T.run1(SqueezeOperator.self, [y, T.i64([-2, 0])], opset: 13).shape == [3, 4])
        #expect(try T.run1(SqueezeOperator.self, [y], opset: 13).shape == [3, 4])
        T.expectGraphError("cannot squeeze axis 1") { _ = try T.run1(SqueezeOperator.self, [y, T.i64([1])], opset: 13) }
        T.expectGraphError("repeat") { _ = try T.run1(SqueezeOperator.self, [y, T.i64([0, -4])], opset: 13) }
        #expect(try T.infer(SqueezeOperator.self, [T.f32([T.N, .fixed(1), T.H]), nil], constants: [1: T.i64([1])], opset: 13)
                == [T.f32([T.N, T.H])])
        // no axes and a symbolic dim: the rank is not known
        #expect(try T.infer(SqueezeOperator.self, [T.f32([T.N, .fixed(1)])], opset: 13) == [TensorType(dtype: .float32, shape: nil)])
    }

    @Test func unsqueezeAxesRefertoTheOutput() throws {
        let y = Tensor(zeros: .float32, shape: [3, 4])
        #expect(try T.run1(UnsqueezeOperator.self, [y], ["axes": .ints([0, 3])], opset: 11).shape == [1, 3, 4, 1])
        #expect(try T.run1(UnsqueezeOperator.self, [y, T.i64([-1, 0])], opset: 13).shape == [1, 3, 4, 1])
        #expect(try T.run1(UnsqueezeOperator.self, [Tensor(scalar: Int64(5)), T.i64([0])], opset: 13).int64s == [5])
        T.expectGraphError("repeat") { _ = try T.run1(UnsqueezeOperator.self, [y, T.i64([1, -3])], opset: 13) }
        T.expectGraphError("out of range") { _ = try T.run1(UnsqueezeOperator.self, [y, T.i64([3])], opset: 13) }
        T.expectGraphError("needs axes") { _ = try T.run1(UnsqueezeOperator.self, [y], opset: 11) }
        #expect(try T.infer(UnsqueezeOperator.self, [T.f32([T.N, .fixed(3)]), nil], constants: [1: T.i64([1])], opset: 13)
                == [T.f32([T.N, .fixed(1), .fixed(3)])])
    }

    @Test func transpose() throws {
        let m = T.floats([1, 2, 3, 4, 5, 6], [2, 3])
        let r = try T.run1(TransposeOperator.self, [m])
        #expect(r.shape == [3, 2] && r.floats == [1, 4, 2, 5, 3, 6])
        let p = try T.run1(TransposeOperator.self, [x], ["perm": .ints([1, 0, 2])])
        #expect(p.shape == [3, 2, 4])
        #expect(Array(p.floats[0..<8]) == [0, 1, 2, 3, 12, 13, 14, 15])
        #expect(try T.infer(TransposeOperator.self, [T.f32([T.N, .fixed(3), T.H, T.W])], ["perm": .ints([0, 2, 3, 1])])
                == [T.f32([T.N, T.H, T.W, .fixed(3)])])
        T.expectGraphError("not a permutation") { _ = try T.run1(TransposeOperator.self, [x], ["perm": .ints([0, 0, 1])]) }
        T.expectGraphError("not a permutation") { _ = try T.run1(TransposeOperator.self, [x], ["perm": .ints([1, 0])]) }
    }

    @Test func concat() throws {
        let a = T.floats([1, 2, 3, 4], [2, 2]), b = T.floats([5, 6], [2, 1])
        let r = try T.run1(ConcatOperator.self, [a, b], ["axis": .int(-1)])
        #expect(r.shape == [2, 3] && r.floats == [1, 2, 5, 3, 4, 6])
        let s = try T.run1(ConcatOperator.self, [T.i64([1]), T.i64([512]), T.i64([-1])], ["axis": .int(0)])
        #expect(s.int64s == [1, 512, -1])
        #expect(try T.infer(ConcatOperator.self, [T.f32([T.N, .fixed(3)]), T.f32([T.N, .fixed(5)])], ["axis": .int(1)])
                == [T.f32([T.N, .fixed(8)])])
        #expect(try T.infer(ConcatOperator.self, [T.f32([T.N, .fixed(3)]), T.f32(2, 3)], ["axis": .int(0)])
                == [T.f32([.unknown, .fixed(3)])])
        #expect(try T.infer(ConcatOperator.self, [T.f32([T.N, .fixed(3)]), T.f32(2, 3)], ["axis": .int(1)])
                == [T.f32(2, 6)])
        T.expectGraphError("cannot be concatenated") { _ = try T.run1(ConcatOperator.self, [a, T.floats([1, 2, 3], [3, 1])], ["axis": .int(1)]) }
        T.expectGraphError("needs the attribute axis") { _ = try T.run1(ConcatOperator.self, [a, b]) }
        T.expectGraphError("differ") { _ = try T.infer(ConcatOperator.self, [T.f32(2, 3), T.f32(3, 3)], ["axis": .int(1)]) }
    }
}

@Suite("Tensor operators: slicing and indexing")
struct TensorIndexingTests {
    let x = Tensor((0..<12).map { Float($0) }, shape: [3, 4])

    @Test func sliceBasicsAndClamping() throws {
        let r = try T.run1(SliceOperator.self, [x, T.i64([1, 1]), T.i64([3, 3])], opset: 13)
        #expect(r.shape == [2, 2] && r.floats == [5, 6, 9, 10])
        // ends beyond the dim and INT64_MAX clamp; starts below -dim clamp to 0
        let c = try T.run1(SliceOperator.self, [x, T.i64([-100]), T.i64([Int64.max]), T.i64([1])], opset: 13)
        #expect(c.shape == [3, 4])
        let e = try T.run1(SliceOperator.self, [x, T.i64([3]), T.i64([1]), T.i64([1])], opset: 13)
        #expect(e.shape == [3, 0])
    }

    @Test func sliceNegativeStepsReverse() throws {
        // torch.flip: start -1, end INT64_MIN, step -1
        let f = try T.run1(SliceOperator.self, [x, T.i64([-1]), T.i64([Int64.min]), T.i64([1]), T.i64([-1])], opset: 13)
        #expect(f.floats == [3, 2, 1, 0, 7, 6, 5, 4, 11, 10, 9, 8])
        let g = try T.run1(SliceOperator.self, [x, T.i64([Int64.max]), T.i64([Int64.min]), T.i64([-1]), T.i64([-3])], opset: 13)
        #expect(g.shape == [3, 2] && g.floats == [3, 0, 7, 4, 11, 8])
        // start beyond the end with a negative step clamps to dim - 1
        let h = try T.run1(SliceOperator.self, [x, T.i64([10]), T.i64([0]), T.i64([0]), T.i64([-1])], opset: 13)
        #expect(h.shape == [2, 4] && Array(h.floats[0..<4]) == [8, 9, 10, 11])
    }

    @Test func sliceOldAttributeForm() throws {
        let r = try T.run1(SliceOperator.self, [x], ["starts": .ints([1]), "ends": .ints([1000]), "axes": .ints([1])], opset: 9)
        #expect(r.shape == [3, 3] && Array(r.floats[0..<3]) == [1, 2, 3])
    }

    @Test func sliceErrors() {
        T.expectGraphError("cannot be 0") { _ = try T.run1(SliceOperator.self, [x, T.i64([0]), T.i64([2]), T.i64([0]), T.i64([0])], opset: 13) }
        T.expectGraphError("repeat") { _ = try T.run1(SliceOperator.self, [x, T.i64([0, 0]), T.i64([2, 2]), T.i64([1, -1])], opset: 13) }
        T.expectGraphError("differ in length") { _ = try T.run1(SliceOperator.self, [x, T.i64([0, 0]), T.i64([2])], opset: 13) }
        T.expectGraphError("out of range") { _ = try T.run1(SliceOperator.self, [x, T.i64([0]), T.i64([2]), T.i64([2])], opset: 13) }
    }

    @Test func sliceShapeRule() throws {
        let t = T.f32([T.N, .fixed(10)])
        let c: [Int: Tensor] = [1: T.i64([2]), 2: T.i64([Int64.max]), 3: T.i64([1])]
        #expect(try T.infer(SliceOperator.self, [t, nil, nil, nil], constants: c, opset: 13) == [T.f32([T.N, .fixed(8)])])
        let flip: [Int: Tensor] = [1: T.i64([-1]), 2: T.i64([Int64.min]), 3: T.i64([-1]), 4: T.i64([-1])]
        #expect(try T.infer(SliceOperator.self, [t, nil, nil, nil, nil], constants: flip, opset: 13) == [t])
        // slicing the symbolic axis: unknown
        #expect(try T.infer(SliceOperator.self, [t, nil, nil, nil], constants: [1: T.i64([1]), 2: T.i64([3]), 3: T.i64([0])],
                            opset: 13) == [T.f32([.unknown, .fixed(10)])])
        // non-constant starts, constant axes: only that axis is unknown
        let i1 = TensorType(dtype: .int64, dims: [1])
        #expect(try T.infer(SliceOperator.self, [t, i1, i1, nil], constants: [3: T.i64([1])], opset: 13)
                == [T.f32([T.N, .unknown])])
    }

    @Test func gather() throws {
        let r = try T.run1(GatherOperator.self, [x, T.i64([2, -3])])
        #expect(r.shape == [2, 4] && r.floats == [8, 9, 10, 11, 0, 1, 2, 3])
        // scalar index drops the axis: the Shape -> Gather(0) pattern
        let s = try T.run1(GatherOperator.self, [T.i64([1, 512, 8, 8]), Tensor(scalar: Int64(1))])
        #expect(s.shape == [] && s.int64s == [512])
        let c = try T.run1(GatherOperator.self, [x, T.i64([[3, 0], [1, 1]].flatMap { $0 }, [2, 2])], ["axis": .int(-1)])
        #expect(c.shape == [3, 2, 2] && Array(c.floats[0..<4]) == [3, 0, 1, 1])
        let i32 = try T.run1(GatherOperator.self, [x, Tensor([Int32(1)], shape: [1])], ["axis": .int(1)])
        #expect(i32.floats == [1, 5, 9])
        T.expectGraphError("out of range") { _ = try T.run1(GatherOperator.self, [x, T.i64([3])]) }
        T.expectGraphError("out of range") { _ = try T.run1(GatherOperator.self, [x, T.i64([-4])]) }
        T.expectGraphError("indices") { _ = try T.infer(GatherOperator.self, [T.f32(3, 4), T.f32(2)]) }
        #expect(try T.infer(GatherOperator.self, [T.f32([T.N, .fixed(5), .fixed(3)]), TensorType(dtype: .int64, dims: [2])],
                            ["axis": .int(1)]) == [T.f32([T.N, .fixed(2), .fixed(3)])])
        #expect(try T.infer(GatherOperator.self, [TensorType(dtype: .int64, dims: [4]), TensorType(dtype: .int64, dims: [])])
                == [TensorType(dtype: .int64, dims: [])])
    }

    @Test func split() throws {
        let v = Tensor((0..<7).map { Float($0) }, shape: [7])
        let a = try T.run(SplitOperator.self, [v, T.i64([2, 5])], opset: 13, outputs: 2)
        #expect(a.map(\.floats) == [[0, 1], [2, 3, 4, 5, 6]])
        let b = try T.run(SplitOperator.self, [v], ["split": .ints([3, 4])], opset: 11, outputs: 2)
        #expect(b.map(\.shape) == [[3], [4]])
        // opset 18 num_outputs: ceil(7/3) = 3 -> [3, 3, 1]
        let c = try T.run(SplitOperator.self, [v], ["num_outputs": .int(3)], opset: 18, outputs: 3)
        #expect(c.map(\.floats) == [[0, 1, 2], [3, 4, 5], [6]])
        let m = try T.run(SplitOperator.self, [x], ["axis": .int(1)], opset: 13, outputs: 2)
        #expect(m[1].shape == [3, 2] && m[1].floats == [2, 3, 6, 7, 10, 11])
        T.expectGraphError("evenly") { _ = try T.run(SplitOperator.self, [v], opset: 13, outputs: 2) }
        T.expectGraphError("does not add up") { _ = try T.run(SplitOperator.self, [v, T.i64([2, 2])], opset: 13, outputs: 2) }
        T.expectGraphError("outputs") { _ = try T.run(SplitOperator.self, [v, T.i64([7])], opset: 13, outputs: 2) }
        let t = try T.infer(SplitOperator.self, [T.f32([T.N, .fixed(6)])], ["axis": .int(1)], opset: 13, outputs: 3)
        #expect(t == Array(repeating: T.f32([T.N, .fixed(2)]), count: 3))
    }

    @Test func expandAndTile() throws {
        let col = T.floats([1, 2, 3], [3, 1])
        let e = try T.run1(ExpandOperator.self, [col, T.i64([2, 1, 4])])
        #expect(e.shape == [2, 3, 4] && Array(e.floats[0..<8]) == [1, 1, 1, 1, 2, 2, 2, 2])
        #expect(try T.run1(ExpandOperator.self, [col, T.i64([1])]).shape == [3, 1]) // shape may be smaller
        T.expectGraphError("do not broadcast") { _ = try T.run1(ExpandOperator.self, [col, T.i64([2, 4])]) }
        #expect(try T.infer(ExpandOperator.self, [T.f32([T.N, .fixed(1)]), nil], constants: [1: T.i64([1, 4])])
                == [T.f32([T.N, .fixed(4)])])
        let t = try T.run1(TileOperator.self, [T.floats([1, 2, 3, 4], [2, 2]), T.i64([2, 3])])
        #expect(t.shape == [4, 6])
        #expect(Array(t.floats[0..<6]) == [1, 2, 1, 2, 1, 2])
        #expect(Array(t.floats[18..<24]) == [3, 4, 3, 4, 3, 4])
        T.expectGraphError("entries") { _ = try T.run1(TileOperator.self, [col, T.i64([2])]) }
        #expect(try T.infer(TileOperator.self, [T.f32([T.N, .fixed(2)]), nil], constants: [1: T.i64([1, 3])])
                == [T.f32([T.N, .fixed(6)])])
    }
}
