import CKernels

// The integer GEMM of the "dynamic int8" mode (issue #5): int8 weights (per output channel,
// symmetric) times activations quantized per call to bytes, exact int32 products, then a
// dequantizing epilogue. The kernels are in Sources/CKernels/qgemm*.c; `qgemm.h` documents
// the arithmetic and the packed layouts.

/// One implementation of the integer kernels (`mfs_qgemm_path`).
enum Int8GemmPath: Int32, CaseIterable, Sendable, CustomStringConvertible {
    /// Portable C (any CPU).
    case reference = 0
    /// AVX2 + FMA: int16 products by vpmaddwd.
    case avx2 = 1
    /// AVX-512 F/BW/VNNI: vpdpbusd.
    case avx512vnni = 2

    var isAvailable: Bool { mfs_qgemm_path_available(rawValue) != 0 }
    var description: String { String(cString: mfs_qgemm_path_name(rawValue)) }
    /// Rows per packed weight panel: row ranges split on multiples of it share no work.
    var rowBlock: Int { Int(mfs_qgemm_mr(rawValue)) }

    init?(name: String) {
        guard let p = Int8GemmPath.allCases.first(where: { $0.description == name }) else { return nil }
        self = p
    }

    /// The fastest path of this CPU, or the one `MEGAFS_QGEMM_PATH` (ref, avx2, avx512vnni)
    /// names when this CPU has it.
    static let best: Int8GemmPath = {
        if let env = getenv("MEGAFS_QGEMM_PATH").map({ String(cString: $0) }),
           let forced = Int8GemmPath(name: env), forced.isAvailable {
            return forced
        }
        return Int8GemmPath(rawValue: mfs_qgemm_best_path()) ?? .reference
    }()
}

/// How activations become bytes: signed q in [-127, 127] stored as q + 128, or unsigned q in
/// [0, 255] (for non-negative inputs such as ReLU outputs: twice the resolution).
enum Int8ActivationMode: Int32, Sendable {
    case signed = 0
    case unsigned = 1

    /// The byte standing for 0: the product's correction is `zeroPoint * rowSum[m]`.
    var zeroPoint: Int32 { mfs_qgemm_zero_point(rawValue) }
    /// The largest quantized magnitude (scale = absmax / qmax).
    var qmax: Float { self == .signed ? 127 : 255 }
}

/// Int8 weights [m, k] (row m = output channel) packed once for one kernel path, with their
/// row sums and per-row scales (weight[m][k] = int8[m][k] * scales[m]).
final class PackedInt8Weights: @unchecked Sendable {
    let m: Int, k: Int
    let path: Int8GemmPath
    /// sum over k of the int8 weights of each row.
    let rowSums: [Int32]
    /// Per-row dequantization scales (all 1 when none were given).
    let scales: [Float]
    let packed: UnsafeMutableRawPointer
    let byteCount: Int

    /// Packs `int8[r * lda + c]` for r < m, c < k. The path must be available.
    init(int8 weights: UnsafePointer<Int8>, m: Int, k: Int, lda: Int? = nil, scales: [Float]? = nil,
         path: Int8GemmPath = .best, threads: ThreadPartition = ThreadPartition(threads: 1)) {
        precondition(path.isAvailable, "int8 GEMM path \(path) is not available on this CPU")
        precondition(m >= 0 && k >= 0 && k <= 65536, "int8 GEMM: K must be at most 65536")
        precondition(scales == nil || scales!.count == m)
        self.m = m; self.k = k; self.path = path
        self.scales = scales ?? [Float](repeating: 1, count: m)
        byteCount = mfs_qgemm_packed_a_size(path.rawValue, Int32(m), Int32(k))
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: max(64, byteCount), alignment: 64)
        packed = buffer
        var sums = [Int32](repeating: 0, count: m)
        // Row panels on the session's threads: the encoder's 120 weights (200 MB) are packed when
        // its first plan is made, inside the first run.
        let mr = Int(mfs_qgemm_mr(path.rawValue)), panels = (m + mr - 1) / mr, ld = Int32(lda ?? k)
        sums.withUnsafeMutableBufferPointer { s in
            guard let sumsBase = s.baseAddress else { return }
            let rowSums = SendablePointer(sumsBase), src = UncheckedBox(weights)
            let out = SendablePointer(buffer.assumingMemoryBound(to: UInt8.self))
            threads.forRanges(panels, minPerThread: max(1, (1 << 16) / max(1, mr * k))) { r in
                mfs_qgemm_pack_a_panels(path.rawValue, Int32(m), Int32(k), src.value, ld, out.p, rowSums.p,
                                        Int32(r.lowerBound), Int32(r.upperBound))
            }
        }
        rowSums = sums
    }

    /// Quantizes float weights [m, k] per row, symmetric: scale = max|row| / 127 (1 for an
    /// all-zero row), q = round-half-even(w / scale) clamped to [-127, 127].
    convenience init(quantizing weights: UnsafePointer<Float>, m: Int, k: Int, lda: Int? = nil,
                     path: Int8GemmPath = .best) {
        let ld = lda ?? k
        var q = [Int8](repeating: 0, count: m * k)
        var scales = [Float](repeating: 1, count: m)
        for r in 0..<m {
            let row = weights + r * ld
            var amax: Float = 0
            for c in 0..<k { amax = max(amax, abs(row[c])) }
            let s: Float = amax > 0 && amax.isFinite ? amax / 127 : 1
            scales[r] = s
            for c in 0..<k {
                let v = row[c] / s
                q[r * k + c] = v.isNaN ? 0 : Int8(max(-127, min(127, v.rounded(.toNearestOrEven))))
            }
        }
        self.init(int8: q, m: m, k: k, lda: k, scales: scales, path: path)
    }

    deinit { packed.deallocate() }
}

