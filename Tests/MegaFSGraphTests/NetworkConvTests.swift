import Testing
@testable import MegaFSGraph

struct NetworkConvTests {
    let conv = ConvOperator.self
    let convT = ConvTransposeOperator.self
    let x15 = NetOp.f([1, 2, 3, 4, 5], [1, 1, 5])
    let diff = NetOp.f([1, 0, -1], [1, 1, 3])

    // MARK: Conv values

    @Test func convDefaultsAreNoPaddingUnitStride() throws {
        // y[i] = x[i] - x[i+2]; kernel_shape comes from W.
        let y = try NetOp.run(conv, [x15, diff])
        #expect(y.shape == [1, 1, 3])
        #expect(NetOp.close(y, [-2, -2, -2]))
    }

    @Test func convPadsAndStrides() throws {
        let padded = try NetOp.run(conv, [x15, diff], ["pads": .ints([1, 1])])
        #expect(NetOp.close(padded, [-2, -2, -2, -2, 4]))
        let strided = try NetOp.run(conv, [x15, diff], ["pads": .ints([1, 1]), "strides": .ints([2])])
        #expect(NetOp.close(strided, [-2, -2, 4]))
        // Asymmetric pads: 2 before, 0 after.
        let asym = try NetOp.run(conv, [x15, diff], ["pads": .ints([2, 0])])
        #expect(NetOp.close(asym, [-1, -2, -2, -2, -2]))
    }

    @Test func convDilation() throws {
        let x = NetOp.f([1, 2, 3, 4, 5, 6, 7], [1, 1, 7])
        let y = try NetOp.run(conv, [x, NetOp.f([1, 1], [1, 1, 2])], ["dilations": .ints([3])])
        #expect(NetOp.close(y, [5, 7, 9, 11]))
    }

    @Test func convAutoPadSameUpperAndLower() throws {
        let x = NetOp.f([1, 2, 3, 4, 5, 6], [1, 1, 6])
        let w = NetOp.f([1, 1], [1, 1, 2])
        // One pad in total: SAME_UPPER puts it at the end, SAME_LOWER at the start.
        let upper = try NetOp.run(conv, [x, w], ["auto_pad": .string("SAME_UPPER")])
        #expect(NetOp.close(upper, [3, 5, 7, 9, 11, 6]))
        let lower = try NetOp.run(conv, [x, w], ["auto_pad": .string("SAME_LOWER")])
        #expect(NetOp.close(lower, [1, 3, 5, 7, 9, 11]))
        // Stride 4: ceil(6/4) = 2 outputs; VALID gives floor((6-2)/4)+1 = 2 as well, without pads.
        let s4 = try NetOp.run(conv, [x, w], ["auto_pad": .string("SAME_UPPER"), "strides": .ints([4])])
        #expect(NetOp.close(s4, [3, 11]))
        let valid = try NetOp.run(conv, [x, w], ["auto_pad": .string("VALID"), "strides": .ints([3])])
        #expect(NetOp.close(valid, [3, 9]))
    }

    @Test func convGroupsAndBias() throws {
        // Depthwise 1x1: channel 0 x2, channel 1 x3, bias +1 / -1.
        let x = NetOp.f([1, 2, 3, 4, 5, 6, 7, 8], [1, 2, 2, 2])
        let w = NetOp.f([2, 3], [2, 1, 1, 1])
        let y = try NetOp.run(conv, [x, w, NetOp.f([1, -1], [2])], ["group": .int(2)])
        #expect(y.shape == [1, 2, 2, 2])
        #expect(NetOp.close(y, [3, 5, 7, 9, 14, 17, 20, 23]))
        // Same data, group 1 with a (1, 2, 1, 1) weight sums the channels.
        let sum = try NetOp.run(conv, [x, NetOp.f([1, 1], [1, 2, 1, 1])])
        #expect(NetOp.close(sum, [6, 8, 10, 12]))
    }

    @Test func conv2DCheckedByHand() throws {
        // 3x3 input, 2x2 kernel [[1,2],[3,4]], pads 1 on top/left only, stride 2.
        let x = NetOp.f([1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 1, 3, 3])
        let w = NetOp.f([1, 2, 3, 4], [1, 1, 2, 2])
        let y = try NetOp.run(conv, [x, w], ["pads": .ints([1, 1, 0, 0]), "strides": .ints([2, 2])])
        #expect(y.shape == [1, 1, 2, 2])
        // (0,0): only x[0,0]*4 = 4; (0,1): x[0,1]*3 + x[0,2]*4 = 18; (1,0): x[1,0]*2 + x[2,0]*4 = 36;
        // (1,1): 5 + 12 + 24 + 36 = 77.
        #expect(NetOp.close(y, [4, 18, 36, 77]))
    }

