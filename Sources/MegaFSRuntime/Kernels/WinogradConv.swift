import CKernels
import MegaFSGraph

/// Winograd F(2x2, 3x3) or F(4x4, 3x3) for a 3x3 stride-1 conv (CKernels/winograd.c): per band
/// of tile rows, the zero-padded input band (scaled by the style when modulated) is transformed
/// into 16 (36) matrices V[k] [cin x tiles], multiplied by the transformed weight U[k]
/// [cout x cin] with our rows product (`mfs_sgemm_rows`), and the products transformed back to 2x2 (4x4) output tiles. 2.25x
/// (4x) fewer multiplies than the direct conv, in GEMMs as wide as the channel counts: it pays
/// where both are wide.
struct WinogradConvPlan {
    /// Output tile side: 2 or 4.
    let tile: Int
    /// Input patch side (tile + 2) and the number of GEMMs (its square).
    var patch: Int { tile + 2 }
    var products: Int { patch * patch }
    /// Tile rows per band (the last band may have fewer), tiles per row.
    let tileRows: Int
    let tilesWide: Int
    let paddedWidth: Int
    let channelsIn: Int, channelsOut: Int
    let bandBytes: Int, haloBytes: Int, weightBytes: Int, inputBytes: Int, productBytes: Int
    /// The code path of the products (the transforms pick theirs when the program loads).
    let path: Conv3x3Path
    /// U is made into the scratch on every run (`transformWeights`), not held by the caller:
    /// exactly when the scratch has room for it.
    var transformsWeightsEveryCall: Bool { weightBytes > 0 }

    /// Output rows per band.
    var rows: Int { tile * tileRows }
    var name: String { "winograd-f\(tile)" }

    /// Outputs from this many pixels take F(4x4, 3x3), smaller ones F(2x2, 3x3). F4's 36 GEMMs
    /// have a quarter of F2's columns each, too thin for sgemm below that. In the 1024 generator
    /// (Zen 4, 2 threads, `--profile`, three alternations of the bound): F4 took 49-56 ms
    /// against about 85 ms with F2 at 256x256 x 128 channels, 52-55 against 66-68 ms at
    /// 128x128 x 256, but 71-73 against 67-70 ms at 64x64 x 512 (and 31 against 21.5 ms at
    /// 32x32 x 512, single-conv model). Its drift against PyTorch on the whole generator: max abs
    /// 1.14e-5 against 1.00e-5 with F2 only.
    static let f4MinPixels = 128 * 128
    /// Wide convs (both channel counts from `f4WideMinChannels`) take F(4x4, 3x3) from this many
    /// pixels, transforming their weight on every call (`transformsWeightsEveryCall`). Since the
    /// products run on our rows product, F4 wins there too: the 1024 generator's 512-channel
    /// conv at 64x64 took 33 ms against 57-59 with F2, at 32x32 9.3-9.8 against 15.8-19 (both
    /// with U held; `MEGAFS_CONV=winograd-f4` against auto, `--profile`, two alternations,
    /// Zen 4, 2026-12-01); at 32x32 the transform on every call would eat that gain.
    static let f4WideMinPixels = 64 * 64
    static let f4WideMinChannels = 256
    var haloOffset: Int { bandBytes }
    var weightOffset: Int { bandBytes + haloBytes }
    var inputOffset: Int { weightOffset + weightBytes }
    var productOffset: Int { inputOffset + inputBytes }
    var scratchBytes: Int { productOffset + productBytes }

