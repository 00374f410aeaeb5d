import Testing
@testable import MegaFSRuntime

// The separable blur (CKernels/blur.c): which kernels take it, and that it gives the 2-D
// filter's result on planes with every padding the generator and odd sizes use.

@Test func styleGANBlurKernelIsSeparableAndRandomKernelsAreNot() {
    let a: [Float] = [1, 3, 3, 1]
    let blur: [Float] = (0..<16).map { (i: Int) -> Float in a[i / 4] * a[i % 4] / 16 }
    let filter = SeparableFilter(blur, kh: 4, kw: 4)
    #expect(filter != nil)
    if let f = filter {
        for i in 0..<4 { for j in 0..<4 { #expect(abs(f.column[i] * f.row[j] - blur[i * 4 + j]) <= 1e-7) } }
    }
    var rng = Rng(77)
    let random = (0..<16).map { _ in rng.float() }
    #expect(SeparableFilter(random, kh: 4, kw: 4) == nil)
    #expect(SeparableFilter([Float](repeating: 0, count: 9), kh: 3, kw: 3) == nil)
    #expect(SeparableFilter([2], kh: 1, kw: 1) == nil)
}

/// The largest difference between the separable filter (its rows in two ranges, as the
/// kernels' threads call it) and the 2-D filter on a random plane; NaN when a pixel is not written.
private func separableAgainstTwoDimensional(col: [Float], row: [Float], up: Int, h: Int, w: Int, pads: [Int],
                                            rng: inout Rng) -> Float? {
    let kernel = col.flatMap { c in row.map { c * $0 } }
    var g = UpFirDnGeometry()
    g.up = up; g.kh = col.count; g.kw = row.count; g.h = h; g.w = w
    g.padTop = pads[0]; g.padLeft = pads[1]; g.padBottom = pads[2]; g.padRight = pads[3]
    let x = (0..<h * w).map { _ in rng.float() }
    guard let filter = SeparableFilter(kernel, kh: g.kh, kw: g.kw) else { return nil }
    var want = [Float](repeating: .nan, count: g.oh * g.ow)
    var got = [Float](repeating: .nan, count: g.oh * g.ow)
    x.withUnsafeBufferPointer { xb in
        kernel.withUnsafeBufferPointer { kb in
            want.withUnsafeMutableBufferPointer { upfirdnPlane(xb.baseAddress!, $0.baseAddress!, kb.baseAddress!, g) }
            got.withUnsafeMutableBufferPointer {
                upfirdnRows(xb.baseAddress!, $0.baseAddress!, kb.baseAddress!, g, rows: 0..<(g.oh / 2), separable: filter)
                upfirdnRows(xb.baseAddress!, $0.baseAddress!, kb.baseAddress!, g, rows: (g.oh / 2)..<g.oh, separable: filter)
            }
        }
    }
    return zip(got, want).map { abs($0 - $1) }.max() ?? .nan
}

@Test func separableBlurMatchesTheTwoDimensionalFilter() {
    var rng = Rng(78)
    let a: [Float] = [1, 3, 3, 1]
    let b: [Float] = [0.5, -1, 2]
    // (kernel column, kernel row, h, w, pads top/left/bottom/right)
    let cases: [([Float], [Float], Int, Int, [Int])] = [
        (a, a, 9, 11, [1, 1, 1, 1]), (a, a, 8, 8, [2, 1, 2, 1]), (a, b, 5, 13, [0, 2, 1, 0]), (b, a, 1, 6, [1, 1, 2, 2]),
    ]
    for (col, row, h, w, pads) in cases {
        let worst = separableAgainstTwoDimensional(col: col, row: row, up: 1, h: h, w: w, pads: pads, rng: &rng)
        #expect(worst != nil && worst! <= 1e-5, "\(col) x \(row) on \(h)x\(w) pads \(pads): worst \(String(describing: worst))")
    }
}

/// With upsampling (zeros inserted between input rows and columns first): the per-phase row
/// pass gives the 2-D filter's result, for StyleGAN2's 2x upsampling pads, odd sizes, up to 3
/// and pads that reach past the plane on either side.
@Test func separableUpsamplingMatchesTheTwoDimensionalFilter() {
    var rng = Rng(79)
    let a: [Float] = [1, 3, 3, 1].map { $0 / 4 }
    let b: [Float] = [0.5, -1, 2]
    // (kernel column, kernel row, up, h, w, pads top/left/bottom/right)
    let cases: [([Float], [Float], Int, Int, Int, [Int])] = [
        (a, a, 2, 8, 8, [2, 2, 1, 1]), (a, a, 2, 5, 13, [2, 2, 1, 1]), (a, b, 2, 3, 7, [0, 3, 2, 0]),
        (b, a, 3, 4, 5, [1, 0, 0, 4]), (a, a, 2, 1, 1, [2, 2, 1, 1]), (b, b, 2, 6, 9, [4, 1, 3, 5]),
    ]
    for (col, row, up, h, w, pads) in cases {
        let worst = separableAgainstTwoDimensional(col: col, row: row, up: up, h: h, w: w, pads: pads, rng: &rng)
        #expect(worst != nil && worst! <= 1e-5, "\(col) x \(row) up \(up) on \(h)x\(w) pads \(pads): worst \(String(describing: worst))")
    }
}