    // MARK: Conv shape rule

    @Test func convShapeRuleKeepsSymbolicBatch() throws {
        let t = try NetOp.infer(conv, [NetOp.type(.symbolic("N"), .fixed(3), .fixed(32), .fixed(31)),
                                       NetOp.type([8, 3, 3, 3])],
                                ["pads": .ints([1, 1, 1, 1]), "strides": .ints([2, 2])])
        #expect(t == [NetOp.type(.symbolic("N"), .fixed(8), .fixed(16), .fixed(16))])
        // Unknown spatial dim stays unknown; others still computed.
        let u = try NetOp.infer(conv, [NetOp.type(.fixed(1), .fixed(3), .unknown, .fixed(9)), NetOp.type([4, 3, 3, 3])])
        #expect(u[0].shape == [.fixed(1), .fixed(4), .unknown, .fixed(7)])
        // Weight shape unknown: only the batch dim is known.
        let w = try NetOp.infer(conv, [NetOp.type([2, 3, 8, 8]), TensorType(dtype: .float32, shape: nil)])
        #expect(w[0].shape == [.fixed(2), .unknown, .unknown, .unknown])
    }

    @Test func convErrorsNameTheNode() throws {
        let x = NetOp.type([1, 4, 8, 8])
        let cases: [(TensorType, [String: Attribute], String)] = [
            (NetOp.type([6, 3, 3, 3]), [:], "input channels"),
            (NetOp.type([6, 2, 3, 3]), ["group": .int(3)], "input channels"),
            (NetOp.type([5, 2, 3, 3]), ["group": .int(2)], "divisible"),
            (NetOp.type([6, 4, 3, 3]), ["pads": .ints([1, 1])], "pads"),
            (NetOp.type([6, 4, 3, 3]), ["pads": .ints([-1, 0, 0, 0])], "negative"),
            (NetOp.type([6, 4, 3, 3]), ["kernel_shape": .ints([5, 5])], "kernel_shape"),
            (NetOp.type([6, 4, 3, 3]), ["strides": .ints([0, 1])], "strides"),
            (NetOp.type([6, 4, 3, 3]), ["auto_pad": .string("SAME")], "auto_pad"),
            (NetOp.type([6, 4, 9, 9]), [:], "larger than the padded input"),
            (NetOp.type([6, 4, 3]), [:], "rank"),
        ]
        for (w, attrs, fragment) in cases {
            let message = NetOp.graphError { try NetOp.infer(self.conv, [x, w], attrs) }
            #expect(message?.contains("node n") == true, "\(attrs): \(message ?? "no error")")
            #expect(message?.contains(fragment) == true, "\(attrs): \(message ?? "no error")")
        }
        let badBias = NetOp.graphError {
            try NetOp.infer(self.conv, [x, NetOp.type([6, 4, 3, 3]), NetOp.type([5])])
        }
        #expect(badBias?.contains("bias") == true)
    }

    @Test func convRejectsFloat16InTheKernel() throws {
        let x16 = Tensor(zeros: .float16, shape: [1, 1, 3])
        let message = NetOp.graphError { try NetOp.run(self.conv, [x16, Tensor(zeros: .float16, shape: [1, 1, 1])]) }
        #expect(message?.contains("float32 only") == true)
        // The shape rule accepts float16 and keeps the type.
        let t = try NetOp.infer(conv, [NetOp.type([1, 1, 3], dtype: .float16), NetOp.type([1, 1, 1], dtype: .float16)])
        #expect(t[0].dtype == .float16)
        // Integer inputs are not convolved.
        #expect(NetOp.graphError { try NetOp.infer(self.conv, [NetOp.type([1, 1, 3], dtype: .int64), NetOp.type([1, 1, 1])]) } != nil)
    }

    // MARK: ConvTranspose

