import Testing
@testable import MegaFSGraph

struct NetworkPoolTests {
    let maxPool = MaxPoolOperator.self
    let avgPool = AveragePoolOperator.self
    let x = NetOp.f([1, 3, 2, 5, 4], [1, 1, 5])

    @Test func maxPoolBasics() throws {
        #expect(NetOp.close(try NetOp.run(maxPool, [x], ["kernel_shape": .ints([2])]), [3, 3, 5, 5]))
        // Padding never wins, even against negative values.
        let neg = NetOp.f([-1, -3, -2], [1, 1, 3])
        #expect(NetOp.close(try NetOp.run(maxPool, [neg], ["kernel_shape": .ints([2]), "pads": .ints([1, 1])]), [-1, -1, -2, -2]))
        // Strides and dilations: taps i and i+2.
        let d = try NetOp.run(maxPool, [x], ["kernel_shape": .ints([2]), "dilations": .ints([2])])
        #expect(NetOp.close(d, [2, 5, 4]))
    }

    @Test func maxPoolCeilModeDropsWindowsStartingInPadding() throws {
        let x = NetOp.f([1, 2, 3, 4, 5], [1, 1, 5])
        // ceil((5+2-2)/2)+1 = 4 windows, but the 4th would start in the end padding.
        let y = try NetOp.run(maxPool, [x], ["kernel_shape": .ints([2]), "strides": .ints([2]), "pads": .ints([1, 1]), "ceil_mode": .int(1)])
        #expect(y.shape == [1, 1, 3])
        #expect(NetOp.close(y, [1, 3, 5]))
        // Without padding the partial last window is kept: [1,2] [3,4] [5].
        let z = try NetOp.run(maxPool, [x], ["kernel_shape": .ints([2]), "strides": .ints([2]), "ceil_mode": .int(1)])
        #expect(NetOp.close(z, [2, 4, 5]))
        let floor = try NetOp.run(maxPool, [x], ["kernel_shape": .ints([2]), "strides": .ints([2])])
        #expect(NetOp.close(floor, [2, 4]))
    }

    @Test func maxPoolAutoPad() throws {
        let x6 = NetOp.f([1, 2, 3, 4, 5, 6], [1, 1, 6])
        // kernel 2, stride 1: one pad, at the end (UPPER) or start (LOWER).
        let upper = try NetOp.run(maxPool, [x6], ["kernel_shape": .ints([2]), "auto_pad": .string("SAME_UPPER")])
        #expect(NetOp.close(upper, [2, 3, 4, 5, 6, 6]))
        let lower = try NetOp.run(maxPool, [x6], ["kernel_shape": .ints([2]), "auto_pad": .string("SAME_LOWER")])
        #expect(NetOp.close(lower, [1, 2, 3, 4, 5, 6]))
        // SAME with dilation pads for the dilated kernel (ONNX spec; ONNX Runtime differs).
        let dil = try NetOp.run(maxPool, [x6], ["kernel_shape": .ints([2]), "dilations": .ints([2]), "auto_pad": .string("SAME_UPPER")])
        #expect(NetOp.close(dil, [2, 3, 4, 5, 6, 5]))
    }

    @Test func averagePoolPadCounting() throws {
        let ones = NetOp.f(Array(repeating: 1, count: 6), [1, 1, 6])
        let attrs: [String: Attribute] = ["kernel_shape": .ints([3]), "strides": .ints([2]), "pads": .ints([1, 1]), "ceil_mode": .int(1)]
        var include = attrs
        include["count_include_pad"] = .int(1)
        // Windows [-1,1] [1,3] [3,5] [5,7): the last one only counts the explicit end pad.
        #expect(NetOp.close(try NetOp.run(avgPool, [ones], include), [2.0 / 3, 1, 1, 0.5]))
        #expect(NetOp.close(try NetOp.run(avgPool, [ones], attrs), [1, 1, 1, 1]))
        let x = NetOp.f([1, 2, 3, 4], [1, 1, 4])
        #expect(NetOp.close(try NetOp.run(avgPool, [x], ["kernel_shape": .ints([2])]), [1.5, 2.5, 3.5]))
        #expect(NetOp.close(try NetOp.run(avgPool, [x], ["kernel_shape": .ints([3]), "pads": .ints([1, 1])]), [1.5, 2, 3, 3.5]))
    }

