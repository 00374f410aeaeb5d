import CKernels
import Foundation
import MegaFSRuntime

/// The soft blend mask of the released MegaFS code (architecture notes, section 5).
///
/// 1. `faceMap`: m0 = [label in {1,2,3,4,5,6,10,12,13}] + [label == 11], each 0/1 map resized to
///    the output size with half-pixel bilinear (`Resize`; OpenCV's default INTER_LINEAR,
///    align_corners=False, edge-clamped) and added.
/// 2. `softErode`: SoftErosion(kernel 17, threshold 0.9, iterations 7).
public enum FaceMask {
    /// CelebAMask-HQ labels of the face: skin, brows, eyes, glasses, nose, lips.
    public static let faceLabels: [UInt8] = [1, 2, 3, 4, 5, 6, 10, 12, 13]
    /// CelebAMask-HQ label of the inner mouth.
    public static let mouthLabel: UInt8 = 11

    /// SoftErosion parameters; the defaults are the released code's.
    public struct SoftErosion: Sendable, Equatable {
        public var kernelSize: Int
        public var threshold: Float
        public var iterations: Int
        /// Worker count for the convolutions (default: all active processors).
        public var threads: Int

        public init(kernelSize: Int = 17, threshold: Float = 0.9, iterations: Int = 7,
                    threads: Int = ProcessInfo.processInfo.activeProcessorCount) {
            self.kernelSize = kernelSize
            self.threshold = threshold
            self.iterations = iterations
            self.threads = threads
        }
    }

    /// m0 from a label map at `width` x `height` (single-channel float image, values 0...1).
    /// The face and mouth maps are resized separately (in Double) and added, then rounded to
    /// float32, exactly like the reference pipeline.
    public static func faceMap(_ labels: LabelMap, width: Int, height: Int) -> FloatImage {
        precondition(width > 0 && height > 0)
        var isFace = [Bool](repeating: false, count: 256)
        for l in faceLabels { isFace[Int(l)] = true }
        let face = labels.labels.map { isFace[Int($0)] ? 1.0 : 0.0 }
        let mouth = labels.labels.map { $0 == mouthLabel ? 1.0 : 0.0 }
        let m = Resize.bilinearSum(face, mouth, width: labels.width, height: labels.height, outWidth: width, outHeight: height)
        return FloatImage(uncheckedWidth: width, height: height, channels: 1, values: m)
    }

    /// The soft blend mask from a label map: `softErode(faceMap(labels, width, height))`.
    public static func fromLabels(_ labels: LabelMap, width: Int, height: Int,
                                  erosion: SoftErosion = SoftErosion()) -> FloatImage {
        softErode(faceMap(labels, width: width, height: height), erosion)
    }

    /// The face region used when no label map is given: a filled ellipse (1 inside, 0 outside,
    /// tested at pixel centres), smoothed with the same SoftErosion as a label mask.
    /// Centre and semi-axes are fractions of the image width / height, chosen for aligned
    /// FFHQ / CelebA-HQ crops (skin from the forehead to the chin, cheek to cheek).
    public struct Ellipse: Sendable, Equatable {
        public var centerX: Double
        public var centerY: Double
        public var radiusX: Double
        public var radiusY: Double

        /// Centre (0.5, 0.56), semi-axes (0.28, 0.32) of the width and height.
        public init(centerX: Double = 0.5, centerY: Double = 0.56, radiusX: Double = 0.28, radiusY: Double = 0.32) {
            self.centerX = centerX
            self.centerY = centerY
            self.radiusX = radiusX
            self.radiusY = radiusY
        }
    }

    /// The hard ellipse (before smoothing).
    public static func ellipseMap(width: Int, height: Int, ellipse: Ellipse = Ellipse()) -> FloatImage {
        precondition(width > 0 && height > 0 && ellipse.radiusX > 0 && ellipse.radiusY > 0)
        var m = [Float](repeating: 0, count: width * height)
        let cx = ellipse.centerX * Double(width), cy = ellipse.centerY * Double(height)
        let rx = ellipse.radiusX * Double(width), ry = ellipse.radiusY * Double(height)
        for y in 0..<height {
            let dy = (Double(y) + 0.5 - cy) / ry
            for x in 0..<width {
                let dx = (Double(x) + 0.5 - cx) / rx
                if dx * dx + dy * dy <= 1 { m[y * width + x] = 1 }
            }
        }
        return FloatImage(uncheckedWidth: width, height: height, channels: 1, values: m)
    }

    /// The default soft mask without a label map: `softErode(ellipseMap(...))`.
    public static func defaultMask(width: Int, height: Int, ellipse: Ellipse = Ellipse(),
                                   erosion: SoftErosion = SoftErosion()) -> FloatImage {
        softErode(ellipseMap(width: width, height: height, ellipse: ellipse), erosion)
    }

    // MARK: - SoftErosion

