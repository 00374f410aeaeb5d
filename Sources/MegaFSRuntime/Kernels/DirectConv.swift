import CKernels
#if canImport(Glibc)
import Glibc
#endif

/// The direct 3x3 stride-1 convolution (CKernels/conv3x3.c): a zero-padded band of input rows
/// (scaled by the style when modulated) convolved in registers, with no im2col matrix. Used by
/// `ConvKernel` for the generator's and encoder's 3x3 convs where it beats im2col + GEMM.
enum Conv3x3Path: Int32, CaseIterable, CustomStringConvertible, Sendable {
    case reference = 0
    case avx2 = 1
    case avx512 = 2

    var description: String { String(cString: mfs_conv3x3_path_name(rawValue)) }
    var isAvailable: Bool { mfs_conv3x3_path_available(rawValue) != 0 }
    /// Output channels per register tile: threads split the channels in these blocks.
    var channelBlock: Int { self == .avx512 ? 8 : 4 }

    /// The fastest path of this CPU, or the one `MEGAFS_CONV3X3_PATH` (ref, avx2, avx512) names when
    /// this CPU has it.
    static let best: Conv3x3Path = {
        if let env = getenv("MEGAFS_CONV3X3_PATH").map({ String(cString: $0) }),
           let forced = Conv3x3Path.allCases.first(where: { $0.description == env }), forced.isAvailable {
            return forced
        }
        return Conv3x3Path(rawValue: mfs_conv3x3_best_path()) ?? .reference
    }()
}

/// How a convolution that could run either way is computed: `SessionOptions.convAlgorithm`,
/// else `MEGAFS_CONV` (auto, im2col, direct), else auto.
///
/// auto: Winograd or the direct kernel for 3x3 stride-1 convs (see `WinogradConvPlan`), the
/// direct transposed kernel for StyleGAN2's 3x3 stride-2 transposed convs from 16 input columns
/// (`DirectConvTransposePlan`) and GEMM + col2im below, im2col + sgemm for the rest. Measured
/// in the generator at 1024 px on the 2-core AVX2 VM, 2 threads, alternating processes
/// (2026-11-29): the direct 3x3 convs took 170-240 ms per 19.3-GFLOP layer (81-113 GFLOP/s)
/// against 170-357 ms for im2col + OpenBLAS, the widest gap at 32-128 channels x 256-1024 px,
/// where the GEMM is thin. direct: the direct kernels wherever they apply.
public enum ConvAlgorithm: String, Sendable, CaseIterable {
    case auto, im2col, direct
    /// Winograd for every 3x3 stride-1 conv (auto takes it for wide ones only), F(4x4, 3x3) on
    /// large outputs and F(2x2, 3x3) below (see `WinogradConvPlan.f4MinPixels`).
    case winograd
    /// Winograd F(4x4, 3x3) for every 3x3 stride-1 conv (`MEGAFS_CONV=winograd-f4`).
    case winogradF4 = "winograd-f4"

    static let environment: ConvAlgorithm = getenv("MEGAFS_CONV").flatMap { ConvAlgorithm(rawValue: String(cString: $0)) } ?? .auto
}

/// A direct 3x3 conv's band layout: `rows` output rows per band, each band's padded input
/// [cin][rows + 2][w + 2] in scratch.
struct DirectConvPlan {
    let rows: Int
    let paddedWidth: Int
    let bandBytes: Int
    let path: Conv3x3Path

    /// Bytes of padded input a band aims at, given the im2col band budget: a quarter of it
    /// (1 MB by default), small enough to stay in L2 while every block of four output
    /// channels sweeps it.
    static func bandBudget(im2colBudget: Int) -> Int { max(1, im2colBudget / 4) }

    /// auto leaves narrower outputs to im2col + sgemm.
    static let autoMinWidth = 16

    init?(_ g: ConvGeometry, algorithm: ConvAlgorithm, path: Conv3x3Path = .best,
          bandBudgetBytes: Int = bandBudget(im2colBudget: im2colBudgetBytes)) {
        guard g.kh == 3, g.kw == 3, g.sh == 1, g.sw == 1, g.dh == 1, g.dw == 1, g.groups == 1,
              g.padTop == 1, g.padLeft == 1, g.padBottom == 1, g.padRight == 1 else { return nil }
        switch algorithm {
        case .im2col, .winograd, .winogradF4: return nil
        case .direct: break
        case .auto:
            // Rows narrower than a 16-column tile run mostly on the scalar tail (the
            // generator's first conv at 4x4 took 25 ms there).
            guard g.ow >= Self.autoMinWidth else { return nil }    // see ConvAlgorithm
        }
        paddedWidth = g.w + 2
        let rowBytes = g.cin * paddedWidth * 4
        rows = max(1, min(g.oh, bandBudgetBytes / max(1, rowBytes) - 2))
        bandBytes = Planner.align(g.cin * (rows + 2) * paddedWidth * 4)
        channels = g.cin
        self.path = path
    }

