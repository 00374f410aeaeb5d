import ArgumentParser
import Foundation
import MegaFSRuntime
import MegaFSSwap

struct Swap: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Swap the source's face onto the target with the converted MegaFS models.",
        discussion: """
            The released MegaFS pipeline: both faces resized to 256x256, the encoder on [target,
            source], the face transfer module mixes the source's identity into the target's
            latents, the StyleGAN2 generator renders the swapped face, which is min-max normalised
            and blended into the target under a soft face mask.

            The mask comes from the target's face-parsing label map (--target-mask: an 8-bit grey
            PNG with CelebAMask-HQ labels 0..18, same aspect ratio as the target). Without one, a
            default soft ellipse centred on an aligned face is used (centre at 50%/56% of width and
            height, semi-axes 28%/32%), smoothed the same way.

            Models come from --models (default: $MEGAFS_MODELS, else ./models, which
            scripts/demo.sh fills from the bundled fixtures): a folder with models.json or the
            default names encoder.mfs, swapper-<type>.mfs and generator.mfs.
            """)

    @Option(help: "The face to take (JPEG or PNG).")
    var source: String

    @Option(help: "The image to put it in (JPEG or PNG).")
    var target: String

    @Option(name: .customLong("target-mask"), help: "The target's face-parsing label map (PNG, CelebAMask-HQ labels).")
    var targetMask: String?

    @Option(name: .customLong("type"), help: "Swapper variant: ftm, injection or lcr.")
    var swapperType: SwapperType = .ftm

    @Flag(help: "Also run the released code's refine pass (re-encode and regenerate the blended result).")
    var refine = false

    @Option(help: "Folder with the converted models.")
    var models: String?

    @Option(name: [.short, .customLong("output")], help: "Where to write the swapped image (.png or .jpg).")
    var output: String

    @Option(help: "Also write source | target | swapped (| refined) side by side to this path.")
    var grid: String?

    @Option(help: "Threads (default: all cores).")
    var threads: Int?

    @Option(name: .customLong("max-pixels"), help: "Refuse input images with more pixels than this (checked before decoding).")
    var maxPixels: Int = ImageDecodeOptions.defaultMaxPixels

    @Flag(help: "Print timings and paths as JSON.")
    var json = false

    @Flag(name: .shortAndLong, help: "No progress lines.")
    var quiet = false

    enum SwapperType: String, ExpressibleByArgument, CaseIterable { case ftm, injection, lcr }

    func validate() throws {
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
        guard ImageFormat(pathExtension: output) != nil else {
            throw ValidationError("--output must end in .png, .jpg or .jpeg")
        }
        if let grid, ImageFormat(pathExtension: grid) == nil {
            throw ValidationError("--grid must end in .png, .jpg or .jpeg")
        }
    }

    struct Report: Encodable {
        var output: String
        var grid: String?
        var models: [String: String]
        var loadMilliseconds: Double
        var stages: [StageTiming]
        var totalMilliseconds: Double
    }

    func run() throws {
        let progress = ProgressLine(enabled: !quiet)
        let started = Date()
        do {
            let folder = models ?? ProcessInfo.processInfo.environment["MEGAFS_MODELS"] ?? "models"
            let bundle = try ModelBundle(directory: folder, swapperType: swapperType.rawValue)
            let decode = ImageDecodeOptions(maxPixels: maxPixels)
            progress.update("reading images", force: true)
            let sourceImage = try ImageIO.read(path: source, options: decode)
            let targetImage = try ImageIO.read(path: target, options: decode)
            let mask: MaskSource = try targetMask.map { .labels(try LabelMap.read(path: $0, options: decode)) } ?? .ellipse()

            progress.update("loading models from \(folder)", force: true)
            let loadStart = Date()
            let networks = try SessionSwapNetworks(encoderPath: bundle.encoderPath, swapperPath: bundle.swapperPath,
                                                   generatorPath: bundle.generatorPath,
                                                   options: SessionOptions(threads: threads))
            let loadMs = Date().timeIntervalSince(loadStart) * 1000

            let result = try SwapPipeline(networks: networks).run(
                source: sourceImage, target: targetImage, options: SwapOptions(mask: mask, refine: refine)
            ) { stage in progress.update("\(stage)…", force: true) }

            progress.update("writing \(output)", force: true)
            try ImageIO.write(result.refined ?? result.image, to: output)
            if let grid {
                let picture = try Grid.swap(source: sourceImage, target: targetImage, swapped: result.image, refined: result.refined)
                try ImageIO.write(picture, to: grid)
            }
            progress.finish()
            let report = Report(
                output: output, grid: grid,
                models: ["encoder": bundle.encoderPath, "swapper": bundle.swapperPath, "generator": bundle.generatorPath],
                loadMilliseconds: loadMs, stages: result.timings,
                totalMilliseconds: Date().timeIntervalSince(started) * 1000)
            if json {
                try printJSON(report)
            } else {
                print("wrote \(output)" + (grid.map { " and \($0)" } ?? ""))
                let stages = result.timings.map { String(format: "%@ %.0f ms", $0.stage, $0.milliseconds) }
                print(String(format: "load %.0f ms; ", loadMs) + stages.joined(separator: ", "))
            }
        } catch let error as CLIError {
            progress.finish()
            throw error
        } catch {
            progress.finish()
            throw CLIError("\(error)")
        }
    }
}
