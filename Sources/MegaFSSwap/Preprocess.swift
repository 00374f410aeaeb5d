import Foundation
import MegaFSGraph

/// The encoder's input, as the released code prepares it: resize to `size` x `size` with
/// half-pixel bilinear (`Resize`, i.e. PyTorch `F.interpolate(mode="bilinear",
/// align_corners=False)`, no antialiasing), scale to [0,1] (/255), normalise with mean 0.5 and
/// std 0.5 per channel to [-1,1], NCHW float32. Arithmetic in Double, rounded to float32 once at
/// the end, as `megafs_pipeline.preprocess` does.
public enum Preprocess {
    /// The encoder's input side (256).
    public static let encoderSize = 256

    /// One image as a (1, 3, size, size) tensor.
    public static func tensor(_ image: RGBImage, size: Int = Preprocess.encoderSize) -> Tensor {
        batch([image], size: size)
    }

    /// A batch (N, 3, size, size), in the order given (the swap encodes [target, source]).
    public static func batch(_ images: [RGBImage], size: Int = Preprocess.encoderSize) -> Tensor {
        precondition(!images.isEmpty && size > 0)
        let plane = size * size
        var values = [Float](repeating: 0, count: images.count * 3 * plane)
        values.withUnsafeMutableBufferPointer { dst in
            for (n, image) in images.enumerated() {
                let base = n * 3 * plane
                image.pixels.withUnsafeBufferPointer { src in
                    Resize.resample(width: image.width, height: image.height, channels: 3,
                                    outWidth: size, outHeight: size,
                                    load: { Double(src[$0]) },
                                    store: { i, v in
                                        let ch = i % 3, p = i / 3
                                        dst[base + ch * plane + p] = Float((v / 255.0 - 0.5) / 0.5)
                                    })
                }
            }
        }
        return Tensor(values, shape: [images.count, 3, size, size])
    }
}
