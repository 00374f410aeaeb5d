import Dispatch
import Foundation
import MegaFSGraph

/// The three MegaFS networks as the swap calls them, independent of how they are run (the
/// runtime's `InferenceSession`s via `SessionSwapNetworks`, or anything else, e.g. a test
/// double).
public protocol SwapNetworks {
    /// Encoder: images (N,3,256,256) in [-1,1] -> `latents` (N,18,D) and `struct` (N,C,4,4).
    func encode(_ images: Tensor) throws -> (latents: Tensor, structure: Tensor)
    /// Face transfer module: `idd` (1,18,D) from the source, `att` (1,18,D) from the target ->
    /// swapped latents (1,18,D).
    func swap(identity: Tensor, attributes: Tensor) throws -> Tensor
    /// Generator: `struct` (1,C,4,4) and latents (1,18,D) -> image (1,3,G,G), roughly in [-1,1].
    func generate(structure: Tensor, latents: Tensor) throws -> Tensor
}

/// Where the blend mask comes from.
public enum MaskSource: Sendable {
    /// The target's face-parsing labels (the released behaviour).
    case labels(LabelMap)
    /// No labels: the default soft ellipse (`FaceMask.defaultMask`).
    case ellipse(FaceMask.Ellipse = FaceMask.Ellipse())
    /// A ready mask (one channel, values 0...1, any size: resized to the generator's size with
    /// half-pixel bilinear, not eroded again).
    case mask(FloatImage)
}

public struct SwapOptions: Sendable {
    public var mask: MaskSource
    public var outputSize: Postprocess.OutputSize
    public var rounding: Postprocess.Rounding
    /// Run the released code's "refine" pass after the swap.
    public var refine: Bool
    public var erosion: FaceMask.SoftErosion

    public init(mask: MaskSource = .ellipse(), outputSize: Postprocess.OutputSize = .target,
                rounding: Postprocess.Rounding = .nearest, refine: Bool = false,
                erosion: FaceMask.SoftErosion = FaceMask.SoftErosion()) {
        self.mask = mask
        self.outputSize = outputSize
        self.rounding = rounding
        self.refine = refine
        self.erosion = erosion
    }
}

public struct SwapResult: Sendable {
    /// The swapped face blended into the target, 8-bit, at the size `outputSize` asks for.
    public var image: RGBImage
    /// The refined result when `refine` was asked for.
    public var refined: RGBImage?
    /// The soft blend mask at the generator's size.
    public var mask: FloatImage
    /// The swap's post-processing intermediates (generator size).
    public var composite: Postprocess.Composite
    /// The generator's raw output (1,3,G,G).
    public var generated: Tensor
    /// Wall time of each stage, in order.
    public var timings: [StageTiming]
}

/// How long one stage of the swap took.
public struct StageTiming: Sendable, Codable {
    public var stage: String
    public var milliseconds: Double
}

/// The swap end to end (architecture notes, section 0): pre-process, encode [target, source],
/// swap (idd = source, att = target), generate from the target's struct, post-process and blend;
/// optionally refine: encode the blended result (at the generator's size, rounded to 8 bits),
/// regenerate from its own latents and struct, post-process and blend again with the same target
/// and mask.
public struct SwapPipeline {
    public let networks: any SwapNetworks

    public init(networks: any SwapNetworks) { self.networks = networks }