    /// The kernel, row-major size x size: K[y][x] = max(dist) - dist, dist the Euclidean
    /// distance to the centre (size/2, size/2), normalised to sum 1. Computed in float32 with
    /// NumPy's pairwise summation order for the sum, as the reference does.
    public static func softErosionKernel(size: Int = 17) -> [Float] {
        precondition(size > 0 && size % 2 == 1, "kernel size \(size) must be odd")
        let r = Float(size / 2)
        var dist = [Float](repeating: 0, count: size * size)
        for y in 0..<size {
            for x in 0..<size {
                let dx = Float(x) - r, dy = Float(y) - r
                dist[y * size + x] = (dx * dx + dy * dy).squareRoot()
            }
        }
        let top = dist.max()!
        var k = dist.map { top - $0 }
        let s = pairwiseSum(k[...])
        if s > 0 { k = k.map { $0 / s } } else { k = [Float](repeating: 0, count: k.count); k[k.count / 2] = 1 }
        return k
    }

    /// NumPy's float32 pairwise summation (`pairwise_sum` in numpy/core/src/umath/loops).
    static func pairwiseSum(_ a: ArraySlice<Float>) -> Float {
        let n = a.count, b = a.startIndex
        if n < 8 {
            var res: Float = -0.0
            for i in 0..<n { res += a[b + i] }
            return res
        } else if n <= 128 {
            var r = [Float](repeating: 0, count: 8)
            for j in 0..<8 { r[j] = a[b + j] }
            var i = 8
            while i < n - (n % 8) {
                for j in 0..<8 { r[j] += a[b + i + j] }
                i += 8
            }
            var res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
            while i < n { res += a[b + i]; i += 1 }
            return res
        } else {
            var n2 = n / 2
            n2 -= n2 % 8
            return pairwiseSum(a[b..<(b + n2)]) + pairwiseSum(a[(b + n2)..<(b + n)])
        }
    }

    /// SoftErosion of a single-channel mask: `iterations - 1` times m = min(m, conv(m, K));
    /// then m = conv(m, K); values >= threshold become 1, the others are divided by the largest
    /// of them. conv is a 2-D cross-correlation with zero padding size/2 (same size out).
    ///
    /// Edge cases: when no value is below the threshold the mask is all ones; when the largest
    /// value below the threshold is 0 (e.g. an empty mask), those values stay 0 (the reference
    /// would divide 0 by 0 and produce NaN).
    ///
    /// m lives in the interior of the convolver's zero-padded plane, so each iteration is one
    /// convolution and one min pass, with two buffers allocated once per call.
    public static func softErode(_ mask: FloatImage, _ p: SoftErosion = SoftErosion()) -> FloatImage {
        precondition(mask.channels == 1, "softErode needs a single-channel mask")
        precondition(p.iterations >= 1)
        let kernel = softErosionKernel(size: p.kernelSize)
        let conv = Convolver(width: mask.width, height: mask.height, kernel: kernel, size: p.kernelSize,
                             threads: max(1, p.threads))
        let w = mask.width, n = mask.width * mask.height
        let padded = conv.makePadded()
        defer { padded.deallocate() }
        mask.values.withUnsafeBufferPointer { conv.load($0.baseAddress!, into: padded) }
        var c = [Float](unsafeUninitializedCapacity: n) { _, count in count = n }
        c.withUnsafeMutableBufferPointer { cb in
            let c = cb.baseAddress!
            for _ in 0..<(p.iterations - 1) {
                conv.apply(padded: padded, into: c)
                conv.partition.forRanges(mask.height, minPerThread: max(1, 65536 / max(1, w))) { rows in
                    for y in rows {
                        let m = padded + conv.interiorOffset(row: y), cr = c + y * w
                        for x in 0..<w { m[x] = min(m[x], cr[x]) }   // torch.min: NaN propagates; none arise here
                    }
                }
            }
            conv.apply(padded: padded, into: c)
            let t = p.threshold
            var below: Float = -.infinity
            for i in 0..<n where !(c[i] >= t) { below = max(below, c[i]) }
            for i in 0..<n {
                if c[i] >= t { c[i] = 1 } else if below > 0 { c[i] = c[i] / below }
            }
        }
        return FloatImage(uncheckedWidth: mask.width, height: mask.height, channels: 1, values: c)
    }

    /// A square-kernel, zero-padded, same-size 2-D cross-correlation over unsafe buffers.
    ///
    /// Speed: the kernel of SoftErosion is symmetric in x and y (K[y][x] = K[s-1-y][x] =
    /// K[y][s-1-x]), so for each output row the mirrored input rows (ky, s-1-ky) are first added
    /// into r+1 folded rows; then blocks of outputs are accumulated in vector registers over the
    /// (r+1) x (r+1) folded taps, adding the mirrored columns before one multiply: 81 multiplies
    /// instead of 289 per pixel for 17x17 (`mfs_symconv_row`, C compiled for AVX-512, AVX2 and
    /// the baseline, all rounding alike). Rows whose whole window is zero are skipped, and each
    /// row only visits the columns its window's nonzero inputs can reach (exact: the skipped
    /// outputs are sums of zeros). Rows are spread over the runtime's worker pool. A
    /// kernel that is not symmetric takes a plain (slower) loop with the same skipping.
    struct Convolver {
        let width: Int, height: Int, size: Int, radius: Int
        let kernel: [Float]
        let symmetric: Bool
        let threads: Int
        /// The worker pool split of `threads`.
        var partition: ThreadPartition { ThreadPartition(threads: threads) }
        /// Outputs per vector block of the C row kernel.
        static let block = Int(MFS_SYMCONV_BLOCK)