    /// auto takes Winograd when both channel counts are at least `autoMinChannels`, the
    /// output has at least `autoMinPixels` and cin x cout is at most `autoMaxChannelProduct`
    /// (see ConvAlgorithm): below those pixels the per-run weight transform (16 x cout x cin
    /// floats) costs more than the multiplies it saves, and above that product its scratch
    /// (34-67 MB for the encoder's wider FPN convs, where it saved nothing measurable) would
    /// set the arena.
    ///
    /// The AVX-512 direct kernel moves the pixel bound up: at 16x16 it took 3.1 ms against 4.4
    /// for Winograd on the encoder's 256-channel convs and 5.9 against 11.0 ms on the
    /// generator's 512-channel one; from 32x32 Winograd stays ahead (21.8 against 25.1 ms at
    /// 512 channels) or even (3.2 ms both at 128). (AMD EPYC Zen 4, 2 threads, 2026-11-30.)
    ///
    /// With the transform of a constant weight done once, F(4x4) from 128x128 up and the output
    /// transforms in vector lanes, Winograd also beat the AVX-512 direct kernel on the
    /// generator's 32- and 64-channel convs: 92-101 against 134-143 ms at 1024 px x 32 and
    /// 67-74 against 114-121 ms at 512 px x 64 (whole generator 695-735 against 786-820 ms,
    /// three alternations); on the encoder's 64-channel convs at 64x64 it came out even. Hence
    /// 32 channels. The same holds on AVX2 against its weaker direct kernel: the whole generator
    /// 868-992 against 1139-1168 ms (median of 5 runs, four alternations) and 310 against 408 MB
    /// of peak RSS (no direct-kernel bands); the encoder's 64-channel convs at 64x64 2.5-4.4
    /// against 3.6-4.9 ms (AMD EPYC Zen 3, AVX2 only, 2 threads, 2026-12-01).
    ///
    /// A constant weight's U is made once at planning (`weightsInScratch: false`), and its band
    /// scratch stays within the budget whatever the channels: then Winograd also wins below
    /// 32x32 and above 512 x 512 channels. Encoder batch 2 (Zen 4, 2 threads, `--profile`):
    /// the FPN's 1024->512 conv at 16x16 11.5-11.8 against 23-28.7 ms (direct), its 2048->512
    /// conv at 8x8 6.4-7.6 against 15.0 ms (im2col + sgemm), the 256-channel convs at 16x16
    /// 1.8-3.1 against 2.95-3.1 ms: the whole encoder 367-389 against 392-402 ms. Generator
    /// 1024, 512 channels: 3.6 against 6.0 ms (direct) at 16x16, 1.35-1.4 against 2.4 ms
    /// (im2col) at 8x8, even at 4x4. U is 16/9 of the weight: held beside it, this cost the
    /// encoder 116 MB of peak RSS, hence `HeldWeights` (the session gives the weight back).
    static let autoMinChannels = 32
    static var autoMinPixels: Int { Conv3x3Path.best == .avx512 ? 1024 : 256 }
    static var autoMinPixelsConstantWeight: Int { Conv3x3Path.best == .avx512 ? 64 : 256 }
    static let autoMaxChannelProduct = 512 * 512

    /// Bytes of V and M a band aims at, given the im2col band budget (8 MB by default): wide
    /// enough GEMMs, small enough scratch.
    static func bandBudget(im2colBudget: Int) -> Int { max(1, 2 * im2colBudget) }

