import Foundation

/// Side-by-side comparison images.
public enum Grid {
    /// Places `images` left to right (e.g. source | target | swapped | refined), each resized
    /// with half-pixel bilinear (no antialiasing) to `height` rows keeping its aspect ratio
    /// (width rounded to nearest, at least 1), separated by `gap` columns of `background`.
    /// `height` defaults to the largest input height. Images are top-aligned; all have the
    /// same height so there is no padding besides the gaps.
    public static func sideBySide(_ images: [RGBImage], height: Int? = nil, gap: Int = 8,
                                  background: (UInt8, UInt8, UInt8) = (255, 255, 255)) throws -> RGBImage {
        guard !images.isEmpty else { throw ImageError.invalidArgument("a grid needs at least one image") }
        let h = height ?? images.map(\.height).max()!
        guard h > 0, h <= 1 << 15, gap >= 0, gap <= 1 << 12 else {
            throw ImageError.invalidArgument("grid height \(h) / gap \(gap) out of range")
        }
        let scaled = images.map { img -> RGBImage in
            let w = max(1, Int((Double(img.width) * Double(h) / Double(img.height)).rounded()))
            return Resize.bilinearRGB(img, width: w, height: h)
        }
        let total = scaled.map(\.width).reduce(0, +) + gap * (scaled.count - 1)
        var out = RGBImage(width: total, height: h, fill: background)
        var x0 = 0
        for img in scaled {
            for y in 0..<h {
                let src = y * img.width * 3, dst = (y * total + x0) * 3
                out.pixels.replaceSubrange(dst..<(dst + img.width * 3), with: img.pixels[src..<(src + img.width * 3)])
            }
            x0 += img.width + gap
        }
        return out
    }
}

extension Grid {
    /// The swap's comparison image: source | target | swapped (| refined), at the height of the
    /// swapped result, 8-pixel white gaps.
    public static func swap(source: RGBImage, target: RGBImage, swapped: RGBImage, refined: RGBImage? = nil) throws -> RGBImage {
        try sideBySide([source, target, swapped] + (refined.map { [$0] } ?? []), height: swapped.height)
    }
}
