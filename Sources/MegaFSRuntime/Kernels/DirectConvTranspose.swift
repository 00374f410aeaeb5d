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
        let cin = g.cin, cout = g.cout
        let packed = scratch
        for co in channels {
            let dst = packed + co * cin * 9
            for ci in 0..<cin {
                let s = scale?[ci] ?? 1, src = weight + (weightOutIn ? co * cin + ci : ci * cout + co) * 9, d = dst + ci * 9
                for k in 0..<9 { d[k] = src[k] * s }
            }
        }
        let co0 = Int32(channels.lowerBound), co1 = Int32(channels.upperBound)
        guard let blur else {
            let plane = g.oh * g.ow
            for c in channels {
                (y + c * plane).initialize(repeating: 0, count: plane)
            }
            mfs_convt3x3s2_rows(path.rawValue, x, Int32(cin), g.h * g.w, Int32(g.w), packed, cin * 9, co0, co1,
                                0, Int32(g.h), y, plane, 0)
            for c in channels { finish(c, 0..<g.oh) }
            return
        }
        let window = scratch + packedBytes / 4
        let planeStride = windowRows * g.ow
        let bg = blur.geometry, finalP = bg.oh * bg.ow
        for c in channels {
            (window + c * planeStride).initialize(repeating: 0, count: planeStride)
        }
        var slide = BlurWindow(conv: g, blur: bg)
        var r0 = 0
        while r0 < g.h {
            let r1 = min(g.h, r0 + bandRows)
            precondition(2 * r1 - slide.base < windowRows, "transposed conv row outside its window")
            mfs_convt3x3s2_rows(path.rawValue, x, Int32(cin), g.h * g.w, Int32(g.w), packed, cin * 9, co0, co1,
                                Int32(r0), Int32(r1), window, planeStride, Int32(slide.base))
            let step = slide.advance(afterInputRows: r1)
            for c in channels {
                let wp = window + c * planeStride
                if !step.produce.isEmpty {
                    upfirdnRows(UnsafePointer(wp - step.oldBase * g.ow), y + c * finalP, blur.kernel, bg, rows: step.produce,
                                separable: blur.separable)
                    finish(c, step.produce)
                }
                step.slide(wp, rows: windowRows, rowLength: g.ow)
            }
            r0 = r1
        }
    }
}
