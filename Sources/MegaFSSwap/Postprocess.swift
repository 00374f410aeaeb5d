import Foundation
import MegaFSRuntime
import MegaFSGraph

/// The released code's post-processing (architecture notes, section 0 step 5).
public enum Postprocess {
    /// How blended float values become bytes.
    public enum Rounding: Sendable, Equatable {
        /// Round to nearest, ties to even, then clip to 0...255: `np.clip(np.rint(x), 0, 255)`,
        /// what the fixtures' reference (`megafs_pipeline.to_u8`) does. The default.
        case nearest
        /// Clip to 0...255, then truncate toward zero, as a bare numpy `astype(np.uint8)` does
        /// for values already in range (it would wrap values outside 0...255).
        case truncate
    }

    /// Min-max normalises a generated image to [0,255] over all its values (all channels
    /// together), without clamping: y = (x - min) / (max - min) * 255 in float32, in that
    /// operation order. Accepts (1,3,H,W) or (3,H,W) float32; returns HWC float.
    /// Throws for other shapes, non-finite values, or a constant image (max == min, where the
    /// reference would divide by zero).
    public static func denormalize(_ generated: Tensor) throws -> FloatImage {
        let (h, w, lo, range) = try normalisation(generated)
        let x = generated.storage.bytes.bindMemory(to: Float.self)
        let plane = h * w
        let out = Resize.filled([Float].self, count: plane * 3) { o in
            let s = x.baseAddress!
            imageThreads.forRanges(plane, minPerThread: 65536) { pixels in
                for p in pixels {
                    for c in 0..<3 { o[p * 3 + c] = normalised(s[c * plane + p], lo: lo, range: range) }
                }
            }
        }
        return FloatImage(uncheckedWidth: w, height: h, channels: 3, values: out)
    }

    /// One value of `denormalize`, in its operation order.
    @inline(__always)
    static func normalised(_ v: Float, lo: Float, range: Float) -> Float { (v - lo) / range * 255 }

    /// One value of `blend`: swapped * m + target * (1 - m).
    @inline(__always)
    static func blendValue(_ swapped: Float, _ target: Float, mask m: Float) -> Float { swapped * m + target * (1 - m) }

    /// The checks of `denormalize`, and the generated image's size, min and max - min.
    static func normalisation(_ generated: Tensor) throws -> (h: Int, w: Int, lo: Float, range: Float) {
        guard generated.dtype == .float32 else {
            throw ImageError.invalidArgument("generated image is \(generated.dtype.name), expected float32")
        }
        let s = generated.shape
        guard (s.count == 4 && s[0] == 1 && s[1] == 3) || (s.count == 3 && s[0] == 3) else {
            throw ImageError.invalidArgument("generated image has shape \(s), expected (1,3,H,W) or (3,H,W)")
        }
        let h = s[s.count - 2], w = s[s.count - 1]
        guard h > 0, w > 0 else { throw ImageError.invalidArgument("generated image has shape \(s)") }
        let x = generated.storage.bytes.bindMemory(to: Float.self)
        var lo = Float.infinity, hi = -Float.infinity
        var finite = true
        for v in x {
            lo = min(lo, v); hi = max(hi, v)
            finite = finite && v.isFinite
        }
        guard finite else {
            let v = x.first { !$0.isFinite }!
            throw ImageError.invalidArgument("generated image contains a non-finite value (\(v))")
        }
        guard hi > lo else {
            throw ImageError.invalidArgument("generated image is constant (\(lo)); min-max normalisation is undefined")
        }
        return (h, w, lo, hi - lo)
    }

    /// out = swapped * m + target * (1 - m), per pixel and channel, in float32 (the reference's
    /// `blend`). All three must have the same width and height; `mask` has one channel.
    public static func blend(swapped: FloatImage, target: FloatImage, mask: FloatImage) throws -> FloatImage {
        guard swapped.width == target.width, swapped.height == target.height,
              mask.width == target.width, mask.height == target.height else {
            throw ImageError.invalidArgument("blend sizes differ: swapped \(swapped.width)x\(swapped.height), target \(target.width)x\(target.height), mask \(mask.width)x\(mask.height)")
        }
        guard swapped.channels == target.channels, mask.channels == 1 else {
            throw ImageError.invalidArgument("blend channels: swapped \(swapped.channels), target \(target.channels), mask \(mask.channels) (expected equal, equal, 1)")
        }
        let c = swapped.channels
        var out = [Float](repeating: 0, count: swapped.values.count)
        swapped.values.withUnsafeBufferPointer { s in
            target.values.withUnsafeBufferPointer { t in
                mask.values.withUnsafeBufferPointer { m in
                    out.withUnsafeMutableBufferPointer { o in
                        let s = s.baseAddress!, t = t.baseAddress!, m = m.baseAddress!, o = o.baseAddress!
                        imageThreads.forRanges(swapped.width * swapped.height, minPerThread: 65536) { pixels in
                            for p in pixels {
                                let mv = m[p]
                                for ch in 0..<c {
                                    let i = p * c + ch
                                    o[i] = blendValue(s[i], t[i], mask: mv)
                                }
                            }
                        }
                    }
                }
            }
        }
        return FloatImage(uncheckedWidth: swapped.width, height: swapped.height, channels: c, values: out)
    }

