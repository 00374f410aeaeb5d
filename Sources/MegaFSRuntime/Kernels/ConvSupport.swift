import CKernels
import Foundation
import MegaFSGraph

/// The activation a fused epilogue applies.
enum Activation: Equatable {
    case none
    case relu
    case leakyRelu(Float)
    case sigmoid
    case tanh

    /// The C kernels' code for it (MFS_ACT_*, conv3x3.h) and leaky ReLU's slope.
    var kernelCode: (code: Int32, slope: Float) {
        switch self {
        case .none: (Int32(MFS_ACT_NONE), 0)
        case .relu: (Int32(MFS_ACT_RELU), 0)
        case .leakyRelu(let slope): (Int32(MFS_ACT_LEAKY), slope)
        case .sigmoid: (Int32(MFS_ACT_SIGMOID), 0)
        case .tanh: (Int32(MFS_ACT_TANH), 0)
        }
    }

    init?(name: String, alpha: Float) {
        switch name {
        case "", "none": self = .none
        case "relu": self = .relu
        case "leaky_relu": self = .leakyRelu(alpha)
        case "sigmoid": self = .sigmoid
        case "tanh": self = .tanh
        default: return nil
        }
    }

    var name: String {
        switch self {
        case .none: return "none"
        case .relu: return "relu"
        case .leakyRelu: return "leaky_relu"
        case .sigmoid: return "sigmoid"
        case .tanh: return "tanh"
        }
    }
}

/// A tensor added in a convolution's epilogue, broadcast as [N or 1, C or 1, OH, OW]
/// (a residual when full, StyleGAN2's noise when [1,1,OH,OW]).
struct AddendSpec {
    let slot: Int
    let perSample: Bool
    let perChannel: Bool
}

/// What runs on each output element after the accumulation, in PyTorch's order:
/// y = acc * d[c] + addend + bias[c]; activation; y *= gain.
struct ConvEpilogue {
    var bias: Int? = nil
    var addend: AddendSpec? = nil
    var activation: Activation = .none
    var gain: Float = 1

    var isIdentity: Bool { bias == nil && addend == nil && activation == .none && gain == 1 }

    /// Pointers resolved for one run.
    struct Bound {
        let bias: UnsafePointer<Float>?
        let addend: UnsafePointer<Float>?
        let addendSampleStride: Int
        let addendChannelStride: Int
        let activation: Activation
        let gain: Float
    }

    func bind(_ ctx: KernelContext, channels: Int, spatial: Int) -> Bound {
        Bound(bias: bias.map { UnsafePointer(ctx.f32($0)) },
              addend: addend.map { UnsafePointer(ctx.f32($0.slot)) },
              addendSampleStride: addend.map { ($0.perSample ? 1 : 0) * ($0.perChannel ? channels : 1) * spatial } ?? 0,
              addendChannelStride: addend.map { $0.perChannel ? spatial : 0 } ?? 0,
              activation: activation, gain: gain)
    }
}

extension ConvEpilogue.Bound {
    /// The epilogue for the direct kernel to apply in its store (CKernels/conv3x3.h: the same
    /// operations as `apply`), on a band starting at element p0 of sample n; nil for the
    /// activations it does not have. `scale`: the demodulation per output channel, or nil.
    func kernelEpilogue(n: Int, p0: Int, scale: UnsafePointer<Float>?) -> mfs_conv_epilogue? {
        if case .sigmoid = activation { return nil }
        if case .tanh = activation { return nil }
        var e = mfs_conv_epilogue()
        (e.activation, e.alpha) = activation.kernelCode
        e.gain = gain
        e.scale = scale
        e.bias = bias
        e.addend = addend.map { $0 + n * addendSampleStride + p0 }
        e.addend_channel_stride = addendChannelStride
        return e
    }


    /// `apply` on channels `channels` of sample n over the threads, channel c's values at
    /// y + (c - channels.lowerBound) * stride, scaled by demod[c] when given.
    func applyPlanes(_ y: UnsafeMutablePointer<Float>, stride: Int, channels: Range<Int>, count: Int, n: Int, p0: Int,
                     demod: UnsafePointer<Float>?, threads: ThreadPartition) {
        let c0 = channels.lowerBound
        threads.forEach(channels.count, minPerThread: max(1, 8192 / max(1, count))) { o in
            apply(y + o * stride, count: count, n: n, c: c0 + o, p0: p0, scale: demod?[c0 + o] ?? 1)
        }
    }