    @Test func pool2DByHand() throws {
        let x = NetOp.f((1...16).map(Float.init), [1, 1, 4, 4])
        let m = try NetOp.run(maxPool, [x], ["kernel_shape": .ints([2, 2]), "strides": .ints([2, 2])])
        #expect(NetOp.close(m, [6, 8, 14, 16]))
        let a = try NetOp.run(avgPool, [x], ["kernel_shape": .ints([2, 2]), "strides": .ints([2, 2])])
        #expect(NetOp.close(a, [3.5, 5.5, 11.5, 13.5]))
        let g = try NetOp.run(GlobalAveragePoolOperator.self, [x])
        #expect(g.shape == [1, 1, 1, 1])
        #expect(NetOp.close(g, [8.5]))
        let gm = try NetOp.run(GlobalMaxPoolOperator.self, [x])
        #expect(NetOp.close(gm, [16]))
    }

    @Test func poolShapeRules() throws {
        let t = try NetOp.infer(maxPool, [NetOp.type(.symbolic("N"), .fixed(64), .fixed(128), .unknown)],
                                ["kernel_shape": .ints([3, 3]), "strides": .ints([2, 2]), "pads": .ints([1, 1, 1, 1])])
        #expect(t[0].shape == [.symbolic("N"), .fixed(64), .fixed(64), .unknown])
        let g = try NetOp.infer(GlobalAveragePoolOperator.self, [NetOp.type(.symbolic("N"), .fixed(8), .fixed(5), .fixed(5))])
        #expect(g[0].shape == [.symbolic("N"), .fixed(8), .fixed(1), .fixed(1)])
        // MaxPool's type rule accepts uint8 (opset 12); AveragePool does not take integers.
        let u8 = try NetOp.infer(maxPool, [NetOp.type([1, 1, 4, 4], dtype: .uint8)], ["kernel_shape": .ints([2, 2])])
        #expect(u8[0] == NetOp.type([1, 1, 3, 3], dtype: .uint8))
        #expect(NetOp.graphError { try NetOp.infer(self.avgPool, [NetOp.type([1, 1, 4, 4], dtype: .int64)], ["kernel_shape": .ints([2, 2])]) } != nil)
    }

    @Test func poolErrors() throws {
        let t = NetOp.type([1, 1, 5, 5])
        let missing = NetOp.graphError { try NetOp.infer(self.maxPool, [t]) }
        #expect(missing?.contains("kernel_shape") == true)
        let rank = NetOp.graphError { try NetOp.infer(self.maxPool, [t], ["kernel_shape": .ints([2])]) }
        #expect(rank?.contains("kernel_shape") == true)
        let pads = NetOp.graphError { try NetOp.infer(self.maxPool, [t], ["kernel_shape": .ints([2, 2]), "pads": .ints([2, 0, 0, 0])]) }
        #expect(pads?.contains("smaller than") == true)
        let indices = NetOp.graphError { try NetOp.infer(self.maxPool, [t], ["kernel_shape": .ints([2, 2])], outputs: ["y", "idx"]) }
        #expect(indices?.contains("Indices") == true)
        let run = NetOp.graphError {
            try NetOp.run(self.maxPool, [NetOp.f([1, 2], [1, 1, 2])], ["kernel_shape": .ints([2])], outputs: ["y", "idx"])
        }
        #expect(run?.contains("Indices") == true)
        let ceil = NetOp.graphError { try NetOp.infer(self.avgPool, [t], ["kernel_shape": .ints([2, 2]), "ceil_mode": .int(3)]) }
        #expect(ceil?.contains("ceil_mode") == true)
        let big = NetOp.graphError { try NetOp.infer(self.avgPool, [t], ["kernel_shape": .ints([6, 2])]) }
        #expect(big?.contains("node n") == true)
    }
}