    /// Runs the swap. `progress` is told each stage's name as it starts.
    public func run(source: RGBImage, target: RGBImage, options: SwapOptions = SwapOptions(),
                    progress: ((String) -> Void)? = nil) throws -> SwapResult {
        var timings: [StageTiming] = []
        func stage<T>(_ name: String, _ body: () throws -> T) rethrows -> T {
            progress?(name)
            let start = DispatchTime.now().uptimeNanoseconds
            defer {
                timings.append(StageTiming(stage: name, milliseconds: Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6))
            }
            return try body()
        }
        let batch = stage("preprocess") { Preprocess.batch([target, source]) }
        let (latents, structure) = try stage("encode") { try networks.encode(batch) }
        try expectBatch(latents, 2, "encoder latents")
        try expectBatch(structure, 2, "encoder struct")
        let swapped = try stage("swap") { try networks.swap(identity: latents.batchItem(1), attributes: latents.batchItem(0)) }
        let generated = try stage("generate") { try networks.generate(structure: structure.batchItem(0), latents: swapped) }
        let g = try generatorSize(generated)
        let mask = try stage("mask") {
            try Self.mask(options.mask, target: target, width: g.width, height: g.height, erosion: options.erosion)
        }
        let composite = try stage("blend") {
            try Postprocess.composite(generated: generated, target: target, mask: mask,
                                      outputSize: options.outputSize, rounding: options.rounding)
        }
        var refined: RGBImage?
        if options.refine {
            refined = try stage("refine") {
                let blended8 = try Postprocess.toRGB8(composite.blended, rounding: options.rounding)
                let (l2, s2) = try networks.encode(Preprocess.batch([blended8]))
                try expectBatch(l2, 1, "encoder latents (refine)")
                try expectBatch(s2, 1, "encoder struct (refine)")
                let regenerated = try networks.generate(structure: s2, latents: l2)
                return try Postprocess.composite(generated: regenerated, target: target, mask: mask,
                                                 outputSize: options.outputSize, rounding: options.rounding).image
            }
        }
        return SwapResult(image: composite.image, refined: refined, mask: mask, composite: composite,
                          generated: generated, timings: timings)
    }

    /// The soft mask for `source` at the generator's size. A label map must have the target's
    /// aspect ratio (within 1%): both are resized to the generator's square independently.
    public static func mask(_ source: MaskSource, target: RGBImage, width: Int, height: Int,
                            erosion: FaceMask.SoftErosion = FaceMask.SoftErosion()) throws -> FloatImage {
        switch source {
        case .labels(let labels):
            let a = Double(labels.width) / Double(labels.height), b = Double(target.width) / Double(target.height)
            guard abs(a / b - 1) <= 0.01 else {
                throw ImageError.invalidLabelMap(file: "<labels>", reason: "its size \(labels.width)x\(labels.height) does not have the aspect ratio of the target (\(target.width)x\(target.height))")
            }
            return FaceMask.fromLabels(labels, width: width, height: height, erosion: erosion)
        case .ellipse(let e):
            return FaceMask.defaultMask(width: width, height: height, ellipse: e, erosion: erosion)
        case .mask(let m):
            guard m.channels == 1 else { throw ImageError.invalidArgument("a blend mask needs one channel, got \(m.channels)") }
            return Resize.bilinear(m, width: width, height: height)
        }
    }

    private func expectBatch(_ t: Tensor, _ n: Int, _ what: String) throws {
        guard t.dtype == .float32, t.rank >= 2, t.shape[0] == n else {
            throw ImageError.invalidArgument("\(what) is \(t), expected float32 with batch \(n)")
        }
    }

    private func generatorSize(_ t: Tensor) throws -> (width: Int, height: Int) {
        guard t.dtype == .float32, t.rank == 4, t.shape[0] == 1, t.shape[1] == 3, t.shape[2] > 0, t.shape[3] > 0 else {
            throw ImageError.invalidArgument("generator output is \(t), expected float32 (1,3,H,W)")
        }
        return (t.shape[3], t.shape[2])
    }
}

extension Tensor {
    /// Item `i` of the leading (batch) axis, keeping the axis: shape (1, rest...). Copies.
    func batchItem(_ i: Int) -> Tensor {
        precondition(rank >= 1 && i >= 0 && i < shape[0])
        let itemBytes = byteCount / shape[0]
        let raw = UnsafeRawBufferPointer(rebasing: bytes[(i * itemBytes)..<((i + 1) * itemBytes)])
        return try! Tensor(dtype: dtype, shape: [1] + shape.dropFirst(), bytes: raw)
    }
}
