import CKernels
import Foundation
import Testing
import MegaFSGraph
@testable import MegaFSRuntime

// The few-columns product C = A x B^T (CKernels/sgemm_nt.c) behind the streamed convs: every
// path this CPU has against float64 and against each other bit for bit, and a conv with few
// output columns taking it inside a model.

@Test func streamedProductPathsMatchFloat64AndEachOther() {
    var rng = Rng(95)
    let paths = Conv3x3Path.allCases.filter(\.isAvailable)
    #expect(paths.contains(.reference))
    for trial in 0..<30 {
        // Row counts around the 4-row block, odd column counts, k with and without a tail of 8.
        let m = [1, 3, 4, 5, 8, 11][trial % 6], n = [1, 2, 3, 5, 8][trial % 5]
        let k = [1, 7, 8, 9, 64, 100, 4608][trial % 7]
        let lda = k + trial % 3, ldbt = k + (trial + 1) % 2, ldc = n + trial % 2
        let a = (0..<(m * lda)).map { _ in rng.float() }
        let bt = (0..<(n * ldbt)).map { _ in rng.float() }
        // Rows [m0, m1): the caller splits rows among threads.
        let m0 = trial % 4 == 3 ? min(1, m - 1) : 0
        var outputs: [[Float]] = []
        for path in paths {
            var c = [Float](repeating: .nan, count: m * ldc)
            mfs_sgemm_nt(path.rawValue, a, lda, bt, ldbt, Int32(k), Int32(m0), Int32(m), Int32(n), &c, ldc)
            for r in m0..<m {
                for j in 0..<n {
                    var want = 0.0, magnitude = 0.0
                    for i in 0..<k {
                        want += Double(a[r * lda + i]) * Double(bt[j * ldbt + i])
                        magnitude += abs(Double(a[r * lda + i]) * Double(bt[j * ldbt + i]))
                    }
                    let got = Double(c[r * ldc + j])
                    #expect(abs(got - want) <= 1e-6 * magnitude + 1e-30, "trial \(trial) \(path) [\(r), \(j)]: \(got) vs \(want)")
                }
            }
            // Rows before m0 and the padding columns of c are not written.
            #expect(c.enumerated().allSatisfy { i, v in (i / ldc >= m0 && i % ldc < n) != v.isNaN }, "trial \(trial) \(path)")
            outputs.append(c)
        }
        for (i, c) in outputs.enumerated().dropFirst() {
            #expect(zip(c, outputs[0]).allSatisfy { $0.bitPattern == $1.bitPattern }, "trial \(trial): \(paths[i]) differs from \(paths[0])")
        }
    }
}

/// The encoder's small stride-2 convs: output columns (batch x pixels) at most
/// `ConvKernel.streamedMaxColumns` take the streamed product; `MEGAFS_CONV=im2col` semantics
/// (`.im2col`) keep sgemm. Both match the reference.
@Test func fewColumnConvsRunStreamedAndMatchTheReference() throws {
    var rng = Rng(96)
    var b = GraphBuilder()
    let x = b.input("x", rng.tensor([2, 13, 8, 8]))
    var y = b.node("Conv", [x, b.constant(rng.tensor([10, 13, 3, 3]), "w"), b.constant(rng.tensor([10]), "b")],
                   ["pads": .ints([1, 1, 1, 1]), "kernel_shape": .ints([3, 3]), "strides": .ints([2, 2])])
    y = b.node("LeakyRelu", [y], ["alpha": .float(0.01)])
    b.output(y)
    let s = try expectMatchesReference(b, "streamed conv + bias + leaky relu")
    let streamedNames = (s.lastPlanSummary?.kernels ?? []).map(\.name)
    // 2 x 4 x 4 = 32 columns: the rows product with AVX2 or AVX-512, the NT product on the reference path.
    let kernel = Conv3x3Path.best != .reference ? "conv(streamed-rows)" : "conv(streamed)"
    #expect(streamedNames.contains(kernel), "\(streamedNames)")
    let g = try expectMatchesReference(b, conv: .im2col, "batched conv + bias + leaky relu")
    let gemmNames = (g.lastPlanSummary?.kernels ?? []).map(\.name)
    #expect(gemmNames.contains("conv(batched)"), "\(gemmNames)")
}

