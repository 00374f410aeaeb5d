import Testing
@testable import MegaFSGraph

struct NetworkResizeTests {
    let resize = ResizeOperator.self
    let x = NetOp.f([1, 2, 3, 4], [4])

    func scales(_ v: Float...) -> Tensor { NetOp.f(v, [v.count]) }

    /// Opset 13+ input order: X, roi, scales, sizes.
    func run(_ x: Tensor, scales: Tensor? = nil, sizes: [Int64]? = nil, _ attrs: [String: Attribute] = [:], opset: Int = 17) throws -> Tensor {
        try NetOp.run(resize, [x, nil, scales, sizes.map(NetOp.i64)], attrs, opset: opset)
    }

    @Test func nearestRoundingModes() throws {
        let asym: [String: Attribute] = ["coordinate_transformation_mode": .string("asymmetric")]
        // x_original = o/2 = 0, .5, 1, 1.5, ...: ties go down by default, up with round_prefer_ceil.
        #expect(NetOp.close(try run(x, scales: scales(2), asym), [1, 1, 2, 2, 3, 3, 4, 4]))
        var ceilAttrs = asym
        ceilAttrs["nearest_mode"] = .string("round_prefer_ceil")
        #expect(NetOp.close(try run(x, scales: scales(2), ceilAttrs), [1, 2, 2, 3, 3, 4, 4, 4]))
        // Default half_pixel: (o+0.5)/2-0.5 = -0.25, 0.25, 0.75, 1.25, ... rounds to 0,0,1,1,...
        #expect(NetOp.close(try run(x, scales: scales(2)), [1, 1, 2, 2, 3, 3, 4, 4]))
        // floor / ceil with asymmetric x3 on two elements: o/3 = 0, .33, .67, 1, 1.33, 1.67
        let two = NetOp.f([1, 2], [2])
        var floorAttrs = asym
        floorAttrs["nearest_mode"] = .string("floor")
        #expect(NetOp.close(try run(two, scales: scales(3), floorAttrs), [1, 1, 1, 2, 2, 2]))
        floorAttrs["nearest_mode"] = .string("ceil")
        #expect(NetOp.close(try run(two, scales: scales(3), floorAttrs), [1, 2, 2, 2, 2, 2]))
    }

    @Test func tfHalfPixelForNearestOnlyBeforeOpset13() throws {
        let attrs: [String: Attribute] = ["coordinate_transformation_mode": .string("tf_half_pixel_for_nearest")]
        // (o+0.5)/2 = .25, .75, 1.25, ... -> 0, 1, 1, 2, 2, 3, 3, 4 (clamped to 3)
        let y = try NetOp.run(resize, [x, NetOp.f([], [0]), scales(2)], attrs, opset: 11)
        #expect(NetOp.close(y, [1, 2, 2, 3, 3, 4, 4, 4]))
        let message = NetOp.graphError { try self.run(self.x, scales: self.scales(2), attrs, opset: 13) }
        #expect(message?.contains("removed in opset 13") == true)
    }

    @Test func linearCoordinateModes() throws {
        let linear: [String: Attribute] = ["mode": .string("linear")]
        // half_pixel: x = (o+0.5)/2 - 0.5, clamped to [0, 3].
        #expect(NetOp.close(try run(x, scales: scales(2), linear), [1, 1.25, 1.75, 2.25, 2.75, 3.25, 3.75, 4]))
        var ac = linear
        ac["coordinate_transformation_mode"] = .string("align_corners")
        #expect(NetOp.close(try run(x, sizes: [7], ac), [1, 1.5, 2, 2.5, 3, 3.5, 4]))
        // align_corners to a single output picks the first element.
        #expect(NetOp.close(try run(x, sizes: [1], ac), [1]))
        var asym = linear
        asym["coordinate_transformation_mode"] = .string("asymmetric")
        #expect(NetOp.close(try run(x, scales: scales(2), asym), [1, 1.5, 2, 2.5, 3, 3.5, 4, 4]))
        // pytorch_half_pixel to one output uses coordinate 0; half_pixel uses the centre.
        var pt = linear
        pt["coordinate_transformation_mode"] = .string("pytorch_half_pixel")
        #expect(NetOp.close(try run(x, sizes: [1], pt), [1]))
        #expect(NetOp.close(try run(x, sizes: [1], linear), [2.5]))
    }

    @Test func scalesAndSizesDifferInTheCoordinateScale() throws {
        let x5 = NetOp.f([1, 2, 3, 4, 5], [5])
        let linear: [String: Attribute] = ["mode": .string("linear")]
        // scales 0.5: out = floor(2.5) = 2, coordinates use 1/0.5: 0.5, 2.5.
        #expect(NetOp.close(try run(x5, scales: scales(0.5), linear), [1.5, 3.5]))
        // sizes 2: the scale is 2/5, coordinates 0.75, 3.25.
        #expect(NetOp.close(try run(x5, sizes: [2], linear), [1.75, 4.25]))
    }