    /// Bytes after the band for the halo row a conv writing over its input keeps (see `run`).
    var haloBytes: Int { Planner.align(channels * paddedWidth * 4) }
    /// Where the halo starts in the conv's scratch (right after the band).
    var haloOffset: Int { bandBytes }
    let channels: Int

    /// Output rows r0..<r0+rows of one sample: y (the sample's [cout][oh*ow]) from x (the
    /// sample's [cin][h*w]), channel c of x scaled by scale[c] when given.
    ///
    /// `halo` (cin x paddedWidth floats) is given when y is x's memory: the bands then run in
    /// order, each band's last input row is kept there (padded and scaled) before the band's
    /// output replaces it, and the next band takes its first row from there, not from x.
    func run(g: ConvGeometry, x: UnsafePointer<Float>, weight: UnsafePointer<Float>, scale: UnsafePointer<Float>?,
             y: UnsafeMutablePointer<Float>, r0: Int, rows: Int, band: UnsafeMutablePointer<Float>,
             halo: UnsafeMutablePointer<Float>? = nil, epilogue: mfs_conv_epilogue? = nil,
             threads: ThreadPartition) {
        let w = g.w
        fillPaddedBand(x: x, channels: g.cin, h: g.h, w: w, firstRow: r0 - 1, rows: rows + 2, scale: scale,
                       band: band, paddedWidth: paddedWidth, halo: halo, threads: threads)
        let wp = paddedWidth
        let block = path.channelBlock
        let blocks = (g.cout + block - 1) / block
        let yBand = y + r0 * g.ow
        let P = g.oh * g.ow
        threads.forRanges(blocks) { range in
            let co0 = range.lowerBound * block, co1 = min(g.cout, range.upperBound * block)
            if var e = epilogue {
                mfs_conv3x3s1(path.rawValue, band, Int32(g.cin), Int32(rows), Int32(w), Int32(wp),
                              weight, Int32(co0), Int32(co1), yBand, P, &e)
            } else {
                mfs_conv3x3s1(path.rawValue, band, Int32(g.cin), Int32(rows), Int32(w), Int32(wp),
                              weight, Int32(co0), Int32(co1), yBand, P, nil)
            }
        }
    }
}

/// Where the rows of a conv's input are when it is not a whole [channels][h][w] tensor: a
/// window of rows `firstRow...` per channel, `channelStride` floats apart (the upsampling
/// tail's band of the transposed conv's output, `UpsamplingTailKernel`).
struct BandSource {
    let channelStride: Int
    let firstRow: Int
}

/// Rows firstRow..<firstRow+rows of every channel of x ([channels][h][w]) into band
/// [channels][rows][paddedWidth], at column 1, zeros around (rows outside the input are all
/// zeros); channel c scaled by scale[c] when given (the style of a modulated conv).
///
/// With `halo` ([channels][paddedWidth]): band row 0 is copied from halo[c] instead when
/// firstRow > 0 (x no longer holds that row), and band row rows - 2 (the last row the band's
/// output replaces, and the next band's first row) is then kept in halo[c].
///
/// With `source`, x holds only some rows of each plane (see `BandSource`); rows outside 0..<h
/// are still the zero padding.
func fillPaddedBand(x: UnsafePointer<Float>, channels: Int, h: Int, w: Int, firstRow: Int, rows: Int,
                    scale: UnsafePointer<Float>?, band: UnsafeMutablePointer<Float>, paddedWidth wp: Int,
                    halo: UnsafeMutablePointer<Float>? = nil, source: BandSource? = nil, threads: ThreadPartition) {
    let plane = rows * wp
    let channelStride = source?.channelStride ?? h * w, rowBase = source?.firstRow ?? 0
    threads.forEach(channels, minPerThread: max(1, 8192 / plane)) { c in
        let s = scale?[c] ?? 1
        let src = x + c * channelStride - rowBase * w
        for j in 0..<rows {
            let dst = band + c * plane + j * wp
            let ih = firstRow + j
            if ih < 0 || ih >= h { dst.initialize(repeating: 0, count: wp); continue }
            if j == 0, let halo {
                dst.update(from: halo + c * wp, count: wp)
                continue
            }
            dst[0] = 0
            (dst + w + 1).initialize(repeating: 0, count: wp - w - 1)
            let srow = src + ih * w
            if s == 1 { (dst + 1).update(from: srow, count: w) }
            else { for i in 0..<w { dst[1 + i] = srow[i] * s } }
        }
        if let halo, rows >= 3 {
            (halo + c * wp).update(from: band + c * plane + (rows - 2) * wp, count: wp)
        }
    }
}