/// Below `ConvKernel.streamedRowsMinColumns` columns (2 x 1 x 1) the NT product runs on every CPU.
@Test func twoColumnConvsKeepTheNTProduct() throws {
    var rng = Rng(98)
    var b = GraphBuilder()
    let x = b.input("x", rng.tensor([2, 40, 2, 2]))
    var y = b.node("Conv", [x, b.constant(rng.tensor([19, 40, 3, 3]), "w"), b.constant(rng.tensor([19]), "b")],
                   ["pads": .ints([1, 1, 1, 1]), "kernel_shape": .ints([3, 3]), "strides": .ints([2, 2])])
    y = b.node("LeakyRelu", [y], ["alpha": .float(0.01)])
    b.output(y)
    let s = try expectMatchesReference(b, "two-column streamed conv")
    let names = (s.lastPlanSummary?.kernels ?? []).map(\.name)
    #expect(names.contains("conv(streamed)"), "\(names)")
}

// The rows product y = W x (CKernels/convtaps.h, mfs_sgemm_rows): every path against float64
// and bit for bit against the others, over row counts around the 8-row block, column counts
// around the 16- and 32-column tiles (masked tails), k of one and several 64-channel passes.
@Test func rowsProductPathsMatchFloat64AndEachOther() {
    var rng = Rng(99)
    let paths = Conv3x3Path.allCases.filter(\.isAvailable)
    #expect(paths.contains(.reference))
    for trial in 0..<28 {
        let m = [1, 7, 8, 9, 17, 24, 13][trial % 7], n = [1, 5, 8, 16, 17, 32, 33, 47][trial % 8]
        let k = [1, 3, 64, 65, 200, 577][trial % 6]
        let ldx = n + trial % 3, ldy = n + (trial + 1) % 2
        let w = (0..<(m * k)).map { _ in rng.float() }
        let x = (0..<(k * ldx)).map { _ in rng.float() }
        // Rows [m0, m1): the caller splits rows among threads in blocks of 8.
        let m0 = trial % 4 == 3 && m > 8 ? 8 : 0
        var outputs: [[Float]] = []
        for path in paths {
            var y = [Float](repeating: .nan, count: m * ldy)
            mfs_sgemm_rows(path.rawValue, w, Int32(k), x, ldx, Int32(n), Int32(m0), Int32(m), &y, ldy)
            for r in m0..<m {
                for j in 0..<n {
                    var want = 0.0, magnitude = 0.0
                    for i in 0..<k {
                        want += Double(w[r * k + i]) * Double(x[i * ldx + j])
                        magnitude += abs(Double(w[r * k + i]) * Double(x[i * ldx + j]))
                    }
                    let got = Double(y[r * ldy + j])
                    #expect(abs(got - want) <= 1e-6 * magnitude + 1e-30, "trial \(trial) \(path) [\(r), \(j)]: \(got) vs \(want)")
                }
            }
            // Rows before m0 and the padding columns of y are not written.
            #expect(y.enumerated().allSatisfy { i, v in (i / ldy >= m0 && i % ldy < n) != v.isNaN }, "trial \(trial) \(path)")
            outputs.append(y)
        }
        for (i, y) in outputs.enumerated().dropFirst() {
            #expect(zip(y, outputs[0]).allSatisfy { $0.bitPattern == $1.bitPattern }, "trial \(trial): \(paths[i]) differs from \(paths[0])")
        }
    }
}