    @Test func bilinearOnTheLastTwoAxes() throws {
        // 2x2 -> 3x3 align_corners: the centre is the mean, edges the midpoints.
        let img = NetOp.f([0, 2, 4, 6], [1, 1, 2, 2])
        let y = try run(img, sizes: [1, 1, 3, 3], ["mode": .string("linear"), "coordinate_transformation_mode": .string("align_corners")])
        #expect(y.shape == [1, 1, 3, 3])
        #expect(NetOp.close(y, [0, 1, 2, 2, 3, 4, 4, 5, 6]))
    }

    @Test func cubicMatchesKnownWeights() throws {
        // At an integer coordinate the cubic kernel is exactly the sample; asymmetric x2 on
        // odd outputs lands half-way: (-a... ) weights (-0.09375, 0.59375, 0.59375, -0.09375) for a=-0.75.
        let y = try run(x, scales: scales(2), ["mode": .string("cubic"), "coordinate_transformation_mode": .string("asymmetric")])
        #expect(y.floats[0] == 1)
        #expect(y.floats[2] == 2)
        // o=3: x=1.5, taps 0..3 (1,2,3,4): 1.5 * (0.59375*2 - 0.09375*2) + ... = 2.5
        #expect(abs(y.floats[3] - 2.5) < 1e-6)
        // o=1: x=0.5, taps -1..2 clamp to (1,1,2,3): -0.09375 + 0.59375 + 1.1875 - 0.28125 = 1.40625
        #expect(abs(y.floats[1] - 1.40625) < 1e-6)
        // exclude_outside drops tap -1 and renormalises: (0.59375 + 1.1875 - 0.28125) / 1.09375
        let e = try run(x, scales: scales(2), ["mode": .string("cubic"), "coordinate_transformation_mode": .string("asymmetric"),
                                               "exclude_outside": .int(1)])
        #expect(abs(e.floats[1] - Float(1.5 / 1.09375)) < 1e-6)
    }

    @Test func tfCropAndResizeExtrapolates() throws {
        // roi [0.5, 1.5] of a 4-sample axis: coordinates 1.5, 3, 4.5 (outside -> extrapolation_value).
        let y = try NetOp.run(resize, [x, NetOp.f([0.5, 1.5], [2]), nil, NetOp.i64([3])],
                              ["mode": .string("linear"), "coordinate_transformation_mode": .string("tf_crop_and_resize"),
                               "extrapolation_value": .float(-9)])
        #expect(NetOp.close(y, [2.5, 4, -9]))
    }

    @Test func opset18AxesAndAspectPolicy() throws {
        let img = NetOp.f((1...12).map(Float.init), [1, 1, 3, 4])
        let y = try NetOp.run(resize, [img, nil, nil, NetOp.i64([6, 6])],
                              ["axes": .ints([2, 3]), "keep_aspect_ratio_policy": .string("not_larger")], opset: 18)
        // min(6/3, 6/4) = 1.5: 3x4 -> 5x6 (round(4.5) = 5).
        #expect(y.shape == [1, 1, 5, 6])
        let z = try NetOp.run(resize, [img, nil, nil, NetOp.i64([6, 6])],
                              ["axes": .ints([2, 3]), "keep_aspect_ratio_policy": .string("not_smaller")], opset: 18)
        #expect(z.shape == [1, 1, 6, 8])
        #expect(z.floats.prefix(8) == [1, 1, 2, 2, 3, 3, 4, 4])
        // Negative axes; the other axes keep their size.
        let w = try NetOp.run(resize, [img, nil, scales(2)], ["axes": .ints([-2])], opset: 18)
        #expect(w.shape == [1, 1, 6, 4])
    }

    @Test func opset10IsScalesOnly() throws {
        // Resize-10: (X, scales), asymmetric; nearest floors when upsampling, ceils when downsampling.
        let up = try NetOp.run(resize, [NetOp.f([1, 2], [2]), scales(2.5)], [:], opset: 10)
        #expect(NetOp.close(up, [1, 1, 1, 2, 2]))
        let down = try NetOp.run(resize, [NetOp.f([1, 2, 3, 4], [4]), scales(0.6)], [:], opset: 10)
        // floor(2.4) = 2 outputs at 0 and 1/0.6 = 1.67 -> ceil 2.
        #expect(NetOp.close(down, [1, 3]))
    }

