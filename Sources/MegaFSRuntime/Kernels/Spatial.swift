import MegaFSGraph
#if canImport(Glibc)
import Glibc
#endif

/// Bilinear Resize on the last two axes of a 4-D tensor (ONNX mode "linear"), with the
/// coordinate transformations align_corners, half_pixel, pytorch_half_pixel and asymmetric.
final class ResizeLinearKernel: RuntimeKernel {
    let x: Int, y: Int
    let planes: Int, h: Int, w: Int, oh: Int, ow: Int
    let rowIndex: [(Int, Int, Float)]
    let colIndex: [(Int, Int, Float)]
    var kernelName: String { "resize(linear)" }

    init?(_ req: KernelRequest) {
        let node = req.node
        guard req.opset >= 11, let xd = req.input(0), let yd = req.outputs.first ?? nil,
              xd.dtype == .float32, xd.shape.count == 4, yd.shape.count == 4,
              xd.shape[0] == yd.shape[0], xd.shape[1] == yd.shape[1],
              (node.string("mode") ?? "nearest") == "linear",
              (node.int("antialias") ?? 0) == 0, node.ints("axes") == nil else { return nil }
        let mode = node.string("coordinate_transformation_mode") ?? "half_pixel"
        guard ["align_corners", "half_pixel", "pytorch_half_pixel", "asymmetric"].contains(mode) else { return nil }
        var scaleH = Float(yd.shape[2]) / Float(xd.shape[2]), scaleW = Float(yd.shape[3]) / Float(xd.shape[3])
        if let s = req.input(2), s.elementCount > 0 {
            guard let c = s.constant, c.elementCount == 4 else { return nil }
            let v = c.floats
            guard v[0] == 1, v[1] == 1 else { return nil }
            scaleH = v[2]; scaleW = v[3]
        }
        x = xd.slot; y = yd.slot
        planes = xd.shape[0] * xd.shape[1]; h = xd.shape[2]; w = xd.shape[3]; oh = yd.shape[2]; ow = yd.shape[3]
        func table(_ input: Int, _ output: Int, _ scale: Float) -> [(Int, Int, Float)] {
            (0..<output).map { o in
                var c: Float
                switch mode {
                case "align_corners": c = output == 1 ? 0 : Float(o) * Float(input - 1) / Float(output - 1)
                case "asymmetric": c = Float(o) / scale
                case "pytorch_half_pixel": c = output > 1 ? (Float(o) + 0.5) / scale - 0.5 : 0
                default: c = (Float(o) + 0.5) / scale - 0.5
                }
                c = min(max(c, 0), Float(input - 1))
                let i0 = Int(c.rounded(.down))
                let i1 = min(i0 + 1, input - 1)
                return (i0, i1, c - Float(i0))
            }
        }
        rowIndex = table(h, oh, scaleH)
        colIndex = table(w, ow, scaleW)
    }

    func run(_ ctx: KernelContext) throws {
        let px = UnsafePointer(ctx.f32(x)), py = ctx.f32(y)
        let rows = rowIndex, cols = colIndex
        let h = self.h, w = self.w, oh = self.oh, ow = self.ow
        ctx.threads.forRanges(planes * oh, minPerThread: max(1, 4096 / max(1, ow))) { range in
            for idx in range {
                let p = idx / oh, r = idx % oh
                let (r0, r1, fy) = rows[r]
                let a = px + p * h * w + r0 * w, b = px + p * h * w + r1 * w
                let out = py + p * oh * ow + r * ow
                for c in 0..<ow {
                    let (c0, c1, fx) = cols[c]
                    let top = a[c0] + (a[c1] - a[c0]) * fx
                    let bottom = b[c0] + (b[c1] - b[c0]) * fx
                    out[c] = top + (bottom - top) * fy
                }
            }
        }
    }
}

/// 2-D MaxPool (values only), padding ignored, ceil_mode via the planned output shape.
final class MaxPoolKernel: RuntimeKernel {
    let x: Int, y: Int
    let planes: Int, h: Int, w: Int, oh: Int, ow: Int
    let kh: Int, kw: Int, sh: Int, sw: Int, ph: Int, pw: Int, dh: Int, dw: Int
    var kernelName: String { "maxpool" }