/// The integer GEMM entry points. B is always [k, n] row-major floats (n the fast index), as
/// im2col produces it; C / y are [m, n] row-major with leading dimensions.
enum Int8Gemm {
    /// Columns per packed activation panel: column ranges split on multiples of it.
    static let columnBlock = 16

    /// Bytes of packed activations for a [k, n] matrix.
    static func packedActivationBytes(k: Int, n: Int) -> Int {
        mfs_qgemm_packed_b_size(Int32(k), Int32(n))
    }

    /// max |x| (NaN ignored).
    static func absMax(_ x: UnsafePointer<Float>, count: Int) -> Float {
        mfs_absmax_f32(x, count)
    }

    /// Quantizes `x[r * ldx + c]` (q = clamp(round-half-even(x * invScale)), see qgemm.h) into
    /// `packed`, for the column panels covering `columns` (lowerBound a multiple of 16).
    static func quantizePack(_ x: UnsafePointer<Float>, k: Int, n: Int, ldx: Int, invScale: Float,
                             mode: Int8ActivationMode, into packed: UnsafeMutablePointer<UInt8>,
                             columns: Range<Int>? = nil) {
        let cols = columns ?? 0..<n
        precondition(cols.lowerBound % columnBlock == 0 && cols.lowerBound >= 0 && cols.upperBound <= n)
        mfs_qgemm_quantize_pack_b(Int32(k), Int32(n), x, Int32(ldx), invScale, mode.rawValue, packed,
                                  Int32(cols.lowerBound), Int32(cols.upperBound))
    }

    /// Packs bytes that are already quantized (`pad` = the zero point).
    static func pack(bytes x: UnsafePointer<UInt8>, k: Int, n: Int, ldx: Int, pad: UInt8,
                     into packed: UnsafeMutablePointer<UInt8>, columns: Range<Int>? = nil) {
        let cols = columns ?? 0..<n
        precondition(cols.lowerBound % columnBlock == 0 && cols.lowerBound >= 0 && cols.upperBound <= n)
        mfs_qgemm_pack_b_u8(Int32(k), Int32(n), x, Int32(ldx), pad, packed,
                            Int32(cols.lowerBound), Int32(cols.upperBound))
    }

    /// c[r * ldc + j] = sum_k int8[r][k] * byte[k][j] (raw: subtract zeroPoint * rowSums[r]
    /// for the signed product) for r in `rows`, j in `columns`.
    static func compute(_ w: PackedInt8Weights, _ packed: UnsafePointer<UInt8>, n: Int,
                        into c: UnsafeMutablePointer<Int32>, ldc: Int,
                        rows: Range<Int>? = nil, columns: Range<Int>? = nil) {
        let r = rows ?? 0..<w.m, cols = columns ?? 0..<n
        let status = mfs_qgemm_compute(w.path.rawValue, Int32(w.m), Int32(n), Int32(w.k), w.packed, packed,
                                       c, Int32(ldc), Int32(r.lowerBound), Int32(r.upperBound),
                                       Int32(cols.lowerBound), Int32(cols.upperBound))
        precondition(status == 0, "mfs_qgemm_compute: bad arguments")
    }