@Test func int8StreamedProductPathsMatchFloat64AndEachOther() {
    var rng = Rng(97)
    let paths = Conv3x3Path.allCases.filter(\.isAvailable)
    for trial in 0..<24 {
        let m = [1, 3, 4, 5, 8, 11][trial % 6], n = [1, 2, 3, 5, 8][trial % 5]
        let k = [1, 7, 8, 9, 64, 100, 4608][trial % 7]
        let lda = k + trial % 3, ldbt = k + (trial + 1) % 2, ldc = n + trial % 2
        let a = (0..<(m * lda)).map { _ in Int8(rng.int(-128...127)) }
        let bt = (0..<(n * ldbt)).map { _ in rng.float() }
        let perRow = trial % 4 != 0
        let scales = (0..<(perRow ? m : 1)).map { _ in rng.float() * 0.01 }
        let m0 = trial % 4 == 3 ? min(1, m - 1) : 0
        var outputs: [[Float]] = []
        for path in paths {
            var c = [Float](repeating: .nan, count: m * ldc)
            mfs_sgemm_nt_i8(path.rawValue, a, lda, scales, perRow ? 1 : 0, bt, ldbt, Int32(k), Int32(m0), Int32(m), Int32(n), &c, ldc)
            for r in m0..<m {
                let s = Double(scales[perRow ? r : 0])
                for j in 0..<n {
                    var want = 0.0, magnitude = 0.0
                    for i in 0..<k {
                        let p = Double(a[r * lda + i]) * Double(bt[j * ldbt + i])
                        want += p; magnitude += abs(p)
                    }
                    let got = Double(c[r * ldc + j])
                    #expect(abs(got - want * s) <= 1e-6 * magnitude * abs(s) + 1e-30, "trial \(trial) \(path) [\(r), \(j)]")
                }
            }
            #expect(c.enumerated().allSatisfy { i, v in (i / ldc >= m0 && i % ldc < n) != v.isNaN }, "trial \(trial) \(path)")
            outputs.append(c)
        }
        for (i, c) in outputs.enumerated().dropFirst() {
            #expect(zip(c, outputs[0]).allSatisfy { $0.bitPattern == $1.bitPattern }, "trial \(trial): \(paths[i]) differs from \(paths[0])")
        }
    }
}

/// Weight-only int8: a streamed conv whose weight is DequantizeLinear(int8, per-channel scales)
/// reads the int8 rows, and the DequantizeLinear does not run; both match the reference.
@Test func int8StreamedConvReadsItsInt8Weight() throws {
    var rng = Rng(98)
    for perChannel in [true, false] {
        var b = GraphBuilder()
        let x = b.input("x", rng.tensor([2, 13, 8, 8]))
        let q = b.constant(try (0..<(10 * 13 * 9)).map { _ in Int8(rng.int(-127...127)) }
            .withUnsafeBytes { try Tensor(dtype: .int8, shape: [10, 13, 3, 3], bytes: $0) }, "q")
        let scales = (0..<(perChannel ? 10 : 1)).map { _ in rng.float() * 0.02 + 0.001 }
        let w = b.node("DequantizeLinear", [q, b.constant(Tensor(scales, shape: perChannel ? [10] : []), "scale")], ["axis": .int(0)])
        var y = b.node("Conv", [x, w, b.constant(rng.tensor([10]), "b")],
                       ["pads": .ints([1, 1, 1, 1]), "kernel_shape": .ints([3, 3]), "strides": .ints([2, 2])])
        y = b.node("LeakyRelu", [y], ["alpha": .float(0.01)])
        b.output(y)
        let s = try expectMatchesReference(b, "int8 streamed conv, per channel \(perChannel)")
        let names = s.lastPlanSteps.map(\.kernel.kernelName)
        #expect(names.contains("conv(streamed)+int8"), "\(names)")
        #expect(!s.lastPlanSteps.contains { $0.node.opType == "DequantizeLinear" }, "\(names)")
    }
}

/// OpenBLAS's workers are restarted with a short spin timeout before the first GEMM (unless
/// the user set one), and GEMMs on 2 threads still give the reference loop's result after it.
@Test func openBLASWorkersAreQuietAndStillRight() throws {
    let gemm = OpenBLASGemm()
    gemm.setThreads(2)
    let timeout = getenv("OPENBLAS_THREAD_TIMEOUT").map { String(cString: $0) }
    if OpenBLASGemm.quietWorkers {
        #expect(timeout == "4")
    } else {
        // Only a value the user set (or a build without those symbols) leaves them as they are.
        #expect(timeout != nil || dlsym(nil, "blas_thread_shutdown_") == nil)
    }
    var rng = Rng(77)
    let m = 67, n = 301, k = 129   // large enough that OpenBLAS splits it over its threads
    let a = (0..<(m * k)).map { _ in rng.float() }, b = (0..<(k * n)).map { _ in rng.float() }
    var got = [Float](repeating: .nan, count: m * n), want = got
    gemm.sgemm(transA: false, transB: false, m: m, n: n, k: k, alpha: 1, a: a, lda: k, b: b, ldb: n, beta: 0, c: &got, ldc: n)
    ReferenceGemm().sgemm(transA: false, transB: false, m: m, n: n, k: k, alpha: 1, a: a, lda: k, b: b, ldb: n, beta: 0, c: &want, ldc: n)
    let worst = zip(got, want).map { abs($0 - $1) }.max() ?? .nan
    #expect(worst < 1e-3, "max abs error \(worst)")
}
