import CKernels
import MegaFSGraph

/// StyleGAN2's upsampling conv, ConvTranspose 3x3 with stride 2 and no padding (output 2H+1),
/// on the direct kernel (CKernels/convtranspose.h): input columns in vector lanes, the nine taps
/// summed over all input channels in registers and added straight into the output rows. Each
/// thread owns a range of output channels from the weight packing through the blur and the
/// epilogue, so a sample takes one dispatch, no column matrix and no col2im. Measured against
/// GEMM + col2im in the generator (2 threads, AVX-512): see `minWidth`.
struct DirectConvTransposePlan {
    let path: Conv3x3Path
    /// Input rows per step of the blur window.
    let bandRows: Int
    /// Rows per channel of the window that holds the conv's output until the blur has read it.
    let windowRows: Int
    /// Packed weights ([cout][cin][9], modulated) and the window ([cout][windowRows][2W+1]).
    let packedBytes: Int, windowBytes: Int
    var scratchBytes: Int { packedBytes + windowBytes }

    /// Auto takes this kernel from this input width up (narrower rows leave vector lanes idle).
    static let minWidth = 16
    static let bandRows = 4

    init?(_ g: ConvGeometry, blur: UpFirDnGeometry?, algorithm: ConvAlgorithm, path: Conv3x3Path = .best) {
        guard g.kh == 3, g.kw == 3, g.sh == 2, g.sw == 2, g.dh == 1, g.dw == 1, g.groups == 1,
              g.padTop == 0, g.padLeft == 0, g.padBottom == 0, g.padRight == 0,
              g.oh == 2 * g.h + 1, g.ow == 2 * g.w + 1 else { return nil }
        switch algorithm {
        case .im2col, .winograd, .winogradF4: return nil
        case .direct: break
        case .auto: guard g.w >= Self.minWidth else { return nil }
        }
        if let blur { guard blur.up == 1, blur.h == g.oh, blur.w == g.ow else { return nil } }
        self.path = path
        let bandRows = min(g.h, Self.bandRows)
        self.bandRows = bandRows
        windowRows = blur.map { min(g.oh, BlurWindow.rows(conv: g, blur: $0, bandRows: bandRows)) } ?? 0
        packedBytes = Planner.align(g.cout * g.cin * 9 * 4)
        windowBytes = Planner.align(g.cout * windowRows * g.ow * 4)
    }

    /// One sample, output channels `channels` (one thread's): y ([cout][oh][ow], or the blurred
    /// [cout][boh][bow]) from x ([cin][H][W]) and the ONNX weight [cin][cout][3][3] (with
    /// `weightOutIn`, [cout][cin][3][3]), input channel ci scaled by scale[ci] when given.
    /// `finish(c, rows)` applies the epilogue to output rows `rows` of channel c once they are written.
    func run(g: ConvGeometry, x: UnsafePointer<Float>, weight: UnsafePointer<Float>, weightOutIn: Bool = false,
             scale: UnsafePointer<Float>?,
             blur: (geometry: UpFirDnGeometry, kernel: UnsafePointer<Float>, separable: SeparableFilter?)?,
             y: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>, channels: Range<Int>,
             finish: (Int, Range<Int>) -> Void) {
        pack(g: g, weight: weight, weightOutIn: weightOutIn, scale: scale, scratch: scratch, channels: channels)
        guard let blur else {
            let plane = g.oh * g.ow
            for c in channels {
                (y + c * plane).initialize(repeating: 0, count: plane)
            }
            mfs_convt3x3s2_rows(path.rawValue, x, Int32(g.cin), g.h * g.w, Int32(g.w), scratch, g.cin * 9,
                                Int32(channels.lowerBound), Int32(channels.upperBound), 0, Int32(g.h), y, plane, 0)
            for c in channels { finish(c, 0..<g.oh) }
            return
        }
        clearWindow(g: g, scratch: scratch, channels: channels)
        let finalP = blur.geometry.oh * blur.geometry.ow
        var slide = BlurWindow(conv: g, blur: blur.geometry)
        var r0 = 0
        while r0 < g.h {
            let r1 = min(g.h, r0 + bandRows)
            let step = slide.advance(afterInputRows: r1)
            blurredRows(g: g, x: x, inputRows: r0..<r1, step: step, blur: blur, out: y, outChannelStride: finalP,
                        scratch: scratch, channels: channels, finish: finish)
            r0 = r1
        }
    }

    /// The weights of output channels `channels` (input channel ci scaled by scale[ci]) into the
    /// scratch's packed area, as `blurredRows` reads them.
    func pack(g: ConvGeometry, weight: UnsafePointer<Float>, weightOutIn: Bool, scale: UnsafePointer<Float>?,
              scratch: UnsafeMutablePointer<Float>, channels: Range<Int>) {
        let cin = g.cin, cout = g.cout
        for co in channels {
            let dst = scratch + co * cin * 9
            for ci in 0..<cin {
                let s = scale?[ci] ?? 1, src = weight + (weightOutIn ? co * cin + ci : ci * cout + co) * 9, d = dst + ci * 9
                for k in 0..<9 { d[k] = src[k] * s }
            }
        }
    }

    /// Zeroes the blur window of channels `channels`, before their first band.
    func clearWindow(g: ConvGeometry, scratch: UnsafeMutablePointer<Float>, channels: Range<Int>) {
        let window = scratch + packedBytes / 4, planeStride = windowRows * g.ow
        for c in channels {
            (window + c * planeStride).initialize(repeating: 0, count: planeStride)
        }
    }

    /// One band of input rows (`step` is the window's advance past them, taken in band order):
    /// the conv's rows into the window, the blurred rows `step.produce` of channel c to
    /// out + c * outChannelStride + row * bow (then `finish`), and the window slid down.
    func blurredRows(g: ConvGeometry, x: UnsafePointer<Float>, inputRows: Range<Int>, step: BlurWindow.Step,
                     blur: (geometry: UpFirDnGeometry, kernel: UnsafePointer<Float>, separable: SeparableFilter?),
                     out: UnsafeMutablePointer<Float>, outChannelStride: Int, scratch: UnsafeMutablePointer<Float>,
                     channels: Range<Int>, finish: (Int, Range<Int>) -> Void) {
        let window = scratch + packedBytes / 4, planeStride = windowRows * g.ow
        precondition(2 * inputRows.upperBound - step.oldBase < windowRows, "transposed conv row outside its window")
        mfs_convt3x3s2_rows(path.rawValue, x, Int32(g.cin), g.h * g.w, Int32(g.w), scratch, g.cin * 9,
                            Int32(channels.lowerBound), Int32(channels.upperBound),
                            Int32(inputRows.lowerBound), Int32(inputRows.upperBound), window, planeStride, Int32(step.oldBase))
        for c in channels {
            let wp = window + c * planeStride
            if !step.produce.isEmpty {
                upfirdnRows(UnsafePointer(wp - step.oldBase * g.ow), out + c * outChannelStride, blur.kernel, blur.geometry,
                            rows: step.produce, separable: blur.separable)
                finish(c, step.produce)
            }
            step.slide(wp, rows: windowRows, rowLength: g.ow)
        }
    }
}
