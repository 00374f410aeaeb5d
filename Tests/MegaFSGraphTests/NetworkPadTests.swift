import Testing
@testable import MegaFSGraph

struct NetworkPadTests {
    let pad = PadOperator.self
    let x = NetOp.f([1, 2, 3], [3])

    func run(_ x: Tensor, _ pads: [Int64], value: Tensor? = nil, axes: [Int64]? = nil, mode: String? = nil, opset: Int = 18) throws -> Tensor {
        var attrs: [String: Attribute] = [:]
        if let mode { attrs["mode"] = .string(mode) }
        return try NetOp.run(pad, [x, NetOp.i64(pads), value, axes.map(NetOp.i64)], attrs, opset: opset)
    }

    @Test func modes() throws {
        #expect(NetOp.close(try run(x, [2, 1]), [0, 0, 1, 2, 3, 0]))
        #expect(NetOp.close(try run(x, [2, 1], value: Tensor(scalar: Float(9))), [9, 9, 1, 2, 3, 9]))
        #expect(NetOp.close(try run(x, [2, 2], mode: "reflect"), [3, 2, 1, 2, 3, 2, 1]))
        #expect(NetOp.close(try run(x, [2, 2], mode: "edge"), [1, 1, 1, 2, 3, 3, 3]))
        #expect(NetOp.close(try run(x, [1, 2], mode: "wrap", opset: 19), [3, 1, 2, 3, 1, 2]))
        // Reflect beyond the axis size repeats the reflection (NumPy semantics).
        #expect(NetOp.close(try run(x, [4, 0], mode: "reflect"), [1, 2, 3, 2, 1, 2, 3]))
    }

    @Test func negativePadsCropFirst() throws {
        let x5 = NetOp.f([1, 2, 3, 4, 5], [5])
        #expect(NetOp.close(try run(x5, [-1, -2]), [2, 3]))
        // Crop two at the start, then reflect at the end of what is left: [3,4,5] + [4,3].
        #expect(NetOp.close(try run(x5, [-2, 2], mode: "reflect"), [3, 4, 5, 4, 3]))
        #expect(NetOp.close(try run(x5, [2, -3], mode: "edge"), [1, 1, 1, 2]))
        // The upfirdn2d pattern: pad one side, crop the other, on a 2-D map.
        let m = NetOp.f((1...9).map(Float.init), [3, 3])
        let y = try run(m, [1, -1, -1, 1])
        #expect(y.shape == [3, 3])
        #expect(NetOp.close(y, [0, 0, 0, 2, 3, 0, 5, 6, 0]))
    }

    @Test func axesInputOpset18() throws {
        let m = NetOp.f([1, 2, 3, 4], [2, 2])
        // Only the last axis (given as -1): one before, two after.
        let y = try run(m, [1, 2], axes: [-1])
        #expect(y.shape == [2, 5])
        #expect(NetOp.close(y, [0, 1, 2, 0, 0, 0, 3, 4, 0, 0]))
    }

    @Test func attributeFormBeforeOpset11() throws {
        let m = NetOp.f([1, 2, 3, 4], [2, 2])
        let y = try NetOp.run(pad, [m], ["pads": .ints([1, 0, 0, 1]), "value": .float(7)], opset: 2)
        #expect(y.shape == [3, 3])
        #expect(NetOp.close(y, [7, 7, 7, 1, 2, 7, 3, 4, 7]))
        let missing = NetOp.graphError { try NetOp.run(self.pad, [m], [:], opset: 2) }
        #expect(missing?.contains("pads") == true)
    }

    @Test func anyElementType() throws {
        let ints = Tensor([Int64(5), 6], shape: [2])
        let y = try NetOp.run(pad, [ints, NetOp.i64([1, 1]), Tensor(scalar: Int64(-1))])
        #expect(y.dtype == .int64)
        #expect(y.int64s == [-1, 5, 6, -1])
        let h = Tensor([Float16(1.5).bitPattern, Float16(2).bitPattern].flatMap { [UInt8($0 & 0xff), UInt8($0 >> 8)] }, dtype: .uint8, shape: [4])
        let half = try Tensor(dtype: .float16, shape: [2], bytes: h.bytes)
        let z = try NetOp.run(pad, [half, NetOp.i64([0, 2])], ["mode": .string("edge")])
        #expect(z.dtype == .float16)
        #expect(z.floats == [1.5, 2, 2, 2])
        let old = try NetOp.run(pad, [half], ["pads": .ints([1, 0]), "value": .float(0.25)], opset: 2)
        #expect(old.floats == [0.25, 1.5, 2])
    }

    @Test func shapeRule() throws {
        let xt = NetOp.type(.symbolic("N"), .fixed(3), .fixed(8), .unknown)
        let t = try NetOp.infer(pad, [xt, nil], constants: [nil, NetOp.i64([0, 0, 1, 2, 0, 0, -1, 0])])
        #expect(t[0].shape == [.symbolic("N"), .fixed(3), .fixed(8), .unknown])
        let a = try NetOp.infer(pad, [xt, nil, nil, nil], constants: [nil, NetOp.i64([2, 2]), nil, NetOp.i64([2])])
        #expect(a[0].shape == [.symbolic("N"), .fixed(3), .fixed(12), .unknown])
        // Pads known only at run time.
        let u = try NetOp.infer(pad, [xt, NetOp.type([8], dtype: .int64)])
        #expect(u[0].shape == [.unknown, .unknown, .unknown, .unknown])
        let old = try NetOp.infer(pad, [NetOp.type([2, 3])], ["pads": .ints([1, 0, 1, 0])], opset: 10)
        #expect(old[0].shape == [.fixed(4), .fixed(3)])
    }

    @Test func errors() throws {
        let count = NetOp.graphError { try self.run(self.x, [1, 1, 1]) }
        #expect(count?.contains("pads has 3 values") == true)
        let crop = NetOp.graphError { try self.run(self.x, [-2, -2]) }
        #expect(crop?.contains("below zero") == true)
        let inferCrop = NetOp.graphError { try NetOp.infer(self.pad, [NetOp.type([3]), nil], constants: [nil, NetOp.i64([-2, -2])]) }
        #expect(inferCrop?.contains("below zero") == true)
        let empty = NetOp.graphError { try self.run(NetOp.f([], [0]), [1, 1], mode: "edge") }
        #expect(empty?.contains("non-empty") == true)
        let mode = NetOp.graphError { try self.run(self.x, [1, 1], mode: "symmetric") }
        #expect(mode?.contains("mode 'symmetric'") == true)
        let value = NetOp.graphError { try self.run(self.x, [1, 1], value: Tensor(scalar: Int64(1))) }
        #expect(value?.contains("constant_value") == true)
        let axes = NetOp.graphError { try self.run(NetOp.f([1, 2, 3, 4], [2, 2]), [1, 1, 1, 1], axes: [1, -1]) }
        #expect(axes?.contains("duplicates") == true)
        let missing = NetOp.graphError { try NetOp.infer(self.pad, [NetOp.type([3])]) }
        #expect(missing?.contains("required") == true)
    }
}
