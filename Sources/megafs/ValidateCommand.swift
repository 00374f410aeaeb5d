import ArgumentParser
import Foundation
import MegaFSFormat
import MegaFSGraph
import MegaFSONNX
import MegaFSQuant
import MegaFSRuntime
import MegaFSSwap

struct Validate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure how far a model's outputs drift from a reference's (int8 against float32, ours against PyTorch).",
        discussion: """
            Runs CANDIDATE and the reference on the same inputs (given with --input/--inputs, or \
            seeded: images uniform in [-1,1], other inputs standard normal) and reports, per output, \
            the max and mean absolute error, the cosine similarity and, for images, the PSNR over the \
            reference's value range (the swap min-max normalises the generator's output, so this is \
            the PSNR of the image it blends); and, ranked, the drift of each layer output (conv, transposed conv, \
            gemm, matmul) present in both, so you see which layers to keep float32 \
            (`megafs convert --keep-fp32`).

            Each model is an ONNX file or a .mfs file. The reference may instead be a folder of golden \
            .npy outputs named <output>.npy; its inputs then come from --input/--inputs or from an \
            `inputs` folder beside it.

            --swap compares whole swaps instead: the final image of the swap with --models against the \
            one with --reference-models (e.g. int8 against float32), PSNR in 8-bit levels.

            Exit status 1 when a threshold (--min-psnr, --min-cosine, --max-abs) is crossed.
            Examples:
              megafs validate models-int8/generator.mfs --reference models/generator.mfs --min-psnr 40
              megafs validate generator.mfs --reference fixtures/generator/torch --report out/drift
              megafs validate --swap --models models-int8 --reference-models models --source a.png --target b.png
            """)

    @Argument(help: "The model to check (.onnx or .mfs).")
    var candidate: String?

    @Option(help: "The reference: a .onnx or .mfs model, or a folder of golden <output>.npy files.")
    var reference: String?

    @Option(name: .customLong("input"), help: "An input as NAME=path.npy (repeatable).")
    var inputs: [String] = []

    @Option(name: .customLong("inputs"), help: "A folder of <input name>.npy files.")
    var inputsFolder: String?

    @Option(help: "Seed of the generated inputs.")
    var seed: UInt64 = 0x5EED

    @Option(help: "Batch of the generated inputs (dynamic batch only).")
    var batch: Int = 1

    @Option(name: .customLong("layers"), help: "How many of the ranked layers to print.")
    var layerCount: Int = 10

    @Flag(name: .customLong("no-layers"), help: "Compare outputs only (less memory: layer outputs of the reference are kept for comparison).")
    var noLayers = false

    @Option(name: .customLong("min-psnr"), help: "Fail when an image output's PSNR (dB) is below this.")
    var minPSNR: Double?

    @Option(name: .customLong("min-cosine"), help: "Fail when an output's cosine similarity is below this.")
    var minCosine: Double?

    @Option(name: .customLong("max-abs"), help: "Fail when an output's max absolute error is above this.")
    var maxAbs: Double?

    @Option(help: "Write pictures here: reference | candidate | amplified difference for image outputs, a bar chart of per-layer drift (SVG), report.json and index.html.")
    var report: String?

    @Option(help: "Amplification of the difference heat map.")
    var gain: Float = 10

    @Flag(help: "Compare the whole swap chain: --models against --reference-models.")
    var swap = false

    @Option(help: "With --swap: the candidate's model folder.")
    var models: String?

    @Option(name: .customLong("reference-models"), help: "With --swap: the reference's model folder.")
    var referenceModels: String?

    @Option(help: "With --swap: the face to take.")
    var source: String?

    @Option(help: "With --swap: the image to put it in.")
    var target: String?

    @Option(name: .customLong("target-mask"), help: "With --swap: the target's face-parsing label map.")
    var targetMask: String?

    @Option(name: .customLong("type"), help: "With --swap: swapper variant (ftm, injection, lcr).")
    var swapperType: String = "ftm"

    @Flag(name: .customLong("int8-activations"), help: "Run the candidate in dynamic int8 mode (int8 activations too; see `megafs run --help`).")
    var int8Activations = false

    @Option(help: "Threads (default: all cores).")
    var threads: Int?

    @Flag(help: "Print the results as JSON.")
    var json = false

    @Flag(name: .shortAndLong, help: "No progress lines.")
    var quiet = false

    func validate() throws {
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
        guard batch >= 1 else { throw ValidationError("--batch must be at least 1") }
        if swap {
            guard candidate == nil, reference == nil else { throw ValidationError("--swap takes --models and --reference-models, not model files") }
            guard models != nil, referenceModels != nil else { throw ValidationError("--swap needs --models and --reference-models") }
            guard source != nil, target != nil else { throw ValidationError("--swap needs --source and --target") }
        } else {
            guard candidate != nil else { throw ValidationError("give the model to check (or --swap)") }
            guard reference != nil else { throw ValidationError("give --reference (a model, or a folder of golden .npy outputs)") }
        }
    }

    var thresholds: ValidationThresholds { ValidationThresholds(minPSNR: minPSNR, minCosine: minCosine, maxAbs: maxAbs) }

    func run() throws {
        let progress = ProgressLine(enabled: !quiet)
        do {
            if swap { try runSwap(progress) } else { try runModels(progress) }
        } catch let e as ExitCode {
            throw e
        } catch let e as CLIError {
            progress.finish(); throw e
        } catch {
            progress.finish(); throw CLIError("\(error)")
        }
    }

    // MARK: - models

    struct ModelsReport: Encodable {
        var candidate: String
        var reference: String
        var inputs: String
        var outputs: [ModelComparison.Output]
        var layers: [ModelComparison.Layer]
        var thresholds: ValidationThresholds
        var violations: [String]
        var passed: Bool
    }

    func runModels(_ progress: ProgressLine) throws {
        let candidatePath = candidate!, referencePath = reference!
        let options = SessionOptions(threads: threads)
        progress.update("loading \(candidatePath)", force: true)
        var candidateOptions = options
        candidateOptions.int8Activations = int8Activations
        let cand = try loadModel(candidatePath, options: candidateOptions)

        var isDirectory: ObjCBool = false
        let goldenFolder = FileManager.default.fileExists(atPath: referencePath, isDirectory: &isDirectory) && isDirectory.boolValue
        var (feeds, feedsDescription) = try readInputs(extraFolder: goldenFolder ? (referencePath as NSString).appendingPathComponent("../inputs") : nil)
        if feeds.isEmpty {
            guard !goldenFolder else {
                throw CLIError("golden outputs in \(referencePath) need the inputs that made them: give --input or --inputs")
            }
            feeds = try SeededInputs.make(for: cand.graph, seed: seed, batch: batch)
            feedsDescription = "seeded (seed \(seed), batch \(batch))"
        }

        let comparison: ModelComparison
        var candidateOutputs: [String: Tensor], referenceOutputs: [String: Tensor]
        if goldenFolder {
            progress.update("running \(candidatePath)", force: true)
            candidateOutputs = try cand.run(feeds)
            referenceOutputs = [:]
            for o in cand.outputs {
                let file = (referencePath as NSString).appendingPathComponent(o.name.fileSafeName + ".npy")
                if FileManager.default.fileExists(atPath: file) { referenceOutputs[o.name] = try NPY.read(path: file) }
            }
            guard !referenceOutputs.isEmpty else {
                throw CLIError("\(referencePath) has none of the candidate's outputs as .npy (\(cand.outputs.map { $0.name.fileSafeName + ".npy" }.joined(separator: ", ")))")
            }
            let outs = try ModelComparison.compareOutputs(candidate: candidateOutputs, reference: referenceOutputs,
                                                          order: cand.outputs.map(\.name))
            comparison = ModelComparison(outputs: outs, layers: [], inputs: feedsDescription)
        } else {
            progress.update("loading \(referencePath)", force: true)
            let ref = try loadModel(referencePath, options: options)
            progress.update("running both models", force: true)
            let r = try ModelComparison.compare(candidate: cand, reference: ref, inputs: feeds,
                                                inputsDescription: feedsDescription, layers: !noLayers)
            comparison = r.comparison
            candidateOutputs = r.candidate
            referenceOutputs = r.reference
        }
        progress.finish()

        let violations = thresholds.violations(comparison.outputs.map { ($0.name, $0.metrics) })
        let result = ModelsReport(candidate: candidatePath, reference: referencePath, inputs: comparison.inputs,
                                  outputs: comparison.outputs, layers: comparison.layers, thresholds: thresholds,
                                  violations: violations, passed: violations.isEmpty)
        if let report {
            try writeReport(result, to: report, images: comparison.outputs.filter(\.isImage).map { o in
                (o.name, referenceOutputs[o.name]!, candidateOutputs[o.name]!)
            }, layers: comparison.layers.map { ("\($0.value) (\($0.opType))", $0.metrics.drift) })
        }
        if json {
            try printJSON(result)
        } else {
            print("inputs: \(comparison.inputs)")
            for o in comparison.outputs { print(describe(o.name, o.shape, o.metrics)) }
            if !comparison.layers.isEmpty {
                print("layers by drift (1 - cosine), \(min(layerCount, comparison.layers.count)) of \(comparison.layers.count):")
                for l in comparison.layers.prefix(layerCount) {
                    print(String(format: "  %-10.3g %@ (%@) %@", l.metrics.drift, l.value, l.opType, l.node == l.value ? "" : l.node))
                }
            }
            if let report { print("report: \((report as NSString).appendingPathComponent("index.html"))") }
            for v in violations { print("FAILED: \(v)") }
        }
        if !violations.isEmpty { throw ExitCode(1) }
    }

    func describe(_ name: String, _ shape: [Int], _ m: DriftMetrics) -> String {
        var s = String(format: "%@ %@: max abs %.4g, mean abs %.4g, cosine %.8f", name, "\(shape)", m.maxAbsError, m.meanAbsError, m.cosine)
        if let p = m.psnr { s += p.isInfinite ? ", PSNR inf (identical)" : String(format: ", PSNR %.2f dB", p) }
        return s
    }

    func loadModel(_ path: String, options: SessionOptions) throws -> InferenceSession {
        guard FileManager.default.fileExists(atPath: path) else { throw CLIError("no such file: \(path)") }
        return try loadSession(path, onnx: path.lowercased().hasSuffix(".onnx"), options: options)
    }

    /// Inputs from --input and --inputs (and `extraFolder` when neither is given and it exists).
    func readInputs(extraFolder: String?) throws -> ([String: Tensor], String) {
        var feeds: [String: Tensor] = [:]
        var sources: [String] = []
        var folder = inputsFolder
        if folder == nil, inputs.isEmpty, let extra = extraFolder, FileManager.default.fileExists(atPath: extra) {
            folder = (extra as NSString).standardizingPath
        }
        if let folder {
            guard let files = try? FileManager.default.contentsOfDirectory(atPath: folder) else { throw CLIError("cannot list \(folder)") }
            for f in files.sorted() where f.hasSuffix(".npy") {
                feeds[String(f.dropLast(4))] = try NPY.read(path: (folder as NSString).appendingPathComponent(f))
            }
            sources.append(folder)
        }
        for spec in inputs {
            guard let (name, path) = Run.splitInputSpec(spec) else {
                throw CLIError("--input takes NAME=path.npy, got '\(spec)'")
            }
            feeds[name] = try NPY.read(path: path)
            sources.append(path)
        }
        return (feeds, sources.joined(separator: ", "))
    }

    // MARK: - report

    func writeReport(_ result: ModelsReport, to dir: String, images: [(String, Tensor, Tensor)],
                     layers: [(String, Double)]) throws {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        var html = "<!doctype html><meta charset=utf-8><title>megafs validate</title><body style=\"font-family:sans-serif\">"
        html += "<h1>\(result.candidate.htmlEscaped) against \(result.reference.htmlEscaped)</h1><p>inputs: \(result.inputs.htmlEscaped)</p><ul>"
        for o in result.outputs { html += "<li>\(describe(o.name, o.shape, o.metrics).htmlEscaped)</li>" }
        html += "</ul>"
        for (name, ref, cand) in images {
            let file = "\(name.fileSafeName)-comparison.png"
            try ImageIO.write(try DriftPicture.comparison(reference: ref, candidate: cand, gain: gain),
                              to: (dir as NSString).appendingPathComponent(file))
            html += "<h2>\(name.htmlEscaped): reference | candidate | difference x\(gain)</h2><img src=\"\(file)\" style=\"max-width:100%\">"
        }
        if !layers.isEmpty {
            let svg = DriftPicture.barChartSVG(title: "Layer drift (1 - cosine), most first", bars: layers.prefix(60).map { ($0.0, $0.1) })
            try svg.write(toFile: (dir as NSString).appendingPathComponent("layers.svg"), atomically: true, encoding: .utf8)
            html += "<h2>Layers</h2><img src=\"layers.svg\">"
        }
        for v in result.violations { html += "<p style=\"color:#b00\">FAILED: \(v.htmlEscaped)</p>" }
        try html.write(toFile: (dir as NSString).appendingPathComponent("index.html"), atomically: true, encoding: .utf8)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        try encoder.encode(result).write(to: URL(fileURLWithPath: (dir as NSString).appendingPathComponent("report.json")), options: .atomic)
    }

    // MARK: - swap

    struct SwapReport: Encodable {
        var models: String
        var referenceModels: String
        var image: DriftMetrics
        var generated: DriftMetrics
        var thresholds: ValidationThresholds
        var violations: [String]
        var passed: Bool
    }

    func runSwap(_ progress: ProgressLine) throws {
        let decode = ImageDecodeOptions()
        let sourceImage = try ImageIO.read(path: source!, options: decode)
        let targetImage = try ImageIO.read(path: target!, options: decode)
        let mask: MaskSource = try targetMask.map { .labels(try LabelMap.read(path: $0, options: decode)) } ?? .ellipse()
        func swapWith(_ folder: String, int8: Bool) throws -> SwapResult {
            let bundle = try ModelBundle(directory: folder, swapperType: swapperType)
            progress.update("swapping with \(folder)", force: true)
            let networks = try SessionSwapNetworks(bundle: bundle, options: SessionOptions(threads: threads, int8Activations: int8))
            return try SwapPipeline(networks: networks).run(source: sourceImage, target: targetImage, options: SwapOptions(mask: mask))
        }
        let cand = try swapWith(models!, int8: int8Activations)
        let ref = try swapWith(referenceModels!, int8: false)
        progress.finish()
        guard cand.image.width == ref.image.width, cand.image.height == ref.image.height else {
            throw CLIError("the two swaps have different sizes: \(cand.image.width)x\(cand.image.height) and \(ref.image.width)x\(ref.image.height)")
        }
        let image = DriftMetrics(reference: ref.image.pixels.map(Float.init), candidate: cand.image.pixels.map(Float.init), psnr: .fixed(255))
        let generated = DriftMetrics(reference: ref.generated, candidate: cand.generated, psnr: .referenceRange)
        let violations = thresholds.violations([("swapped image", image)])
        let result = SwapReport(models: models!, referenceModels: referenceModels!, image: image, generated: generated,
                                thresholds: thresholds, violations: violations, passed: violations.isEmpty)
        if let report {
            try FileManager.default.createDirectory(atPath: report, withIntermediateDirectories: true)
            try ImageIO.write(try Grid.swap(source: ref.image, target: cand.image, swapped: diffImage(ref.image, cand.image), refined: nil),
                              to: (report as NSString).appendingPathComponent("swap-comparison.png"))
        }
        if json { try printJSON(result) } else {
            print(String(format: "swapped image (%dx%d, 8-bit): PSNR %@, max abs %.0f levels, mean abs %.3f levels",
                         cand.image.width, cand.image.height, image.psnr!.isInfinite ? "inf (identical)" : String(format: "%.2f dB", image.psnr!),
                         image.maxAbsError, image.meanAbsError))
            print(describe("generator output", cand.generated.shape, generated))
            if let report { print("report: \((report as NSString).appendingPathComponent("swap-comparison.png")) (reference | candidate | difference x\(gain))") }
            for v in violations { print("FAILED: \(v)") }
        }
        if !violations.isEmpty { throw ExitCode(1) }
    }

    func diffImage(_ a: RGBImage, _ b: RGBImage) -> RGBImage {
        var out = a
        for i in 0..<a.pixels.count {
            let d = abs(Float(a.pixels[i]) - Float(b.pixels[i])) * gain
            out.pixels[i] = UInt8(min(255, d))
        }
        return out
    }
}

extension String {
    var fileSafeName: String { Run.fileSafe(self) }

    var htmlEscaped: String { DriftPicture.escapeMarkup(self) }
}