    /// `weightsInScratch`: U is computed into the scratch on every run (`transformWeights`);
    /// false when the caller can hold it (`transformedWeights`, for a constant weight), which
    /// auto's wide F4 below `f4MinPixels` still overrides (`transformsWeightsEveryCall`).
    init?(_ g: ConvGeometry, algorithm: ConvAlgorithm, bandBudgetBytes: Int = bandBudget(im2colBudget: im2colBudgetBytes),
          weightsInScratch: Bool = true, tile forcedTile: Int? = nil, path: Conv3x3Path = .best) {
        guard g.kh == 3, g.kw == 3, g.sh == 1, g.sw == 1, g.dh == 1, g.dw == 1, g.groups == 1,
              g.padTop == 1, g.padLeft == 1, g.padBottom == 1, g.padRight == 1 else { return nil }
        switch algorithm {
        case .im2col, .direct: return nil
        case .auto:
            let minPixels = weightsInScratch ? Self.autoMinPixels : Self.autoMinPixelsConstantWeight
            guard g.cin >= Self.autoMinChannels, g.cout >= Self.autoMinChannels, g.oh * g.ow >= minPixels,
                  !weightsInScratch || g.cin * g.cout <= Self.autoMaxChannelProduct else { return nil }
        case .winograd, .winogradF4: break
        }
        let pixels = g.oh * g.ow
        // Auto's F4 for wide convs below 128x128 makes U on every call: held, an F4 U (4x its
        // weight: 38 MB for 512 x 512 channels) would have grown a whole swap's peak RSS by 21 MB
        // per such conv (F2's U is 16.8 MB, the weight the session then keeps 9.4 MB). The
        // transform costs about 5 ms at 512 x 512 on two threads: the 1024 generator's conv at
        // 64x64 took 41-45 ms so, 36-42 with U held, 54-59 with F2 (three alternations).
        let wideBelowF4 = forcedTile == nil && algorithm != .winogradF4 && pixels < Self.f4MinPixels
            && pixels >= Self.f4WideMinPixels && min(g.cin, g.cout) >= Self.f4WideMinChannels
            && g.cin * g.cout <= Self.autoMaxChannelProduct
        let tile = forcedTile ?? (algorithm == .winogradF4 || pixels >= Self.f4MinPixels || wideBelowF4 ? 4 : 2)
        self.tile = tile
        self.path = path
        let k = (tile + 2) * (tile + 2)
        channelsIn = g.cin; channelsOut = g.cout
        tilesWide = (g.ow + tile - 1) / tile
        let tileRowsTotal = (g.oh + tile - 1) / tile
        let rowBytes = k * (g.cin + g.cout) * 4 * tilesWide
        let most = max(1, min(tileRowsTotal, bandBudgetBytes / max(1, rowBytes)))
        let bands = (tileRowsTotal + most - 1) / most
        tileRows = (tileRowsTotal + bands - 1) / bands
        paddedWidth = tile * tilesWide + 2
        bandBytes = Planner.align(g.cin * (tile * tileRows + 2) * paddedWidth * 4)
        haloBytes = Planner.align(g.cin * paddedWidth * 4)
        weightBytes = weightsInScratch || wideBelowF4 ? Planner.align(k * g.cout * g.cin * 4) : 0
        inputBytes = Planner.align(k * g.cin * Self.rowStride(tiles: tileRows * tilesWide) * 4)
        productBytes = Planner.align(k * g.cout * Self.rowStride(tiles: tileRows * tilesWide) * 4)
    }

    /// The row stride of V and M for a band of `tiles`: an odd number of cache lines, so that
    /// the rows a GEMM tile reads in turn fall in different cache sets.
    static func rowStride(tiles: Int) -> Int {
        return ((tiles + 15) / 16 | 1) * 16
    }

    /// U from the weight [cout][cin][3][3], into scratch + weightOffset (once per run).
    func transformWeights(_ weight: UnsafePointer<Float>, scratch: UnsafeMutablePointer<Float>, threads: ThreadPartition) {
        transformWeights(weight, into: scratch + weightOffset / 4, threads: threads)
    }

    /// U of a constant float32 weight, computed once (for a plan made with `weightsInScratch: false`).
    func transformedWeights(_ weight: Tensor, threads: ThreadPartition = ThreadPartition(threads: 1)) -> TensorStorage {
        precondition(weight.dtype == .float32, "Winograd weight of \(weight.dtype.name)")
        let u = TensorStorage(uninitializedByteCount: products * channelsOut * channelsIn * 4)   // all written below
        transformWeights(UnsafePointer(weight.storage.pointer.assumingMemoryBound(to: Float.self)),
                         into: u.pointer.assumingMemoryBound(to: Float.self), threads: threads)
        return u
    }