        init(width: Int, height: Int, kernel: [Float], size: Int, threads: Int) {
            precondition(kernel.count == size * size && size % 2 == 1)
            self.width = width
            self.height = height
            self.size = size
            radius = size / 2
            self.kernel = kernel
            self.threads = threads
            var sym = true
            for y in 0..<size {
                for x in 0..<size {
                    let v = kernel[y * size + x]
                    if v != kernel[(size - 1 - y) * size + x] || v != kernel[y * size + size - 1 - x] { sym = false }
                }
            }
            symmetric = sym
        }

        /// Row length of the padded plane.
        var paddedWidth: Int { width + 2 * radius }
        /// Where input row `row` starts in the padded plane.
        func interiorOffset(row: Int) -> Int { (row + radius) * paddedWidth + radius }

        /// A zeroed padded plane: (height + 2r) rows of `paddedWidth`, plus slack for the last
        /// block's over-read (those outputs are discarded). Deallocate it when done.
        func makePadded() -> UnsafeMutablePointer<Float> {
            let count = (height + 2 * radius) * paddedWidth + 2 * Convolver.block
            let p = UnsafeMutablePointer<Float>.allocate(capacity: count)
            p.initialize(repeating: 0, count: count)
            return p
        }

        /// Copies `input` (height x width) into the interior of a padded plane.
        func load(_ input: UnsafePointer<Float>, into padded: UnsafeMutablePointer<Float>) {
            for y in 0..<height { (padded + interiorOffset(row: y)).update(from: input + y * width, count: width) }
        }

        /// Allocating form, for tests: conv(input).
        func apply(_ input: [Float]) -> [Float] {
            precondition(input.count == width * height)
            let padded = makePadded()
            defer { padded.deallocate() }
            input.withUnsafeBufferPointer { load($0.baseAddress!, into: padded) }
            let n = width * height
            return [Float](unsafeUninitializedCapacity: n) { b, count in
                apply(padded: padded, into: b.baseAddress!)
                count = n
            }
        }

        /// out (height x width, every value written) = conv(the plane in `padded`'s interior).
        func apply(padded: UnsafePointer<Float>, into output: UnsafeMutablePointer<Float>) {
            let w = width, h = height, r = radius, s = size, B = Convolver.block
            let pw = paddedWidth
            // Nonzero column range per input row (lo > hi when the row is all zero).
            let lo = UnsafeMutablePointer<Int>.allocate(capacity: max(1, h))
            let hi = UnsafeMutablePointer<Int>.allocate(capacity: max(1, h))
            defer { lo.deallocate(); hi.deallocate() }
            partition.forRanges(h, minPerThread: max(1, 65536 / max(1, w))) { rows in
                for y in rows {
                    let row = padded + interiorOffset(row: y)
                    var a = Int.max, b = Int.min
                    for x in 0..<w where row[x] != 0 { if a == Int.max { a = x }; b = x }
                    lo[y] = a; hi[y] = b
                }
            }
            let symmetric = symmetric
            kernel.withUnsafeBufferPointer { kernBuffer in
                let pad = padded, out = output, kern = kernBuffer.baseAddress!
                partition.forRanges(h) { rows in
                    let rsLen = (pw + B - 1) / B * B + 2 * r + B
                    let folded = UnsafeMutablePointer<Float>.allocate(capacity: (r + 1) * rsLen)
                    let wq = UnsafeMutablePointer<Float>.allocate(capacity: (r + 1) * (r + 1))
                    defer { folded.deallocate(); wq.deallocate() }
                    for ky in 0...r { for kx in 0...r { wq[ky * (r + 1) + kx] = kern[ky * s + kx] } }
                    for y in rows {
                        let orow = out + y * w
                        // Columns of this output row that can be nonzero.
                        var a = Int.max, b = Int.min
                        for iy in max(0, y - r)...min(h - 1, y + r) where lo[iy] <= hi[iy] {
                            a = min(a, lo[iy]); b = max(b, hi[iy])
                        }
                        guard a <= b else { orow.update(repeating: 0, count: w); continue }
                        let x0 = max(0, a - r), x1 = min(w - 1, b + r)
                        let n = x1 - x0 + 1
                        orow.update(repeating: 0, count: x0)
                        (orow + x1 + 1).update(repeating: 0, count: w - 1 - x1)
                        if symmetric {
                            mfs_symconv_row(pad, pw, y, x0, n, Int32(r), wq, folded, rsLen, orow + x0)
                        } else {
                            let acc = orow + x0
                            acc.update(repeating: 0, count: n)
                            for ky in 0..<s {
                                let row = pad + (y + ky) * pw + x0
                                for kx in 0..<s {
                                    let wgt = kern[ky * s + kx]
                                    let src = row + kx
                                    for i in 0..<n { acc[i] += wgt * src[i] }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
