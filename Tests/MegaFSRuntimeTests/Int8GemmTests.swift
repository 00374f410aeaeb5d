import Foundation
import Testing
import COpenBLAS
@testable import MegaFSRuntime

/// The integer GEMM kernels (Sources/CKernels/qgemm*.c) against plain Swift loops: every path
/// must give exactly the same int32 products (and the same float bits after the epilogue).
@Suite struct Int8GemmTests {
    static let sizes = [1, 3, 5, 17, 31, 33, 257]
    /// The paths this CPU runs (the reference always; AVX2 / VNNI when present).
    static let paths = Int8GemmPath.allCases.filter(\.isAvailable)

    /// Packing split over threads (row panels packed separately) gives the same bytes and row
    /// sums as one pass, for every path, with rows and k not multiples of the blocks.
    @Test func packingOverThreadsGivesTheSameBytes() {
        var seed: UInt64 = 0x5eed
        for path in Self.paths {
            for (m, k) in [(1, 1), (7, 5), (9, 33), (37, 300), (130, 1027)] {
                let a = (0..<(m * k)).map { _ -> Int8 in
                    seed = seed &* 6364136223846793005 &+ 1442695040888963407
                    return Int8(truncatingIfNeeded: seed >> 40)
                }
                let one = PackedInt8Weights(int8: a, m: m, k: k, path: path)
                let two = PackedInt8Weights(int8: a, m: m, k: k, path: path, threads: ThreadPartition(threads: 2))
                let four = PackedInt8Weights(int8: a, m: m, k: k, path: path, threads: ThreadPartition(threads: 4))
                #expect(one.byteCount == two.byteCount)
                #expect(memcmp(one.packed, two.packed, one.byteCount) == 0 && memcmp(one.packed, four.packed, one.byteCount) == 0,
                        "\(path) \(m)x\(k)")
                let sums = (0..<m).map { r in (0..<k).reduce(Int32(0)) { $0 + Int32(a[r * k + $1]) } }
                #expect(one.rowSums == sums && two.rowSums == sums && four.rowSums == sums, "\(path) \(m)x\(k)")
            }
        }
    }

    /// The reference and VNNI paths' weight layout, written out: panel i, k group g, row r holds
    /// the four bytes k = 4g..4g+3 of row 8i + r (zeros past K and past the last row). Full
    /// panels are packed by AVX2 code where the CPU has it, the rest by the scalar loop.
    @Test func fourByteGroupLayoutHoldsTheRowsBytes() {
        var seed: UInt64 = 0xfeed
        for path in Self.paths where path != .avx2 {
            for (m, k) in [(8, 32), (16, 64), (17, 37), (9, 300), (24, 1027), (3, 40)] {
                let a = (0..<(m * k)).map { _ -> Int8 in
                    seed = seed &* 6364136223846793005 &+ 1442695040888963407
                    return Int8(truncatingIfNeeded: seed >> 40)
                }
                let w = PackedInt8Weights(int8: a, m: m, k: k, path: path)
                let groups = (k + 3) / 4, panels = (m + 7) / 8
                #expect(w.byteCount == panels * groups * 8 * 4)
                let bytes = UnsafeRawBufferPointer(start: w.packed, count: w.byteCount)
                var mismatches = 0
                for i in 0..<panels {
                    for g in 0..<groups {
                        for r in 0..<8 {
                            for j in 0..<4 {
                                let row = 8 * i + r, col = 4 * g + j
                                let expected = row < m && col < k ? UInt8(bitPattern: a[row * k + col]) : 0
                                if bytes[((i * groups + g) * 8 + r) * 4 + j] != expected { mismatches += 1 }
                            }
                        }
                    }
                }
                #expect(mismatches == 0, "\(path) \(m)x\(k)")
                let sums = (0..<m).map { r in (0..<k).reduce(Int32(0)) { $0 + Int32(a[r * k + $1]) } }
                #expect(w.rowSums == sums, "\(path) \(m)x\(k)")
            }
        }
    }

    struct Problem {
        let m: Int, n: Int, k: Int
        let a: [Int8]   // [m, k]
        let b: [UInt8]  // [k, n]
        init(m: Int, n: Int, k: Int, seed: UInt64, aValues: ClosedRange<Int> = -128...127,
             bValues: ClosedRange<Int> = 0...255) {
            self.m = m; self.n = n; self.k = k
            var rng = Rng(seed)
            a = (0..<(m * k)).map { _ in Int8(rng.int(aValues)) }
            b = (0..<(k * n)).map { _ in UInt8(rng.int(bValues)) }
        }
        /// sum_k a[r][k] * b[k][c], in Int64 (checked to fit Int32).
        func reference() -> [Int32] {
            var c = [Int32](repeating: 0, count: m * n)
            var row = [Int64](repeating: 0, count: n)
            for r in 0..<m {
                for j in 0..<n { row[j] = 0 }
                for p in 0..<k {
                    let av = Int64(a[r * k + p])
                    if av == 0 { continue }
                    for j in 0..<n { row[j] += av * Int64(b[p * n + j]) }
                }
                for j in 0..<n { c[r * n + j] = Int32(row[j]) }
            }
            return c
        }
        func packedB() -> [UInt8] {
            var packed = [UInt8](repeating: 0xEE, count: Int8Gemm.packedActivationBytes(k: k, n: n))
            Int8Gemm.pack(bytes: b, k: k, n: n, ldx: n, pad: 128, into: &packed)
            return packed
        }
    }

    /// C of the kernels, computed as the given row x column pieces (each written once).
    static func compute(_ w: PackedInt8Weights, _ packed: [UInt8], n: Int,
                        rowCuts: [Int], columnCuts: [Int]) -> [Int32] {
        var c = [Int32](repeating: Int32.min, count: w.m * n)
        let rs = ([0] + rowCuts.filter { $0 > 0 && $0 < w.m } + [w.m])
        let cs = ([0] + columnCuts.filter { $0 > 0 && $0 < n } + [n])
        for i in 0..<(rs.count - 1) where rs[i] < rs[i + 1] {
            for j in 0..<(cs.count - 1) where cs[j] < cs[j + 1] {
                Int8Gemm.compute(w, packed, n: n, into: &c, ldc: n, rows: rs[i]..<rs[i + 1], columns: cs[j]..<cs[j + 1])
            }
        }
        return c
    }

    static func firstMismatch(_ got: [Int32], _ want: [Int32], n: Int) -> String? {
        guard let i = got.indices.first(where: { got[$0] != want[$0] }) else { return nil }
        let bad = zip(got, want).filter { $0 != $1 }.count
        return "\(bad) mismatches, first at [\(i / n), \(i % n)]: \(got[i]) vs \(want[i])"
    }

    @Test(arguments: paths)
    func exactOnOddShapes(path: Int8GemmPath) {
        var failures: [String] = []
        var seed: UInt64 = 1
        for m in Self.sizes {
            for n in Self.sizes {
                for k in [1, 5, 33, 257] {
                    seed += 1
                    let p = Problem(m: m, n: n, k: k, seed: seed)
                    let w = PackedInt8Weights(int8: p.a, m: m, k: k, path: path)
                    let c = Self.compute(w, p.packedB(), n: n, rowCuts: [], columnCuts: [])
                    if let e = Self.firstMismatch(c, p.reference(), n: n) { failures.append("\(path) m=\(m) n=\(n) k=\(k): \(e)") }
                }
            }
        }
        #expect(failures.isEmpty, "\(failures.prefix(5))")
    }

    /// Several K blocks (AVX2 blocks 768 k, VNNI 512), K not a multiple of 4, and outputs
    /// computed in pieces with cuts inside tiles.
    @Test(arguments: paths)
    func exactWithKBlocksAndSplits(path: Int8GemmPath) {
        let shapes = [(m: 37, n: 70, k: 1000), (m: 13, n: 129, k: 4099), (m: 64, n: 48, k: 2), (m: 9, n: 300, k: 1543)]
        for (i, s) in shapes.enumerated() {
            let p = Problem(m: s.m, n: s.n, k: s.k, seed: 100 + UInt64(i))
            let w = PackedInt8Weights(int8: p.a, m: s.m, k: s.k, path: path)
            let want = p.reference()
            let packed = p.packedB()
            let whole = Self.compute(w, packed, n: s.n, rowCuts: [], columnCuts: [])
            #expect(Self.firstMismatch(whole, want, n: s.n) == nil, "\(path) \(s) whole: \(Self.firstMismatch(whole, want, n: s.n) ?? "")")
            let pieces = Self.compute(w, packed, n: s.n, rowCuts: [3, 8, 16, 29], columnCuts: [5, 16, 40, 64, 67, 200])
            #expect(Self.firstMismatch(pieces, want, n: s.n) == nil, "\(path) \(s) pieces: \(Self.firstMismatch(pieces, want, n: s.n) ?? "")")
        }
    }

    /// The int32 bound of qgemm.h: K = 65536 with the extreme bytes does not overflow.
    @Test(arguments: paths)
    func extremeValuesAtMaximumK(path: Int8GemmPath) {
        let m = 3, n = 17, k = 65536
        var a = [Int8](repeating: -128, count: m * k)
        for i in 0..<k { a[k + i] = 127; a[2 * k + i] = i % 2 == 0 ? -128 : 127 }
        let b = [UInt8](repeating: 255, count: k * n)
        var packed = [UInt8](repeating: 0, count: Int8Gemm.packedActivationBytes(k: k, n: n))
        Int8Gemm.pack(bytes: b, k: k, n: n, ldx: n, pad: 0, into: &packed)
        let w = PackedInt8Weights(int8: a, m: m, k: k, path: path)
        var c = [Int32](repeating: 0, count: m * n)
        Int8Gemm.compute(w, packed, n: n, into: &c, ldc: n)
        #expect(c[0..<n].allSatisfy { $0 == -128 * 255 * 65536 })
        #expect(c[n..<(2 * n)].allSatisfy { $0 == 127 * 255 * 65536 })
        #expect(c[(2 * n)...].allSatisfy { $0 == -255 * 32768 })
        #expect(w.rowSums == [-128 * 65536, 127 * 65536, -32768])
    }

    @Test(.enabled(if: Int8GemmPath.avx512vnni.isAvailable, "this CPU has no AVX-512 VNNI: the vpdpbusd path is not run"))
    func vnniMatchesReference() {
        let p = Problem(m: 45, n: 99, k: 777, seed: 7)
        let w = PackedInt8Weights(int8: p.a, m: p.m, k: p.k, path: .avx512vnni)
        let c = Self.compute(w, p.packedB(), n: p.n, rowCuts: [8, 9, 30], columnCuts: [16, 20, 48, 95])
        #expect(Self.firstMismatch(c, p.reference(), n: p.n) == nil)
    }

    /// The float epilogue: (c - zp * rowSum) * (scale[m] * scaleB) (+ bias, fused) gives the
    /// same bits on every path as the same arithmetic in Swift.
    @Test(arguments: paths)
    func dequantizingEpilogueIsExact(path: Int8GemmPath) {
        for (i, s) in [(m: 31, n: 45, k: 257), (m: 20, n: 33, k: 3000), (m: 6, n: 16, k: 4)].enumerated() {
            let p = Problem(m: s.m, n: s.n, k: s.k, seed: 200 + UInt64(i), bValues: 1...255)
            var rng = Rng(300 + UInt64(i))
            let scales = (0..<s.m).map { _ in rng.float(0.001, 0.02) }
            let bias = (0..<s.m).map { _ in rng.float(-1, 1) }
            let scaleB: Float = 0.037
            let w = PackedInt8Weights(int8: p.a, m: s.m, k: s.k, scales: scales, path: path)
            let raw = p.reference()
            let packed = p.packedB()
            for withBias in [false, true] {
                var y = [Float](repeating: .nan, count: s.m * s.n)
                bias.withUnsafeBufferPointer { bp in
                    for cols in [0..<min(5, s.n), min(5, s.n)..<s.n] where !cols.isEmpty {
                        Int8Gemm.computeDequantized(w, packed, n: s.n, mode: .signed, scaleB: scaleB,
                                                    bias: withBias ? bp.baseAddress : nil, into: &y, ldy: s.n, columns: cols)
                    }
                }
                var bad = 0
                for r in 0..<s.m {
                    let sc = scales[r] * scaleB
                    for j in 0..<s.n {
                        let v = Float(raw[r * s.n + j] - 128 * w.rowSums[r])
                        let want = withBias ? bias[r].addingProduct(v, sc) : v * sc
                        if y[r * s.n + j].bitPattern != want.bitPattern { bad += 1 }
                    }
                }
                #expect(bad == 0, "\(path) \(s) bias=\(withBias): \(bad) values differ")
            }
        }
    }

    /// Quantize-pack: rounding half to even, clamping (NaN to the lower bound), the zero point,
    /// the padding, and the packed layout of qgemm.h, byte by byte (SIMD body and scalar edges).
    @Test func quantizePackRoundsClampsAndLaysOut() {
        let special: [Float] = [0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 126.5, 127.4, 127.6, 200, -200, .nan, .infinity,
                                -.infinity, -0.0, 3.4999998, -126.5, 254.5, 255.5, 300, -1, 0.49999997]
        for mode in [Int8ActivationMode.signed, .unsigned] {
            for (k, n) in [(8, 64), (7, 35), (1, 1), (13, 1030)] {
                var rng = Rng(UInt64(k * 1000 + n))
                let ldx = n + 3
                var x = (0..<(k * ldx)).map { _ in rng.float(-300, 300) }
                for i in 0..<min(x.count, 3 * special.count) where i % 3 == 0 { x[i] = special[i / 3] }
                let invScale: Float = 1
                let lo: Float = mode == .signed ? -127 : 0, hi: Float = mode == .signed ? 127 : 255
                let zp = Int(mode.zeroPoint)
                func expected(_ v: Float) -> UInt8 {
                    var t = v * invScale
                    t = t > lo ? t : lo
                    t = t < hi ? t : hi
                    return UInt8(Int(t.rounded(.toNearestOrEven)) + zp)
                }
                let kp = (k + 3) / 4 * 4, np = (n + 15) / 16 * 16
                var packed = [UInt8](repeating: 0xEE, count: Int8Gemm.packedActivationBytes(k: k, n: n))
                #expect(packed.count == kp * np)
                // two halves, as two threads would
                let cut = min(n, 16 * ((n / 16 + 1) / 2))
                for cols in [0..<cut, cut..<n] where !cols.isEmpty {
                    Int8Gemm.quantizePack(x, k: k, n: n, ldx: ldx, invScale: invScale, mode: mode, into: &packed, columns: cols)
                }
                var bad: [String] = []
                for kk in 0..<kp {
                    for j in 0..<np {
                        let index = (j / 16) * kp * 16 + (kk / 4) * 64 + (j % 16) * 4 + kk % 4
                        let want = (kk < k && j < n) ? expected(x[kk * ldx + j]) : UInt8(zp)
                        if packed[index] != want, bad.count < 5 {
                            bad.append("k=\(kk) n=\(j) x=\(kk < k && j < n ? x[kk * ldx + j] : 0): \(packed[index]) vs \(want)")
                        }
                    }
                }
                #expect(bad.isEmpty, "\(mode) k=\(k) n=\(n): \(bad)")
            }
        }
        // the documented cases, signed: q + 128
        let cases: [(Float, Int)] = [(0.5, 0), (1.5, 2), (2.5, 2), (-0.5, 0), (-1.5, -2), (126.5, 126), (127.6, 127),
                                     (200, 127), (-200, -127), (.nan, -127), (.infinity, 127), (-.infinity, -127)]
        var packed = [UInt8](repeating: 0, count: Int8Gemm.packedActivationBytes(k: 1, n: cases.count))
        Int8Gemm.quantizePack(cases.map(\.0), k: 1, n: cases.count, ldx: cases.count, invScale: 1, mode: .signed, into: &packed)
        #expect((0..<cases.count).map { Int(packed[$0 * 4]) - 128 } == cases.map(\.1))
    }

    @Test func absMaxIgnoresNaN() {
        var rng = Rng(5)
        var x = (0..<1037).map { _ in rng.float(-3, 3) }
        x[700] = -7.5; x[3] = .nan; x[1036] = .nan
        #expect(Int8Gemm.absMax(x, count: x.count) == 7.5)
        #expect(Int8Gemm.absMax(x, count: 5) == x[0..<5].filter { !$0.isNaN }.map(abs).max())
    }

    /// The whole dynamic step against a float GEMM: quantization error only (and the result
    /// must equal the kernels' exact arithmetic, checked through computeDequantized).
    @Test(arguments: paths)
    func dynamicGemmApproximatesFloatGemm(path: Int8GemmPath) {
        let m = 40, k = 300, n = 250
        var rng = Rng(11)
        let wf = (0..<(m * k)).map { _ in rng.float(-0.5, 0.5) }
        let x = (0..<(k * n)).map { _ in rng.float(-2, 2) }
        let bias = (0..<m).map { _ in rng.float(-1, 1) }
        let w = PackedInt8Weights(quantizing: wf, m: m, k: k, path: path)
        var want = [Float](repeating: 0, count: m * n)
        ReferenceGemm().sgemm(transA: false, transB: false, m: m, n: n, k: k, alpha: 1, a: wf, lda: k, b: x, ldb: n,
                              beta: 0, c: &want, ldc: n)
        for r in 0..<m { for j in 0..<n { want[r * n + j] += bias[r] } }
        var scratch = [UInt8](repeating: 0, count: Int8Gemm.packedActivationBytes(k: k, n: n))
        for threads in [1, 2] {
            var y = [Float](repeating: .nan, count: m * n)
            Int8Gemm.dynamicGemm(w, x: x, n: n, ldx: n, bias: bias, y: &y, ldy: n, scratch: &scratch,
                                 threads: ThreadPartition(threads: threads))
            var worst: Float = 0, norm: Float = 0
            for i in 0..<(m * n) { worst = max(worst, abs(y[i] - want[i])); norm = max(norm, abs(want[i])) }
            // per product: |dw| <= s_w/2, |dx| <= s_x/2; k terms => a loose bound of the sum
            let sw: Float = 0.5 / 127, sx: Float = 2 / 127
            let bound = Float(k) * (sw / 2 * 2 + sx / 2 * 0.5 + sw * sx / 4)
            #expect(worst <= bound && worst < 0.05 * norm, "\(path) threads=\(threads): max error \(worst), bound \(bound), max \(norm)")
        }
    }

    /// Opt-in: MEGAFS_QGEMM_BENCH=1. Single thread, GOPS = 2 M N K / time, best of 3, against
    /// OpenBLAS sgemm on the same shapes.
    @Test(.enabled(if: ProcessInfo.processInfo.environment["MEGAFS_QGEMM_BENCH"] == "1", "set MEGAFS_QGEMM_BENCH=1"))
    func benchmark() {
        openblas_set_num_threads(1)
        func seconds(_ body: () -> Void) -> Double {
            var best = Double.infinity
            for _ in 0..<3 {
                let t0 = DispatchTime.now().uptimeNanoseconds
                body()
                best = min(best, Double(DispatchTime.now().uptimeNanoseconds - t0) * 1e-9)
            }
            return best
        }
        for (m, k, n) in [(512, 4608, 1024), (512, 512, 4096), (64, 576, 65536)] {
            var rng = Rng(UInt64(m + k + n))
            let wf = (0..<(m * k)).map { _ in rng.float(-0.5, 0.5) }
            let x = (0..<(k * n)).map { _ in rng.float(-2, 2) }
            var y = [Float](repeating: 0, count: m * n)
            var c = [Int32](repeating: 0, count: m * n)
            var packed = [UInt8](repeating: 0, count: Int8Gemm.packedActivationBytes(k: k, n: n))
            let ops = 2.0 * Double(m) * Double(n) * Double(k)
            let tBlas = seconds {
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, blasint(m), blasint(n), blasint(k), 1, wf, blasint(k),
                            x, blasint(n), 0, &y, blasint(n))
            }
            var line = String(format: "qgemm M=%d K=%d N=%d: sgemm %.1f GFLOPS (%.1f ms)", m, k, n, ops / tBlas * 1e-9, tBlas * 1e3)
            let tPack = seconds {
                Int8Gemm.quantizePack(x, k: k, n: n, ldx: n, invScale: 50, mode: .signed, into: &packed)
            }
            line += String(format: " | quantize-pack %.1f ms", tPack * 1e3)
            for path in Self.paths {
                let w = PackedInt8Weights(quantizing: wf, m: m, k: k, path: path)
                if path == .reference && m * n * k > 1 << 30 { continue } // minutes at reference speed
                let tInt = seconds { Int8Gemm.compute(w, packed, n: n, into: &c, ldc: n) }
                let tF32 = seconds {
                    Int8Gemm.computeDequantized(w, packed, n: n, mode: .signed, scaleB: 0.02, bias: nil, into: &y, ldy: n)
                }
                line += " | \(path) " + String(format: "int32 %.1f GOPS (%.1f ms), f32 out %.1f GOPS",
                                                   ops / tInt * 1e-9, tInt * 1e3, ops / tF32 * 1e-9)
            }
            print(line)
        }
    }
}