    init?(_ req: KernelRequest) {
        let node = req.node
        guard let xd = req.input(0), let yd = req.outputs.first ?? nil, xd.dtype == .float32,
              xd.shape.count == 4, yd.shape.count == 4, req.outputs.count == 1 || req.outputs[1] == nil,
              (node.string("auto_pad") ?? "NOTSET") == "NOTSET", (node.int("storage_order") ?? 0) == 0,
              let ks = node.ints("kernel_shape"), ks.count == 2 else { return nil }
        let s = node.ints("strides") ?? [1, 1], p = node.ints("pads") ?? [0, 0, 0, 0], d = node.ints("dilations") ?? [1, 1]
        guard s.count == 2, p.count == 4, d.count == 2 else { return nil }
        x = xd.slot; y = yd.slot
        planes = xd.shape[0] * xd.shape[1]; h = xd.shape[2]; w = xd.shape[3]; oh = yd.shape[2]; ow = yd.shape[3]
        kh = ks[0]; kw = ks[1]; sh = s[0]; sw = s[1]; ph = p[0]; pw = p[1]; dh = d[0]; dw = d[1]
    }

    func run(_ ctx: KernelContext) throws {
        let px = UnsafePointer(ctx.f32(x)), py = ctx.f32(y)
        let (h, w, oh, ow, kh, kw, sh, sw, ph, pw, dh, dw) = (self.h, self.w, self.oh, self.ow, self.kh, self.kw, self.sh, self.sw, self.ph, self.pw, self.dh, self.dw)
        ctx.threads.forEach(planes) { p in
            let src = px + p * h * w, dst = py + p * oh * ow
            for r in 0..<oh {
                // Row-wise: max over the window's rows and columns, one kernel tap at a time.
                let orow = dst + r * ow
                orow.initialize(repeating: -Float.infinity, count: ow)
                for a in 0..<kh {
                    let ih = r * sh - ph + a * dh
                    if ih < 0 || ih >= h { continue }
                    let irow = src + ih * w
                    for b in 0..<kw {
                        let off = b * dw - pw
                        let lo = off >= 0 ? 0 : min(ow, (-off + sw - 1) / sw)
                        let hi = max(lo, min(ow, (w - 1 - off) >= 0 ? (w - 1 - off) / sw + 1 : 0))
                        let base = irow + off
                        for c in lo..<hi {
                            let v = base[c * sw]
                            let m = orow[c]
                            orow[c] = (v > m || v != v) ? v : m
                        }
                    }
                }
            }
        }
    }
}

/// Inference BatchNormalization: y = x * a[c] + b[c] with a, b from constant statistics.
final class BatchNormKernel: RuntimeKernel {
    let x: Int, y: Int
    let n: Int, c: Int, spatial: Int
    let a: [Float], b: [Float]
    var kernelName: String { "batchnorm" }
    var aliasing: Aliasing { .inPlace(input: 0) }

    init?(_ req: KernelRequest) {
        guard let xd = req.input(0), let yd = req.outputs.first ?? nil, xd.dtype == .float32, xd.shape.count >= 2,
              req.outputs.dropFirst().allSatisfy({ $0 == nil }), (req.node.int("training_mode") ?? 0) == 0,
              let sc = req.input(1)?.constant, let bias = req.input(2)?.constant,
              let mean = req.input(3)?.constant, let vr = req.input(4)?.constant else { return nil }
        let ch = xd.shape[1]
        guard [sc, bias, mean, vr].allSatisfy({ $0.elementCount == ch }) else { return nil }
        let eps = req.node.float("epsilon") ?? 1e-5
        let g = sc.floats, bb = bias.floats, m = mean.floats, v = vr.floats
        var aa = [Float](repeating: 0, count: ch), b2 = aa
        for i in 0..<ch { aa[i] = g[i] / (v[i] + eps).squareRoot(); b2[i] = bb[i] - m[i] * aa[i] }
        a = aa; b = b2
        x = xd.slot; y = yd.slot
        n = xd.shape[0]; c = ch; spatial = xd.shape[2...].reduce(1, *)
    }

    func run(_ ctx: KernelContext) throws {
        let px = UnsafePointer(ctx.f32(x)), py = ctx.f32(y), c = self.c, spatial = self.spatial
        a.withUnsafeBufferPointer { ab in b.withUnsafeBufferPointer { bb in
            let ap = ab.baseAddress!, bp = bb.baseAddress!
            ctx.threads.forEach(n * c, minPerThread: max(1, 16384 / max(1, spatial))) { p in
                let ch = p % c, s = ap[ch], t = bp[ch]
                let src = px + p * spatial, dst = py + p * spatial
                for i in 0..<spatial { dst[i] = src[i] * s + t }
            }
        } }
    }
}