    @Test func shapeRule() throws {
        let xt = NetOp.type(.symbolic("N"), .fixed(3), .unknown, .fixed(8))
        let s = try NetOp.infer(resize, [xt, nil, nil], constants: [nil, nil, scales(1, 1, 2, 2)])
        #expect(s[0].shape == [.symbolic("N"), .fixed(3), .unknown, .fixed(16)])
        let z = try NetOp.infer(resize, [xt, nil, nil, nil], constants: [nil, nil, nil, NetOp.i64([1, 3, 64, 64])])
        #expect(z[0].shape == [.fixed(1), .fixed(3), .fixed(64), .fixed(64)])
        // Sizes computed at run time: rank only.
        let u = try NetOp.infer(resize, [xt, nil, nil, NetOp.type([4], dtype: .int64)])
        #expect(u[0].shape == [.unknown, .unknown, .unknown, .unknown])
        // Opset 18 axes keep the other dims, symbolic or not.
        let a = try NetOp.infer(resize, [xt, nil, nil, nil], constants: [nil, nil, nil, NetOp.i64([32])], ["axes": .ints([3])], opset: 18)
        #expect(a[0].shape == [.symbolic("N"), .fixed(3), .unknown, .fixed(32)])
        // Opsets 11-12: empty scales next to sizes.
        let e = try NetOp.infer(resize, [NetOp.type([1, 2, 4, 4]), nil, nil, nil],
                                constants: [nil, NetOp.f([], [0]), NetOp.f([], [0]), NetOp.i64([1, 2, 3, 5])], opset: 11)
        #expect(e[0].shape == [.fixed(1), .fixed(2), .fixed(3), .fixed(5)])
    }

    @Test func errors() throws {
        let xt = NetOp.type([1, 1, 4, 4])
        let both = NetOp.graphError {
            try NetOp.infer(self.resize, [xt, nil, nil, nil], constants: [nil, nil, self.scales(1, 1, 2, 2), NetOp.i64([1, 1, 8, 8])])
        }
        #expect(both?.contains("only one") == true)
        let none = NetOp.graphError { try NetOp.infer(self.resize, [xt]) }
        #expect(none?.contains("neither") == true)
        let count = NetOp.graphError { try NetOp.infer(self.resize, [xt, nil, nil], constants: [nil, nil, self.scales(2, 2)]) }
        #expect(count?.contains("scales has 2 values") == true)
        let anti = NetOp.graphError {
            try NetOp.infer(self.resize, [xt, nil, nil], constants: [nil, nil, self.scales(1, 1, 0.5, 0.5)], ["antialias": .int(1)], opset: 18)
        }
        #expect(anti?.contains("antialias") == true)
        let mode = NetOp.graphError {
            try NetOp.infer(self.resize, [xt, nil, nil], constants: [nil, nil, self.scales(1, 1, 2, 2)], ["mode": .string("bilinear")])
        }
        #expect(mode?.contains("mode 'bilinear'") == true)
        let negative = NetOp.graphError { try self.run(self.x, scales: self.scales(-2)) }
        #expect(negative?.contains("positive") == true)
        let dup = NetOp.graphError {
            try NetOp.infer(self.resize, [xt, nil, nil], constants: [nil, nil, self.scales(2, 2)], ["axes": .ints([3, -1])], opset: 18)
        }
        #expect(dup?.contains("duplicates") == true)
        let half = NetOp.graphError { try self.run(Tensor(zeros: .float16, shape: [2]), scales: self.scales(2)) }
        #expect(half?.contains("float32 only") == true)
    }

    /// fuzz-onnx in CI, 2026-11-29: a scales initializer mutated to about 3e38 made
    /// floor(in * scale) overflow the conversion to Int during shape inference (a trap).
    @Test func scalesThatOverflowAnAxisAreAShapeError() throws {
        let xt = NetOp.type([1, 1, 4, 4])
        for huge: Float in [3e38, 1e12] {
            let message = NetOp.graphError {
                try NetOp.infer(self.resize, [xt, nil, nil], constants: [nil, nil, self.scales(1, 1, huge, 1)])
            }
            #expect(message?.contains("makes axis 2") == true, "scale \(huge): \(String(describing: message))")
        }
        for notFinite: Float in [.infinity, .nan] {
            let message = NetOp.graphError {
                try NetOp.infer(self.resize, [xt, nil, nil], constants: [nil, nil, self.scales(1, 1, notFinite, 1)])
            }
            #expect(message?.contains("positive and finite") == true, "scale \(notFinite): \(String(describing: message))")
        }
        // Just under the limit is still a valid (if enormous) shape: 4 * 2^32 = 2^34.
        let edge = try NetOp.infer(resize, [xt, nil, nil], constants: [nil, nil, scales(1, 1, 4_294_967_296, 1)])
        #expect(edge[0].shape == [.fixed(1), .fixed(1), .fixed(17_179_869_184), .fixed(4)])
    }
}
