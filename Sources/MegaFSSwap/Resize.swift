import Foundation
import MegaFSRuntime

/// The image loops of pre- and post-processing spread over every processor; each pixel is
/// computed as in one loop, so the result does not depend on the split.
let imageThreads = ThreadPartition(threads: ProcessInfo.processInfo.activeProcessorCount)

/// Bilinear resizing with half-pixel centres and no antialiasing: for each output index d
/// along an axis of `n_in` -> `n_out` samples, src = (d + 0.5) * (n_in / n_out) - 0.5, clamped to
/// [0, n_in - 1]; i0 = floor(src), i1 = min(i0 + 1, n_in - 1), f = src - i0; rows are
/// interpolated first (top/bottom), then the two are mixed along y, in Double precision.
///
/// This is PyTorch's `F.interpolate(mode="bilinear", align_corners=False, antialias=False)`,
/// OpenCV's `cv2.resize(..., INTER_LINEAR)` on float data (edge-clamped), and the
/// `resize_bilinear` of the fixtures' reference pipeline (`examples/export/megafs_pipeline.py`),
/// whose operation order it follows so results agree to float32 rounding. (OpenCV on uint8
/// images uses 11-bit fixed-point weights and differs by up to about one grey level; the
/// released MegaFS code resizes uint8 images with OpenCV, the fixtures use the float formula.)
/// Same-size "resizes" copy the values.
public enum Resize {
    struct Axis {
        var i0: [Int]
        var i1: [Int]
        var f: [Double]

        init(input nIn: Int, output nOut: Int) {
            let ratio = Double(nIn) / Double(nOut)
            i0 = []; i1 = []; f = []
            i0.reserveCapacity(nOut); i1.reserveCapacity(nOut); f.reserveCapacity(nOut)
            for d in 0..<nOut {
                let s = min(max((Double(d) + 0.5) * ratio - 0.5, 0), Double(nIn - 1))
                let a = Int(s.rounded(.down))
                i0.append(a)
                i1.append(min(a + 1, nIn - 1))
                f.append(s - Double(a))
            }
        }
    }

    /// The core: `load(index)` reads element `index` of a HWC source with `c` channels.
    @inline(__always)
    static func resample(width w: Int, height h: Int, channels c: Int, outWidth ow: Int, outHeight oh: Int,
                         load: (Int) -> Double, store: (Int, Double) -> Void) {
        resample(width: w, channels: c, outWidth: ow, ax: Axis(input: w, output: ow), ay: Axis(input: h, output: oh),
                 rows: 0..<oh, load: load, store: store)
    }

    /// Output rows `rows` of the core, the axes given.
    @inline(__always)
    static func resample(width w: Int, channels c: Int, outWidth ow: Int, ax: Axis, ay: Axis, rows: Range<Int>,
                         load: (Int) -> Double, store: (Int, Double) -> Void) {
        ax.i0.withUnsafeBufferPointer { xi0 in ax.i1.withUnsafeBufferPointer { xi1 in ax.f.withUnsafeBufferPointer { xf in
            let xi0 = xi0.baseAddress!, xi1 = xi1.baseAddress!, xf = xf.baseAddress!
            for y in rows {
                let r0 = ay.i0[y] * w, r1 = ay.i1[y] * w, fy = ay.f[y]
                for x in 0..<ow {
                    let x0 = xi0[x], x1 = xi1[x], fx = xf[x]
                    for ch in 0..<c {
                        store((y * ow + x) * c + ch, mix(load((r0 + x0) * c + ch), load((r0 + x1) * c + ch),
                                                         load((r1 + x0) * c + ch), load((r1 + x1) * c + ch), fx: fx, fy: fy))
                    }
                }
            }
        } } }
    }

    /// The bilinear mix of the four neighbours a (top left), b (top right), p (bottom left),
    /// q (bottom right): rows first, then the two rows, in this operation order.
    @inline(__always)
    static func mix(_ a: Double, _ b: Double, _ p: Double, _ q: Double, fx: Double, fy: Double) -> Double {
        let top = a * (1 - fx) + b * fx
        let bot = p * (1 - fx) + q * fx
        return top * (1 - fy) + bot * fy
    }

    /// Calls `body(rows, x axis, y axis)` on bands of output rows spread over the processors (the
    /// callers define their load and store inside it, so that they inline into the loop).
    static func inRowBands(width w: Int, height h: Int, channels c: Int, outWidth ow: Int, outHeight oh: Int,
                           _ body: (Range<Int>, Axis, Axis) -> Void) {
        let ax = Axis(input: w, output: ow), ay = Axis(input: h, output: oh)
        imageThreads.forRanges(oh, minPerThread: max(1, 65536 / max(1, ow * c))) { rows in body(rows, ax, ay) }
    }