    /// A 3-channel float image (0...255 scale) to 8-bit RGB. NaN becomes 0.
    public static func toRGB8(_ image: FloatImage, rounding: Rounding = .nearest) throws -> RGBImage {
        guard image.channels == 3 else {
            throw ImageError.invalidArgument("toRGB8 needs 3 channels, got \(image.channels)")
        }
        let px = Resize.filled([UInt8].self, count: image.values.count) { dst in
            image.values.withUnsafeBufferPointer { src in
                let src = src.baseAddress!
                imageThreads.forRanges(image.values.count, minPerThread: 1 << 18) { range in
                    for i in range {
                        let v = src[i]
                        guard !v.isNaN else { dst[i] = 0; continue }
                        switch rounding {
                        case .nearest: dst[i] = UInt8(min(max(v.rounded(.toNearestOrEven), 0), 255))
                        case .truncate: dst[i] = UInt8(min(max(v, 0), 255).rounded(.towardZero))
                        }
                    }
                }
            }
        }
        return RGBImage(uncheckedWidth: image.width, height: image.height, pixels: px)
    }

    /// Where the blended image is delivered.
    public enum OutputSize: Sendable, Equatable {
        /// At the generator's size (1024x1024 for the released model): the released behaviour.
        case generator
        /// At the target's own size: the target is resized to the generator's size for the
        /// blend (as always), and the blended float image is resized back to the target's size
        /// (half-pixel bilinear) before rounding. Identical to `.generator` for a target that
        /// already has the generator's size.
        case target
    }

    /// The outputs of `composite`.
    public struct Composite: Sendable {
        /// The generator's output, as given to `composite`.
        public var generated: Tensor
        /// The generated image, min-max normalised, HWC at the generator's size (made on request:
        /// the blend computes it on the fly).
        public var swapped: FloatImage { get throws { try Postprocess.denormalize(generated) } }
        /// The blend at the generator's size, float, not rounded.
        public var blended: FloatImage
        /// The delivered 8-bit image (generator or target size, see `OutputSize`).
        public var image: RGBImage
    }

    /// Step 5 of the swap: denormalise `generated`, resize the target (float, not rounded) to the
    /// generator's size, blend with `mask` (generator size, one channel, e.g. from
    /// `FaceMask.fromLabels`), round to 8 bits at the requested size.
    public static func composite(generated: Tensor, target: RGBImage, mask: FloatImage,
                                 outputSize: OutputSize = .target, rounding: Rounding = .nearest) throws -> Composite {
        let (h, w, lo, range) = try normalisation(generated)
        guard mask.width == w, mask.height == h, mask.channels == 1 else {
            throw ImageError.invalidArgument("mask is \(mask.width)x\(mask.height)x\(mask.channels), the generated image \(w)x\(h) (need one channel of the same size)")
        }
        // denormalize and blend in one pass, written over the resized target: the same float
        // operations as `blend(swapped: denormalize(generated), ...)`, without two more images.
        var blended = Resize.bilinear(target, width: w, height: h)
        let x = generated.storage.bytes.bindMemory(to: Float.self)
        blended.values.withUnsafeMutableBufferPointer { tb in
            mask.values.withUnsafeBufferPointer { mb in
                let t = tb.baseAddress!, m = mb.baseAddress!, g = x.baseAddress!
                let plane = h * w
                imageThreads.forRanges(plane, minPerThread: 65536) { pixels in
                    for p in pixels {
                        let mv = m[p]
                        for ch in 0..<3 {
                            t[p * 3 + ch] = blendValue(normalised(g[ch * plane + p], lo: lo, range: range), t[p * 3 + ch], mask: mv)
                        }
                    }
                }
            }
        }
        var delivered = blended
        if outputSize == .target, target.width != w || target.height != h {
            delivered = Resize.bilinear(blended, width: target.width, height: target.height)
        }
        return Composite(generated: generated, blended: blended, image: try toRGB8(delivered, rounding: rounding))
    }
}
