import CKernels
import Testing
import MegaFSGraph
@testable import MegaFSRuntime

// The few-row product C = A x B (CKernels/sgemm_smallm.c) behind the generator's ToRGB convs:
// every path this CPU has against float64 and against each other bit for bit, and pointwise
// convs with few output channels taking it inside a model.

@Test func smallRowProductPathsMatchFloat64AndEachOther() {
    var rng = Rng(97)
    let paths = Conv3x3Path.allCases.filter(\.isAvailable)
    #expect(paths.contains(.reference))
    for trial in 0..<24 {
        // 1-4 rows; k around the 4-row step of B; column ranges around the 16-, 8- and
        // 512-column blocks, not starting at 0 (the caller splits columns among threads).
        let m = trial % 4 + 1
        let k = [1, 3, 4, 5, 32, 67][trial % 6]
        let j1 = [17, 40, 513, 1100][trial % 4], j0 = trial % 3 == 2 ? 5 : 0
        let ldb = j1 + trial % 2, ldc = j1 + 3
        let a = (0..<(m * k)).map { _ in rng.float() }
        let b = (0..<(k * ldb)).map { _ in rng.float() }
        var outputs: [[Float]] = []
        for path in paths {
            var c = [Float](repeating: .nan, count: m * ldc)
            mfs_sgemm_small_m(path.rawValue, Int32(m), Int32(k), a, b, ldb, Int32(j0), Int32(j1), &c, ldc)
            for i in 0..<m {
                for j in j0..<j1 {
                    var want = 0.0, magnitude = 0.0
                    for kk in 0..<k {
                        want += Double(a[i * k + kk]) * Double(b[kk * ldb + j])
                        magnitude += abs(Double(a[i * k + kk]) * Double(b[kk * ldb + j]))
                    }
                    let got = Double(c[i * ldc + j])
                    #expect(abs(got - want) <= 1e-6 * magnitude + 1e-30, "trial \(trial) \(path) [\(i), \(j)]: \(got) vs \(want)")
                }
            }
            // Columns outside [j0, j1) are not written.
            #expect(c.enumerated().allSatisfy { idx, v in (idx % ldc >= j0 && idx % ldc < j1) != v.isNaN }, "trial \(trial) \(path)")
            outputs.append(c)
        }
        for (i, c) in outputs.enumerated().dropFirst() {
            #expect(zip(c, outputs[0]).allSatisfy { $0.bitPattern == $1.bitPattern }, "trial \(trial): \(paths[i]) differs from \(paths[0])")
        }
    }
}

/// A 1x1 conv with 3 output channels (ToRGB's shape, with a bias) and one with 5 take their
/// kernels, and both match the reference.
@Test func fewChannelPointwiseConvsRunTheRowProductAndMatchTheReference() throws {
    var rng = Rng(98)
    for (cout, kernel) in [(3, "conv(pointwise-rows)"), (5, "conv(pointwise)")] {
        var b = GraphBuilder()
        let x = b.input("x", rng.tensor([1, 37, 19, 23]))
        b.output(b.node("Conv", [x, b.constant(rng.tensor([cout, 37, 1, 1]), "w"), b.constant(rng.tensor([cout]), "b")],
                        ["kernel_shape": .ints([1, 1])]))
        let s = try expectMatchesReference(b, "1x1 conv to \(cout) channels")
        let names = (s.lastPlanSummary?.kernels ?? []).map(\.name)
        #expect(names.contains(kernel), "\(cout) channels: \(names)")
    }
}

/// More output columns than one block of the pointwise loop (87381 for 3 channels): every
/// block's epilogue (bias, residual) lands on its own columns. A 1024-px ToRGB has 12 blocks.
@Test func pointwiseConvOverSeveralColumnBlocksMatchesTheReference() throws {
    var rng = Rng(99)
    for (cout, kernel) in [(3, "conv(pointwise-rows)"), (5, "conv(pointwise)")] {
        var b = GraphBuilder()
        let x = b.input("x", rng.tensor([1, 4, 300, 310]))
        var y = b.node("Conv", [x, b.constant(rng.tensor([cout, 4, 1, 1]), "w"), b.constant(rng.tensor([cout]), "b")],
                       ["kernel_shape": .ints([1, 1])])
        y = b.node("Add", [y, b.input("residual", rng.tensor([1, cout, 300, 310]))])
        b.output(y)
        let s = try expectMatchesReference(b, "1x1 conv to \(cout) channels over 93000 columns")
        let names = (s.lastPlanSummary?.kernels ?? []).map(\.name)
        #expect(names.contains(kernel), "\(cout) channels: \(names)")
    }
}