    private func transformWeights(_ weight: UnsafePointer<Float>, into u: UnsafeMutablePointer<Float>, threads: ThreadPartition) {
        let cin = Int32(channelsIn), cout = Int32(channelsOut)
        let transform = tile == 4 ? mfs_winograd_f4_weights : mfs_winograd_f2_weights
        threads.forRanges(channelsOut, minPerThread: max(1, 4096 / channelsIn)) { r in
            transform(weight, cin, cout, Int32(r.lowerBound), Int32(r.upperBound), u)
        }
    }

    /// Output rows r0..<r0+rows of one sample, as `DirectConvPlan.run` (same `halo` contract);
    /// the weight transformed by `transformWeights` into the same scratch, or `weights` (U) when given.
    /// With `source`, x is a window of the input's rows (see `BandSource`); with `band`, the rows
    /// go to band.pointer (row r0 first), its channels band.channelStride floats apart, not into y.
    func run(g: ConvGeometry, x: UnsafePointer<Float>, scale: UnsafePointer<Float>?, y: UnsafeMutablePointer<Float>,
             r0: Int, rows: Int, scratch: UnsafeMutablePointer<Float>, weights: UnsafePointer<Float>? = nil, overInput: Bool,
             source: BandSource? = nil, band out: (pointer: UnsafeMutablePointer<Float>, channelStride: Int)? = nil,
             threads: ThreadPartition) {
        let tb = (rows + tile - 1) / tile, tw = tilesWide, wp = paddedWidth
        let tiles = tb * tw, ld = Self.rowStride(tiles: tiles)
        let band = scratch, u = weights ?? UnsafePointer(scratch + weightOffset / 4)
        let v = scratch + inputOffset / 4, m = scratch + productOffset / 4
        fillPaddedBand(x: x, channels: g.cin, h: g.h, w: g.w, firstRow: r0 - 1, rows: tile * tb + 2, scale: scale,
                       band: band, paddedWidth: wp, halo: overInput ? scratch + haloOffset / 4 : nil, source: source,
                       threads: threads)
        let cin = g.cin, cout = g.cout
        let inputTransform = tile == 4 ? mfs_winograd_f4_input : mfs_winograd_f2_input
        let outputTransform = tile == 4 ? mfs_winograd_f4_output : mfs_winograd_f2_output
        threads.forRanges(cin, minPerThread: max(1, 4096 / tiles)) { r in
            inputTransform(band, Int32(cin), Int32(r.lowerBound), Int32(r.upperBound), Int32(tb), Int32(tw), Int32(wp), v, ld)
        }
        // The products on our rows product (8 rows of U x 32 tiles per register tile, all of cin
        // per tile), reading V and writing M in place: sgemm packed V and zeroed M first for
        // every one of them, which cost as much as its multiplies at 32-64 channels.
        let blocks = (cout + 7) / 8, path = self.path.rawValue, vIn = UnsafePointer(v), mOut = SendablePointer(m)
        threads.forRanges(products * blocks) { r in
            var i = r.lowerBound
            while i < r.upperBound {
                let k = i / blocks, b0 = i % blocks, b1 = min(blocks, b0 + (r.upperBound - i))
                mfs_sgemm_rows(path, u + k * cout * cin, Int32(cin), vIn + k * cin * ld, ld, Int32(tiles),
                               Int32(b0 * 8), Int32(min(cout, b1 * 8)), mOut.p + k * cout * ld, ld)
                i += b1 - b0
            }
        }
        let yBand = out?.pointer ?? y + r0 * g.ow, P = out?.channelStride ?? g.oh * g.ow, ow = g.ow
        threads.forRanges(cout, minPerThread: max(1, 4096 / tiles)) { r in
            outputTransform(m, ld, Int32(cout), Int32(r.lowerBound), Int32(r.upperBound), Int32(tb), Int32(tw), Int32(rows),
                            Int32(ow), yBand, P)
        }
    }
}