    /// Applies the epilogue to y[0..<count], the elements p0..<p0+count of channel c of sample n,
    /// with output scale `scale` (demodulation; 1 when none).
    @inline(__always)
    func apply(_ y: UnsafeMutablePointer<Float>, count: Int, n: Int, c: Int, p0: Int, scale: Float) {
        let b = bias?[c] ?? 0
        // The leaky ReLUs (most convs of the encoder and the generator) in one pass over y: the
        // two passes below cost 7-12 ms per 512-1024 px generator layer. Same operations in
        // the same order per element, so the same bits.
        if case .leakyRelu(let alpha) = activation {
            let g = gain, ga = gain * alpha
            if let addend {
                let a = addend + n * addendSampleStride + c * addendChannelStride + p0
                if scale == 1 {
                    for i in 0..<count { let v = (y[i] + a[i]) + b; y[i] = v >= 0 ? v * g : v * ga }
                } else {
                    for i in 0..<count { let v = (y[i] * scale + a[i]) + b; y[i] = v >= 0 ? v * g : v * ga }
                }
            } else if scale != 1 || b != 0 {
                for i in 0..<count { let v = y[i] * scale + b; y[i] = v >= 0 ? v * g : v * ga }
            } else {
                for i in 0..<count { let v = y[i]; y[i] = v >= 0 ? v * g : v * ga }
            }
            return
        }
        if let addend {
            let a = addend + n * addendSampleStride + c * addendChannelStride + p0
            if scale == 1 { for i in 0..<count { y[i] = (y[i] + a[i]) + b } }
            else { for i in 0..<count { y[i] = (y[i] * scale + a[i]) + b } }
        } else if scale != 1 || b != 0 {
            for i in 0..<count { y[i] = y[i] * scale + b }
        }
        switch activation {
        case .none:
            if gain != 1 { for i in 0..<count { y[i] *= gain } }
        case .relu:
            if gain == 1 { for i in 0..<count { let v = y[i]; y[i] = v > 0 ? v : (v.isNaN ? v : 0) } }
            else { for i in 0..<count { let v = y[i]; y[i] = (v > 0 ? v : (v.isNaN ? v : 0)) * gain } }
        case .leakyRelu(let alpha):
            if gain == 1 { for i in 0..<count { let v = y[i]; y[i] = v >= 0 ? v : v * alpha } }
            else { let ga = gain * alpha, g = gain; for i in 0..<count { let v = y[i]; y[i] = v >= 0 ? v * g : v * ga } }
        case .sigmoid:
            for i in 0..<count { y[i] = sigmoid(y[i]) * gain }
        case .tanh:
            for i in 0..<count { y[i] = tanhf(y[i]) * gain }
        }
    }
}

#if canImport(Glibc)
import Glibc
#endif

/// A 2-D (transposed) convolution's sizes, from ONNX attributes and concrete shapes.
struct ConvGeometry: Equatable {
    var n = 0, cin = 0, h = 0, w = 0
    var cout = 0, kh = 0, kw = 0, oh = 0, ow = 0
    var sh = 1, sw = 1, dh = 1, dw = 1
    var padTop = 0, padLeft = 0, padBottom = 0, padRight = 0
    var groups = 1
    var cinG: Int { cin / groups }
    var coutG: Int { cout / groups }
    /// 2 x the multiply-adds of the convolution, zeros of the padding included.
    var convFlops: Double { 2 * Double(n) * Double(cout) * Double(cinG * kh * kw) * Double(oh * ow) }
    /// The same of a transposed conv (this geometry read as ConvTranspose's: x [N, Cin, H, W]),
    /// counted by input pixels: no zero insertion.
    var transposedFlops: Double { 2 * Double(n) * Double(cin) * Double(coutG * kh * kw) * Double(h * w) }
    var isPointwise: Bool {
        kh == 1 && kw == 1 && sh == 1 && sw == 1 && padTop == 0 && padLeft == 0 && padBottom == 0 && padRight == 0
    }