    /// Resizes a float image (any channel count).
    public static func bilinear(_ image: FloatImage, width: Int, height: Int) -> FloatImage {
        precondition(width > 0 && height > 0, "resize to \(width)x\(height)")
        if image.width == width, image.height == height { return image }
        let c = image.channels
        let out = filled([Float].self, count: width * height * c) { dst in
            image.values.withUnsafeBufferPointer { src in
                let src = src.baseAddress!
                inRowBands(width: image.width, height: image.height, channels: c, outWidth: width, outHeight: height) { rows, ax, ay in
                    resample(width: image.width, channels: c, outWidth: width, ax: ax, ay: ay, rows: rows,
                             load: { Double(src[$0]) }, store: { dst[$0] = Float($1) })
                }
            }
        }
        return FloatImage(uncheckedWidth: width, height: height, channels: c, values: out)
    }

    /// Resizes an 8-bit image to float values (0...255, not rounded), as the reference resizes
    /// the target before blending.
    public static func bilinear(_ image: RGBImage, width: Int, height: Int) -> FloatImage {
        precondition(width > 0 && height > 0, "resize to \(width)x\(height)")
        let out = filled([Float].self, count: width * height * 3) { dst in
            image.pixels.withUnsafeBufferPointer { src in
                let src = src.baseAddress!
                inRowBands(width: image.width, height: image.height, channels: 3, outWidth: width, outHeight: height) { rows, ax, ay in
                    resample(width: image.width, channels: 3, outWidth: width, ax: ax, ay: ay, rows: rows,
                             load: { Double(src[$0]) }, store: { dst[$0] = Float($1) })
                }
            }
        }
        return FloatImage(uncheckedWidth: width, height: height, channels: 3, values: out)
    }

    /// Resizes an 8-bit image to 8 bits (rounded to nearest, ties to even).
    public static func bilinearRGB(_ image: RGBImage, width: Int, height: Int) -> RGBImage {
        precondition(width > 0 && height > 0, "resize to \(width)x\(height)")
        if image.width == width, image.height == height { return image }
        let out = filled([UInt8].self, count: width * height * 3) { dst in
            image.pixels.withUnsafeBufferPointer { src in
                let src = src.baseAddress!
                inRowBands(width: image.width, height: image.height, channels: 3, outWidth: width, outHeight: height) { rows, ax, ay in
                    resample(width: image.width, channels: 3, outWidth: width, ax: ax, ay: ay, rows: rows,
                             load: { Double(src[$0]) },
                             store: { dst[$0] = UInt8(min(max($1.rounded(.toNearestOrEven), 0), 255)) })
                }
            }
        }
        return RGBImage(uncheckedWidth: width, height: height, pixels: out)
    }

    /// Float(resized(a) + resized(b)) for two single-channel Double planes of one size, in one
    /// pass: the same values as resizing each (in Double) and adding, without the two planes.
    static func bilinearSum(_ a: [Double], _ b: [Double], width: Int, height: Int, outWidth: Int, outHeight: Int) -> [Float] {
        precondition(a.count == width * height && b.count == a.count)
        return filled([Float].self, count: outWidth * outHeight) { dst in
            a.withUnsafeBufferPointer { pa in
                b.withUnsafeBufferPointer { pb in
                    let pa = pa.baseAddress!, pb = pb.baseAddress!
                    inRowBands(width: width, height: height, channels: 1, outWidth: outWidth, outHeight: outHeight) { rows, ax, ay in
                        for y in rows {
                            let r0 = ay.i0[y] * width, r1 = ay.i1[y] * width, fy = ay.f[y]
                            for x in 0..<outWidth {
                                let i = r0 + ax.i0[x], j = r0 + ax.i1[x], k = r1 + ax.i0[x], l = r1 + ax.i1[x], fx = ax.f[x]
                                dst[y * outWidth + x] = Float(mix(pa[i], pa[j], pa[k], pa[l], fx: fx, fy: fy)
                                                              + mix(pb[i], pb[j], pb[k], pb[l], fx: fx, fy: fy))
                            }
                        }
                    }
                }
            }
        }
    }

    /// An array of `count` elements, every one written by `fill` (no zeroing pass first).
    @inline(__always)
    static func filled<T>(_: [T].Type, count: Int, _ fill: (UnsafeMutablePointer<T>) -> Void) -> [T] {
        [T](unsafeUninitializedCapacity: count) { b, n in
            if count > 0 { fill(b.baseAddress!) }
            n = count
        }
    }
}