    @Test func convTransposeStrideScattersTheKernel() throws {
        let x = NetOp.f([1, 2], [1, 1, 2])
        let w = NetOp.f([1, 1, 1], [1, 1, 3])
        // full = 2*(2-1) + 3 = 5: [1, 1, 1+2, 2, 2]
        #expect(NetOp.close(try NetOp.run(convT, [x, w], ["strides": .ints([2])]), [1, 1, 3, 2, 2]))
        // pads crop: [1, 0] removes the first element.
        #expect(NetOp.close(try NetOp.run(convT, [x, w], ["strides": .ints([2]), "pads": .ints([1, 0])]), [1, 3, 2, 2]))
        // output_padding adds a bias-only element at the end.
        let op = try NetOp.run(convT, [x, w, NetOp.f([10], [1])], ["strides": .ints([2]), "output_padding": .ints([1])])
        #expect(NetOp.close(op, [11, 11, 13, 12, 12, 10]))
        // Dilation 2 spreads the taps: positions 0,2,4 for x0 and 1,3,5 for x1 (stride 1).
        #expect(NetOp.close(try NetOp.run(convT, [x, w], ["dilations": .ints([2])]), [1, 2, 1, 2, 1, 2]))
    }

    @Test func convTransposeOutputShapeAndAutoPad() throws {
        let x = NetOp.f([1, 2, 3, 4], [1, 1, 4])
        let w = NetOp.f([1, 1, 1], [1, 1, 3])
        // full output [1, 1, 3, 2, 5, 3, 7, 4, 4]; one element of padding to remove.
        let upper = try NetOp.run(convT, [x, w], ["strides": .ints([2]), "output_shape": .ints([8]), "auto_pad": .string("SAME_UPPER")])
        #expect(NetOp.close(upper, [1, 1, 3, 2, 5, 3, 7, 4]))
        let notset = try NetOp.run(convT, [x, w], ["strides": .ints([2]), "output_shape": .ints([8])])
        #expect(NetOp.close(notset, [1, 3, 2, 5, 3, 7, 4, 4]))
        let lower = try NetOp.run(convT, [x, w], ["strides": .ints([2]), "auto_pad": .string("SAME_LOWER")])
        #expect(NetOp.close(lower, [1, 3, 2, 5, 3, 7, 4, 4]))
        let valid = try NetOp.run(convT, [x, w], ["strides": .ints([2]), "auto_pad": .string("VALID")])
        #expect(NetOp.close(valid, [1, 1, 3, 2, 5, 3, 7, 4, 4]))
        // output_shape may also be given with the N and C dims.
        let full = try NetOp.run(convT, [x, w], ["strides": .ints([2]), "output_shape": .ints([1, 1, 8])])
        #expect(full.shape == [1, 1, 8])
    }

    @Test func convTransposeGroupsMapChannels() throws {
        // group 2: channel 0 -> out 0 (x3), channel 1 -> out 1 (x4); W is (C, M/group, k).
        let x = NetOp.f([1, 2], [1, 2, 1])
        let w = NetOp.f([3, 4], [2, 1, 1])
        let y = try NetOp.run(convT, [x, w], ["group": .int(2)])
        #expect(y.shape == [1, 2, 1])
        #expect(NetOp.close(y, [3, 8]))
        // group 1, W (2, 1, 1): both channels sum into one output.
        let s = try NetOp.run(convT, [x, w])
        #expect(NetOp.close(s, [11]))
    }

    @Test func convTransposeShapeRule() throws {
        let t = try NetOp.infer(convT, [NetOp.type(.symbolic("B"), .fixed(4), .fixed(8), .fixed(8)), NetOp.type([4, 2, 4, 4])],
                                ["strides": .ints([2, 2]), "pads": .ints([1, 1, 1, 1]), "group": .int(2)])
        #expect(t == [NetOp.type(.symbolic("B"), .fixed(4), .fixed(16), .fixed(16))])
        // Non-constant weight with known shape is enough (the modulated conv case).
        let u = try NetOp.infer(convT, [NetOp.type([1, 512, 4, 4]), NetOp.type([512, 512, 3, 3])], ["strides": .ints([2, 2])])
        #expect(u[0].shape == [.fixed(1), .fixed(512), .fixed(9), .fixed(9)])
        let bad = NetOp.graphError { try NetOp.infer(self.convT, [NetOp.type([1, 3, 4, 4]), NetOp.type([4, 2, 3, 3])]) }
        #expect(bad?.contains("W dim 0") == true)
        let badShape = NetOp.graphError {
            try NetOp.infer(self.convT, [NetOp.type([1, 4, 4, 4]), NetOp.type([4, 2, 3, 3])], ["output_shape": .ints([8])])
        }
        #expect(badShape?.contains("output_shape") == true)
        let cropped = NetOp.graphError {
            try NetOp.infer(self.convT, [NetOp.type([1, 4, 1, 1]), NetOp.type([4, 2, 1, 1])], ["pads": .ints([1, 0, 0, 0])])
        }
        #expect(cropped?.contains("would be 0") == true)
    }
}