    /// Conv: x [N,C,H,W], weight [Cout, Cin/G, KH, KW]. Returns nil for anything but 2-D or for
    /// attributes it does not know (the reference kernel then runs the node).
    static func conv(node: Node, x: [Int], weight: [Int]) -> ConvGeometry? {
        guard x.count == 4, weight.count == 4 else { return nil }
        var g = ConvGeometry()
        g.n = x[0]; g.cin = x[1]; g.h = x[2]; g.w = x[3]
        g.cout = weight[0]; g.kh = weight[2]; g.kw = weight[3]
        g.groups = node.int("group") ?? 1
        guard g.groups >= 1, g.cin % g.groups == 0, g.cout % g.groups == 0, weight[1] == g.cin / g.groups else { return nil }
        if let ks = node.ints("kernel_shape"), ks != [g.kh, g.kw] { return nil }
        let s = node.ints("strides") ?? [1, 1], d = node.ints("dilations") ?? [1, 1]
        guard s.count == 2, d.count == 2, s.allSatisfy({ $0 >= 1 }), d.allSatisfy({ $0 >= 1 }) else { return nil }
        g.sh = s[0]; g.sw = s[1]; g.dh = d[0]; g.dw = d[1]
        let ekh = (g.kh - 1) * g.dh + 1, ekw = (g.kw - 1) * g.dw + 1
        switch node.string("auto_pad") ?? "NOTSET" {
        case "NOTSET":
            let p = node.ints("pads") ?? [0, 0, 0, 0]
            guard p.count == 4 else { return nil }
            g.padTop = p[0]; g.padLeft = p[1]; g.padBottom = p[2]; g.padRight = p[3]
        case "VALID":
            break
        case let mode where mode == "SAME_UPPER" || mode == "SAME_LOWER":
            let oh = (g.h + g.sh - 1) / g.sh, ow = (g.w + g.sw - 1) / g.sw
            let th = max(0, (oh - 1) * g.sh + ekh - g.h), tw = max(0, (ow - 1) * g.sw + ekw - g.w)
            if mode == "SAME_UPPER" {
                g.padTop = th / 2; g.padBottom = th - th / 2; g.padLeft = tw / 2; g.padRight = tw - tw / 2
            } else {
                g.padBottom = th / 2; g.padTop = th - th / 2; g.padRight = tw / 2; g.padLeft = tw - tw / 2
            }
        default:
            return nil
        }
        g.oh = (g.h + g.padTop + g.padBottom - ekh) / g.sh + 1
        g.ow = (g.w + g.padLeft + g.padRight - ekw) / g.sw + 1
        guard g.oh >= 1, g.ow >= 1 else { return nil }
        return g
    }

    /// ConvTranspose: x [N,Cin,H,W], weight [Cin, Cout/G, KH, KW]; output_padding and explicit
    /// pads (or output_shape with NOTSET padding).
    /// A fused transposed conv whose weight is laid out [Cout, Cin, k, k] (attribute
    /// `weight_out_in`), not ONNX's [Cin, Cout / groups, k, k].
    static func weightIsOutIn(_ node: Node) -> Bool { node.int("weight_out_in") == 1 }

