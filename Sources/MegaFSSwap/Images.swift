import Foundation

/// An 8-bit RGB image: `pixels` holds `width * height * 3` bytes, row-major, RGB interleaved
/// (the layout of a decoded JPEG/PNG and of numpy's HWC uint8 arrays).
public struct RGBImage: Sendable, Equatable {
    public let width: Int
    public let height: Int
    public var pixels: [UInt8]

    /// Wraps `pixels`; throws `ImageError.invalidArgument` unless it holds exactly
    /// `width * height * 3` bytes and both sides are positive.
    public init(width: Int, height: Int, pixels: [UInt8]) throws {
        guard width > 0, height > 0 else {
            throw ImageError.invalidArgument("image size \(width)x\(height) is not positive")
        }
        guard pixels.count == width * height * 3 else {
            throw ImageError.invalidArgument("\(pixels.count) bytes for a \(width)x\(height) RGB image, which needs \(width * height * 3)")
        }
        self.width = width
        self.height = height
        self.pixels = pixels
    }

    /// An image filled with one colour.
    public init(width: Int, height: Int, fill: (UInt8, UInt8, UInt8) = (0, 0, 0)) {
        precondition(width > 0 && height > 0, "image size \(width)x\(height) is not positive")
        self.width = width
        self.height = height
        var p = [UInt8](repeating: 0, count: width * height * 3)
        for i in 0..<(width * height) {
            p[3 * i] = fill.0; p[3 * i + 1] = fill.1; p[3 * i + 2] = fill.2
        }
        pixels = p
    }

    /// Unchecked internal initialiser.
    init(uncheckedWidth width: Int, height: Int, pixels: [UInt8]) {
        self.width = width
        self.height = height
        self.pixels = pixels
    }

    public var pixelCount: Int { width * height }

    /// The pixel at column `x`, row `y`.
    public subscript(x: Int, y: Int) -> (r: UInt8, g: UInt8, b: UInt8) {
        get {
            let i = (y * width + x) * 3
            return (pixels[i], pixels[i + 1], pixels[i + 2])
        }
        set {
            let i = (y * width + x) * 3
            pixels[i] = newValue.r; pixels[i + 1] = newValue.g; pixels[i + 2] = newValue.b
        }
    }

    /// The image as floats (HWC, values 0...255, not rounded or scaled).
    public var floatImage: FloatImage {
        FloatImage(uncheckedWidth: width, height: height, channels: 3, values: pixels.map { Float($0) })
    }
}

/// A float image, row-major with interleaved channels (HWC), the layout of the reference
/// pipeline's numpy arrays. One channel for masks, three (RGB) for pictures.
/// Values are not restricted: the post-processing works in the 0...255 range, masks in 0...1.
public struct FloatImage: Sendable, Equatable {
    public let width: Int
    public let height: Int
    public let channels: Int
    public var values: [Float]

    public init(width: Int, height: Int, channels: Int, values: [Float]) throws {
        guard width > 0, height > 0, channels > 0 else {
            throw ImageError.invalidArgument("image size \(width)x\(height)x\(channels) is not positive")
        }
        guard values.count == width * height * channels else {
            throw ImageError.invalidArgument("\(values.count) values for a \(width)x\(height)x\(channels) image, which needs \(width * height * channels)")
        }
        self.width = width
        self.height = height
        self.channels = channels
        self.values = values
    }

    /// A constant image.
    public init(width: Int, height: Int, channels: Int, repeating value: Float) {
        precondition(width > 0 && height > 0 && channels > 0, "image size \(width)x\(height)x\(channels) is not positive")
        self.width = width
        self.height = height
        self.channels = channels
        values = [Float](repeating: value, count: width * height * channels)
    }

    init(uncheckedWidth width: Int, height: Int, channels: Int, values: [Float]) {
        self.width = width
        self.height = height
        self.channels = channels
        self.values = values
    }

    /// Value of channel `c` at column `x`, row `y`.
    public subscript(x: Int, y: Int, c: Int) -> Float {
        get { values[(y * width + x) * channels + c] }
        set { values[(y * width + x) * channels + c] = newValue }
    }

    /// Single-channel images (masks): value at column `x`, row `y`.
    public subscript(x: Int, y: Int) -> Float {
        get { values[(y * width + x) * channels] }
        set { values[(y * width + x) * channels] = newValue }
    }

    /// HWC float image as an MegaFSGraph-style shape `[height, width, channels]` (the layout of
    /// the fixtures' HWC `.npy` files).
    public var hwcShape: [Int] { [height, width, channels] }
}

/// A face-parsing label map: one byte per pixel, CelebAMask-HQ numbering (0 background,
/// 1 skin, 2 l_brow, 3 r_brow, 4 l_eye, 5 r_eye, 6 eye_g, 7 l_ear, 8 r_ear, 9 ear_r, 10 nose,
/// 11 mouth, 12 u_lip, 13 l_lip, 14 neck, 15 neck_l, 16 cloth, 17 hair, 18 hat).
public struct LabelMap: Sendable, Equatable {
    /// Largest valid label (18, "hat").
    public static let maxLabel: UInt8 = 18

    public let width: Int
    public let height: Int
    public let labels: [UInt8]

    /// Throws `ImageError.invalidArgument` for a wrong count and `ImageError.invalidLabelMap`
    /// for a value above 18.
    public init(width: Int, height: Int, labels: [UInt8], name: String = "<memory>") throws {
        guard width > 0, height > 0, labels.count == width * height else {
            throw ImageError.invalidArgument("\(labels.count) labels for a \(width)x\(height) label map")
        }
        if let i = labels.firstIndex(where: { $0 > LabelMap.maxLabel }) {
            throw ImageError.invalidLabelMap(file: name,
                reason: "value \(labels[i]) at (x \(i % width), y \(i / width)) is not a CelebAMask-HQ label (0...18)")
        }
        self.width = width
        self.height = height
        self.labels = labels
    }

    public subscript(x: Int, y: Int) -> UInt8 { labels[y * width + x] }
}
