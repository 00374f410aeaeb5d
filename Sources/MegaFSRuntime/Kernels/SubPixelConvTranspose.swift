import CKernels
import MegaFSGraph

/// StyleGAN2's upsampling conv, ConvTranspose 3x3 with stride 2 and no padding (output 2H+1),
/// as its four sub-pixel phases: output pixel (2i+py, 2j+px) only meets the taps kh = py (+2),
/// kw = px (+2), so each phase is a direct stride-1 conv of the input with 4, 2, 2 or 1 taps
/// (CKernels/convtaps.c). The same 9 multiply-adds per input pixel and output channel as
/// GEMM + col2im, without the 9 x Cout column matrix and its strided scatter-add.
struct SubPixelConvTransposePlan {
    struct Phase {
        let py: Int, px: Int
        /// Tap offsets in the padded band (row 1 - dy, column 1 - dx for input pixel (i - dy, j - dx)).
        let offsets: [Int32]
        /// Where this phase's [cout][cin][taps] weights start in `packed`.
        let weightOffset: Int
        var taps: Int { offsets.count }
    }

    let phases: [Phase]
    /// Phase rows (0..<H+1) per band.
    let rows: Int
    /// Columns computed per phase row (W + 1 rounded up to 8), and the band's padded width.
    let paddedColumns: Int
    let paddedWidth: Int
    let bandBytes: Int
    let phaseOutputBytes: Int
    let packed: [Float]
    let path: Conv3x3Path
    var scratchBytes: Int { bandBytes + phaseOutputBytes }

    /// Bytes of padded input a band aims at (as `DirectConvPlan`).
    static let bandBudgetBytes = 1 << 20

    /// `weight`: the constant [Cin, Cout, 3, 3] weight; evaluated only when the geometry and
    /// the algorithm choose this path (dequantizing an int8 weight is not free).
    init?(_ g: ConvGeometry, weight: @autoclosure () -> Tensor?, algorithm: ConvAlgorithm,
          path: Conv3x3Path = .best) {
        guard g.kh == 3, g.kw == 3, g.sh == 2, g.sw == 2, g.dh == 1, g.dw == 1, g.groups == 1,
              g.padTop == 0, g.padLeft == 0, g.padBottom == 0, g.padRight == 0,
              g.oh == 2 * g.h + 1, g.ow == 2 * g.w + 1 else { return nil }
        switch algorithm {
        case .auto, .im2col, .winograd, .winogradF4: return nil    // see ConvAlgorithm
        case .direct: break
        }
        guard let weight = weight(), weight.dtype == .float32, weight.shape == [g.cin, g.cout, 3, 3] else { return nil }
        // Phase rows are computed in whole 8-column tiles (W + 1 = 9, 17, 33 ... would
        // otherwise leave one column per row to the scalar tail, which cost as much as the
        // vector part at 8-32 px); the extra columns read zero padding and are dropped.
        paddedColumns = (g.w + 1 + 7) / 8 * 8
        paddedWidth = paddedColumns + 1
        let wp = paddedWidth
        var phases: [Phase] = []
        var packed: [Float] = []
        packed.reserveCapacity(g.cout * g.cin * 9)
        let w = weight.floats
        for py in 0..<2 {
            for px in 0..<2 {
                var taps: [(kh: Int, kw: Int)] = []
                for kh in stride(from: py, to: 3, by: 2) { for kw in stride(from: px, to: 3, by: 2) { taps.append((kh, kw)) } }
                let offsets = taps.map { Int32((1 - ($0.kh - py) / 2) * wp + (1 - ($0.kw - px) / 2)) }
                phases.append(Phase(py: py, px: px, offsets: offsets, weightOffset: packed.count))
                for co in 0..<g.cout {
                    for ci in 0..<g.cin {
                        for t in taps { packed.append(w[((ci * g.cout + co) * 3 + t.kh) * 3 + t.kw]) }
                    }
                }
            }
        }
        self.phases = phases
        self.packed = packed
        let rowBytes = g.cin * wp * 4
        rows = max(1, min(g.h + 1, Self.bandBudgetBytes / max(1, rowBytes) - 1))
        bandBytes = Planner.align(g.cin * (rows + 1) * wp * 4)
        phaseOutputBytes = Planner.align(4 * g.cout * rows * paddedColumns * 4)
        self.path = path
    }

    /// One sample: out ([cout][2H+1][2W+1]) from x ([cin][H][W]), channel c of x scaled by
    /// scale[c] when given. Writes every output pixel.
    func run(g: ConvGeometry, x: UnsafePointer<Float>, scale: UnsafePointer<Float>?, out: UnsafeMutablePointer<Float>,
             scratch: UnsafeMutablePointer<Float>, threads: ThreadPartition) {
        let wp = paddedWidth, ow = g.ow
        let band = scratch
        let phaseOut = scratch + bandBytes / 4
        let phaseCols = paddedColumns
        let phaseStride = g.cout * rows * phaseCols
        let block = path.channelBlock
        let blocks = (g.cout + block - 1) / block
        var r0 = 0
        packed.withUnsafeBufferPointer { pk in
            let weights = pk.baseAddress!
            while r0 < g.h + 1 {
                let bandRows = min(rows, g.h + 1 - r0)
                // Phase row i reads input rows i - 1 and i: padded band row 0 is input row r0 - 1.
                fillPaddedBand(x: x, channels: g.cin, h: g.h, w: g.w, firstRow: r0 - 1, rows: bandRows + 1, scale: scale,
                               band: band, paddedWidth: wp, threads: threads)
                let plane = (bandRows + 1) * wp
                let start = r0
                threads.forRanges(blocks) { range in
                    let co0 = range.lowerBound * block, co1 = min(g.cout, range.upperBound * block)
                    for (p, phase) in phases.enumerated() {
                        // Odd phases have H rows and W columns; even ones H + 1.
                        let n = min(bandRows, g.h + 1 - phase.py - start)
                        let cols = (g.w + 1 - phase.px + 7) / 8 * 8
                        guard n > 0 else { continue }
                        phase.offsets.withUnsafeBufferPointer { off in
                            mfs_conv_taps(path.rawValue, band, Int32(g.cin), plane, Int32(wp), Int32(n), Int32(cols),
                                          weights + phase.weightOffset, Int32(phase.taps), off.baseAddress!,
                                          Int32(co0), Int32(co1), phaseOut + p * phaseStride, rows * phaseCols, phaseCols)
                        }
                    }
                }
                // Interleave the phases into the output rows 2 * r0 ..< 2 * (r0 + bandRows).
                threads.forEach(g.cout, minPerThread: max(1, 4096 / max(1, bandRows * ow))) { co in
                    for (p, phase) in phases.enumerated() {
                        let n = min(bandRows, g.h + 1 - phase.py - start)
                        let cols = g.w + 1 - phase.px
                        guard n > 0 else { continue }
                        let src = phaseOut + p * phaseStride + co * rows * phaseCols
                        for r in 0..<n {
                            let dst = out + (co * g.oh + 2 * (start + r) + phase.py) * ow + phase.px
                            let s = src + r * phaseCols
                            for j in 0..<cols { dst[2 * j] = s[j] }
                        }
                    }
                }
                r0 += bandRows
            }
        }
    }
}