    /// y[r * ldy + j] = (c - zeroPoint * rowSums[r]) * (scales[r] * scaleB) (+ bias[r], fused)
    /// for r in `rows`, j in `columns`: the dequantized product.
    static func computeDequantized(_ w: PackedInt8Weights, _ packed: UnsafePointer<UInt8>, n: Int,
                                   mode: Int8ActivationMode, scaleB: Float, bias: UnsafePointer<Float>?,
                                   into y: UnsafeMutablePointer<Float>, ldy: Int,
                                   rows: Range<Int>? = nil, columns: Range<Int>? = nil) {
        let r = rows ?? 0..<w.m, cols = columns ?? 0..<n
        let status = w.rowSums.withUnsafeBufferPointer { sums in
            w.scales.withUnsafeBufferPointer { sa in
                mfs_qgemm_compute_f32(w.path.rawValue, Int32(w.m), Int32(n), Int32(w.k), w.packed, packed,
                                      sums.baseAddress, mode.zeroPoint, sa.baseAddress, scaleB, bias,
                                      y, Int32(ldy), Int32(r.lowerBound), Int32(r.upperBound),
                                      Int32(cols.lowerBound), Int32(cols.upperBound))
            }
        }
        precondition(status == 0, "mfs_qgemm_compute_f32: bad arguments")
    }

    /// The whole dynamic step: y[m, n] = W x (+ bias) with x [k, n] floats quantized on the fly
    /// (one scale for the matrix: absmax / qmax). `scratch` holds packedActivationBytes(k:n:)
    /// bytes. Packing and product are split over `threads` (columns, or rows when n is small).
    static func dynamicGemm(_ w: PackedInt8Weights, x: UnsafePointer<Float>, n: Int, ldx: Int,
                            mode: Int8ActivationMode = .signed, bias: UnsafePointer<Float>?,
                            y: UnsafeMutablePointer<Float>, ldy: Int,
                            scratch: UnsafeMutablePointer<UInt8>, threads: ThreadPartition) {
        let k = w.k
        guard w.m > 0, n > 0 else { return }
        // absmax over the k rows of n columns (x may be a strided view).
        var amax: Float = 0
        if ldx == n { amax = absMax(x, count: k * n) } else {
            for r in 0..<k { amax = max(amax, absMax(x + r * ldx, count: n)) }
        }
        let scaleB: Float = amax > 0 && amax.isFinite ? amax / mode.qmax : 1
        let invScale: Float = 1 / scaleB
        let panels = (n + columnBlock - 1) / columnBlock
        let xs = UncheckedBox(x), ps = SendablePointer(scratch), ys = SendablePointer(y)
        let minPanels = max(1, 4096 / max(1, k))
        threads.forRanges(panels, minPerThread: minPanels) { pr in
            quantizePack(xs.value, k: k, n: n, ldx: ldx, invScale: invScale, mode: mode, into: ps.p,
                         columns: (pr.lowerBound * columnBlock)..<min(n, pr.upperBound * columnBlock))
        }
        let bs = UncheckedBox(bias)
        let work = w.m * n * max(1, k)
        let parts = min(threads.threads, max(1, work / (1 << 20)))
        if parts > 1 && panels >= parts {
            threads.forRanges(panels) { pr in
                computeDequantized(w, ps.p, n: n, mode: mode, scaleB: scaleB, bias: bs.value, into: ys.p, ldy: ldy,
                                   columns: (pr.lowerBound * columnBlock)..<min(n, pr.upperBound * columnBlock))
            }
        } else if parts > 1 {
            let block = w.path.rowBlock
            threads.forRanges((w.m + block - 1) / block) { rr in
                computeDequantized(w, ps.p, n: n, mode: mode, scaleB: scaleB, bias: bs.value, into: ys.p, ldy: ldy,
                                   rows: (rr.lowerBound * block)..<min(w.m, rr.upperBound * block))
            }
        } else {
            computeDequantized(w, ps.p, n: n, mode: mode, scaleB: scaleB, bias: bias, into: y, ldy: ldy)
        }
    }
}

#if canImport(Glibc)
import Glibc
#endif