    static func convTranspose(node: Node, x: [Int], weight: [Int]) -> ConvGeometry? {
        guard x.count == 4, weight.count == 4 else { return nil }
        var g = ConvGeometry()
        g.n = x[0]; g.cin = x[1]; g.h = x[2]; g.w = x[3]
        g.groups = node.int("group") ?? 1
        if weightIsOutIn(node) {
            // The fused modulated form's view of its [1, Cout, Cin, k, k] weight (no swapped copy).
            guard g.groups == 1, weight[1] == g.cin else { return nil }
            g.cout = weight[0]; g.kh = weight[2]; g.kw = weight[3]
        } else {
            guard g.groups >= 1, weight[0] == g.cin, g.cin % g.groups == 0 else { return nil }
            g.cout = weight[1] * g.groups; g.kh = weight[2]; g.kw = weight[3]
        }
        if let ks = node.ints("kernel_shape"), ks != [g.kh, g.kw] { return nil }
        let s = node.ints("strides") ?? [1, 1], d = node.ints("dilations") ?? [1, 1]
        guard s.count == 2, d.count == 2, s.allSatisfy({ $0 >= 1 }), d.allSatisfy({ $0 >= 1 }) else { return nil }
        g.sh = s[0]; g.sw = s[1]; g.dh = d[0]; g.dw = d[1]
        guard (node.string("auto_pad") ?? "NOTSET") == "NOTSET" else { return nil }
        let op = node.ints("output_padding") ?? [0, 0]
        guard op.count == 2 else { return nil }
        let ekh = (g.kh - 1) * g.dh + 1, ekw = (g.kw - 1) * g.dw + 1
        if let outShape = node.ints("output_shape") {
            let os = Array(outShape.suffix(2))
            guard os.count == 2 else { return nil }
            let th = g.sh * (g.h - 1) + op[0] + ekh - os[0], tw = g.sw * (g.w - 1) + op[1] + ekw - os[1]
            guard th >= 0, tw >= 0 else { return nil }
            g.padTop = th / 2; g.padBottom = th - th / 2; g.padLeft = tw / 2; g.padRight = tw - tw / 2
        } else {
            let p = node.ints("pads") ?? [0, 0, 0, 0]
            guard p.count == 4 else { return nil }
            g.padTop = p[0]; g.padLeft = p[1]; g.padBottom = p[2]; g.padRight = p[3]
        }
        g.oh = g.sh * (g.h - 1) + op[0] + ekh - g.padTop - g.padBottom
        g.ow = g.sw * (g.w - 1) + op[1] + ekw - g.padLeft - g.padRight
        guard g.oh >= 1, g.ow >= 1 else { return nil }
        return g
    }
}

/// upfirdn2d on every channel plane: zero insertion (`up`), padding (negative crops), then
/// correlation with `kernel` [kh, kw] (a Conv weight: already flipped if it was a true
/// convolution). Output spatial size: H*up + padTop + padBottom - kh + 1.
struct UpFirDnGeometry: Equatable {
    var up = 1
    var padTop = 0, padLeft = 0, padBottom = 0, padRight = 0
    var kh = 0, kw = 0
    var h = 0, w = 0
    var oh: Int { h * up + padTop + padBottom - kh + 1 }
    var ow: Int { w * up + padLeft + padRight - kw + 1 }
}

/// A kh x kw filter that is the outer product column x row (StyleGAN2's blur kernels are):
/// it runs as a column pass and a row pass (`mfs_upfir_rows_separable`),
/// kh + kw multiply-adds per output instead of kh x kw. The factors reproduce every tap to
/// within 1e-6 of the largest; the result differs from the 2-D sum by rounding only.
struct SeparableFilter {
    let column: [Float]
    let row: [Float]

    init?(_ k: [Float], kh: Int, kw: Int) {
        guard kh * kw == k.count, kh > 1 || kw > 1,
              let peak = k.indices.max(by: { abs(k[$0]) < abs(k[$1]) }), k[peak] != 0 else { return nil }
        let i0 = peak / kw, j0 = peak % kw
        let column = (0..<kh).map { k[$0 * kw + j0] }
        let row = (0..<kw).map { k[i0 * kw + $0] / k[peak] }
        let tolerance = 1e-6 * abs(k[peak])
        for i in 0..<kh { for j in 0..<kw where abs(column[i] * row[j] - k[i * kw + j]) > tolerance { return nil } }
        self.column = column
        self.row = row
    }

    /// Output rows `rows` as `upfirdnRows`.
    func rows(_ x: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, _ g: UpFirDnGeometry, rows: Range<Int>) {
        withUnsafeTemporaryAllocation(of: Float.self, capacity: max(1, g.w + g.ow / max(1, g.up) + 1)) { tmp in
            column.withUnsafeBufferPointer { c in
                row.withUnsafeBufferPointer { r in
                    mfs_upfir_rows_separable(x, Int32(g.h), Int32(g.w), Int32(g.up), c.baseAddress!, Int32(g.kh), r.baseAddress!,
                                             Int32(g.kw), Int32(g.padTop), Int32(g.padLeft), Int32(g.ow), Int32(rows.lowerBound),
                                             Int32(rows.upperBound), out, tmp.baseAddress!)
                }
            }
        }
    }
}

