import CKernels
import Foundation
import Testing
import MegaFSGraph
@testable import MegaFSRuntime

// The im2col row builder (CKernels/im2col.c) against a plain loop, with the input plane ending
// at a page the process may not read, so any read past the last value used would crash the test.

/// `count` floats ending exactly at a PROT_NONE page; the guard mapping is released by `body`'s end.
private func withGuardedFloats(_ count: Int, _ body: (UnsafeMutablePointer<Float>) -> Void) {
    let page = Int(sysconf(Int32(_SC_PAGESIZE)))
    let bytes = ((count * 4 + page - 1) / page) * page
    let base = mmap(nil, bytes + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)!
    defer { munmap(base, bytes + page) }
    mprotect(base + bytes, page, PROT_NONE)
    body((base + bytes - count * 4).assumingMemoryBound(to: Float.self))
}

@Test func im2colRowsMatchAPlainLoopWithoutReadingPastThePlane() {
    var rng = Rng(4101)
    for trial in 0..<120 {
        let sw = [1, 2, 2, 2, 3][trial % 5], sh = [1, 2][trial % 2]
        let w = rng.int(1...70), h = rng.int(1...6)
        let offW = rng.int(-3...2), inRow0 = rng.int(-2...1)
        let rows = rng.int(1...4)
        // As many columns as the plane's row gives at this stride, give or take the padding.
        let ow = max(1, (w - 1 - min(0, offW)) / sw + rng.int(0...2))
        let scale: Float = trial % 3 == 0 ? 1 : rng.float() + 0.5
        let values = (0..<(h * w)).map { _ in rng.float() }
        var got = [Float](repeating: .nan, count: rows * ow)
        withGuardedFloats(h * w) { plane in
            for i in 0..<(h * w) { plane[i] = values[i] }
            mfs_im2col_row(plane, Int32(h), Int32(w), Int32(inRow0), Int32(sh), Int32(offW), Int32(sw), Int32(rows),
                           Int32(ow), scale, &got)
        }
        for r in 0..<rows {
            for j in 0..<ow {
                let ih = inRow0 + r * sh, iw = j * sw + offW
                let inside = ih >= 0 && ih < h && iw >= 0 && iw < w
                let want = inside ? (scale == 1 ? values[ih * w + iw] : values[ih * w + iw] * scale) : 0
                #expect(got[r * ow + j].bitPattern == want.bitPattern,
                        "trial \(trial) w\(w) sw\(sw) off\(offW) row \(r) col \(j): \(got[r * ow + j]) vs \(want)")
            }
        }
    }
}

/// The encoder's mapping convs in small: 3x3 stride 2 over rows wide enough for the vector path,
/// in bands (forced im2col) and over the merged batch (auto), against the reference.
@Test func wideStrideTwoConvsMatchTheReference() throws {
    var rng = Rng(4102)
    for (i, shape) in [(n: 2, c: 6, h: 9, w: 40), (n: 1, c: 5, h: 20, w: 33), (n: 2, c: 3, h: 7, w: 64)].enumerated() {
        var b = GraphBuilder()
        let x = b.input("x", rng.tensor([shape.n, shape.c, shape.h, shape.w]))
        let y = b.node("Conv", [x, b.constant(rng.tensor([4, shape.c, 3, 3]), "w"), b.constant(rng.tensor([4]), "b")],
                       ["pads": .ints([1, 1, 1, 1]), "kernel_shape": .ints([3, 3]), "strides": .ints([2, 2])])
        b.output(b.node("LeakyRelu", [y], ["alpha": .float(0.01)]))
        for algorithm in [ConvAlgorithm.auto, .im2col] {
            _ = try expectMatchesReference(b, conv: algorithm, "case \(i) \(algorithm)")
        }
    }
}

/// sgemm repacks the weight on every call, so a conv whose weight outweighs the band budget
/// gets GEMMs of up to 512 columns (both samples of the encoder's mapping convs in one), while
/// one with a light weight, or one the direct kernel takes, keeps the budget's bands.
@Test func heavyWeightConvsGetWideGemms() {
    func geometry(n: Int, cin: Int, cout: Int, h: Int, stride: Int) -> ConvGeometry {
        var g = ConvGeometry()
        g.n = n; g.cin = cin; g.cout = cout; g.h = h; g.w = h; g.kh = 3; g.kw = 3
        g.sh = stride; g.sw = stride; g.padTop = 1; g.padLeft = 1; g.padBottom = 1; g.padRight = 1
        g.oh = (h - 1) / stride + 1; g.ow = g.oh
        return g
    }
    let epilogue = ConvEpilogue()
    // 512->512 3x3 stride 2, 32x32 -> 16x16, two samples: 9.4 MB of weight, one 512-column GEMM.
    let mapping = ConvKernel(geometry: geometry(n: 2, cin: 512, cout: 512, h: 32, stride: 2), x: 0, w: 1, y: 2,
                             modulation: nil, epilogue: epilogue)
    #expect(mapping.mergesBatch && mapping.kernelName == "conv(batched)")
    // The same with a 1 MB weight (64 -> 256): bands within the 4 MB budget, one sample at a time.
    let light = ConvKernel(geometry: geometry(n: 2, cin: 64, cout: 256, h: 64, stride: 2), x: 0, w: 1, y: 2,
                           modulation: nil, epilogue: epilogue)
    #expect(!light.mergesBatch && light.colBytes <= im2colBudgetBytes)
    // 1024->512 stride 1 at 16x16 stays with the direct kernel.
    let fpn = ConvKernel(geometry: geometry(n: 2, cin: 1024, cout: 512, h: 16, stride: 1), x: 0, w: 1, y: 2,
                         modulation: nil, epilogue: epilogue)
    #expect(fpn.direct != nil && !fpn.mergesBatch)
}