/// Runs one plane: out[oh][ow] = sum_{a,b} k[a][b] * X'[oh + a][ow + b], X' the upsampled,
/// padded input. Writes (not accumulates) `out`.
@inline(__always)
func upfirdnPlane(_ x: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, _ k: UnsafePointer<Float>,
                  _ g: UpFirDnGeometry, separable: SeparableFilter? = nil) {
    upfirdnRows(x, out, k, g, rows: 0..<g.oh, separable: separable)
}

/// Output rows `rows` of one plane (`out` and `x` point at row 0 of their planes; only the
/// input rows those output rows read are touched, so `x` may be a window of rows).
@inline(__always)
func upfirdnRows(_ x: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, _ k: UnsafePointer<Float>,
                 _ g: UpFirDnGeometry, rows: Range<Int>, separable: SeparableFilter? = nil) {
    if let separable {
        separable.rows(x, out, g, rows: rows)
        return
    }
    let ow = g.ow, up = g.up
    for r in rows {
        let orow = out + r * ow
        orow.initialize(repeating: 0, count: ow)
        for a in 0..<g.kh {
            let i = r + a - g.padTop       // row in the upsampled plane
            if i < 0 || i % up != 0 { continue }
            let ih = i / up
            if ih >= g.h { continue }
            let xrow = x + ih * g.w
            for b in 0..<g.kw {
                let kv = k[a * g.kw + b]
                if kv == 0 { continue }
                // output column c reads upsampled column j = c + b - padLeft = iw * up.
                if up == 1 {
                    let lo = max(0, g.padLeft - b), hi = min(ow, g.w + g.padLeft - b)
                    if lo >= hi { continue }
                    let src = xrow + (lo + b - g.padLeft)
                    let dst = orow + lo
                    for c in 0..<(hi - lo) { dst[c] += kv * src[c] }
                } else {
                    // c = iw*up + padLeft - b
                    var iw0 = 0
                    let base = g.padLeft - b
                    if base < 0 { iw0 = (-base + up - 1) / up }
                    var iw = iw0
                    while iw < g.w {
                        let c = iw * up + base
                        if c >= ow { break }
                        orow[c] += kv * xrow[iw]
                        iw += 1
                    }
                }
            }
        }
    }
}

/// The rows of a transposed conv's output that a band of input rows completes, the blurred
/// rows that then become computable, and how far the window of conv rows slides down past the
/// rows no later blurred row reads.
struct BlurWindow {
    let conv: ConvGeometry, blur: UpFirDnGeometry
    /// Window row 0 is conv output row `base`.
    private(set) var base = 0
    /// First blurred row not yet produced.
    private(set) var nextOut = 0

    init(conv: ConvGeometry, blur: UpFirDnGeometry) { self.conv = conv; self.blur = blur }

    /// Window rows for bands of `bandRows` input rows: the rows one band writes, plus the rows
    /// still accumulating and the blur's reach.
    static func rows(conv g: ConvGeometry, blur: UpFirDnGeometry, bandRows: Int) -> Int {
        (bandRows - 1) * g.sh + (g.kh - 1) * g.dh + blur.kh + 1
    }

    struct Step {
        let produce: Range<Int>
        let oldBase: Int
        let shift: Int

        /// Moves one channel's window up by `shift` rows and zeroes the rows it frees.
        func slide(_ wp: UnsafeMutablePointer<Float>, rows: Int, rowLength: Int) {
            guard shift > 0 else { return }
            let keep = max(0, rows - shift)
            if keep > 0 { memmove(wp, wp + shift * rowLength, keep * rowLength * 4) }
            (wp + keep * rowLength).initialize(repeating: 0, count: min(rows, shift) * rowLength)
        }
    }

    /// After the input rows below `r1` have been added to the window.
    mutating func advance(afterInputRows r1: Int) -> Step {
        let g = conv, bg = blur
        // Rows above `complete` get no more contributions.
        let complete = r1 == g.h ? g.oh : min(g.oh, max(0, r1 * g.sh - g.padTop))
        var last = nextOut
        while last < bg.oh && (complete == g.oh || last - bg.padTop + bg.kh - 1 < complete) { last += 1 }
        let keepFrom = last == bg.oh ? complete : min(last - bg.padTop, complete)
        let newBase = r1 == g.h ? base : max(base, keepFrom)
        let step = Step(produce: nextOut..<last, oldBase: base, shift: newBase - base)
        base = newBase; nextOut = last
        return step
    }
}
