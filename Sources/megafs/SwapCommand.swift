import ArgumentParser
import Foundation
import MegaFSRuntime
import MegaFSSwap

struct Swap: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Swap the source's face onto the target with the converted MegaFS models.",
        discussion: """
            The released MegaFS pipeline: both faces resized to 256x256, the encoder on [target, \
            source], the face transfer module mixes the source's identity into the target's \
            latents, the StyleGAN2 generator renders the swapped face, which is min-max normalised \
            and blended into the target under a soft face mask.

            The mask comes from the target's face-parsing label map (--target-mask: an 8-bit grey \
            PNG with CelebAMask-HQ labels 0..18, same aspect ratio as the target). Without one, a \
            default soft ellipse centred on an aligned face is used (centre at 50%/56% of width and \
            height, semi-axes 28%/32%), smoothed the same way.

            Models come from --models (default: $MEGAFS_MODELS, else ./models, which \
            scripts/demo.sh fills from the bundled fixtures): a folder with models.json or the \
            default names encoder.mfs, swapper-<type>.mfs and generator.mfs.
            """)

    @Option(help: "The face to take (JPEG or PNG).")
    var source: String?

    @Option(help: "The image to put it in (JPEG or PNG).")
    var target: String?

    @Option(help: ArgumentHelp("Many swaps: a CSV file of rows `source,target[,mask]` (paths relative to the file).",
                               discussion: "-o is then a folder: one image per row, named <row>-<target name>.png, plus summary.json. A bad row is reported and skipped; rows whose image exists are skipped, so an interrupted run resumes."))
    var pairs: String?

    @Option(help: "With --pairs: take every N-th row starting at row I (1-based), written I/N, so N machines split one list.")
    var shard: String?

    @Option(name: .customLong("target-mask"), help: "The target's face-parsing label map (PNG, CelebAMask-HQ labels).")
    var targetMask: String?

    @Option(name: .customLong("type"), help: "Swapper variant: ftm, injection or lcr.")
    var swapperType: SwapperType = .ftm

    @Flag(help: "Also run the released code's refine pass (re-encode and regenerate the blended result).")
    var refine = false

    @Option(help: "Folder with the converted models.")
    var models: String?

    @Option(name: [.short, .customLong("output")], help: "Where to write the swapped image (.png or .jpg); with --pairs, a folder.")
    var output: String

    @Option(help: "Also write source | target | swapped (| refined) side by side to this path.")
    var grid: String?

    @Flag(name: .customLong("int8-activations"), help: "Dynamic int8 mode for int8-weight models: quantize each convolution's input per call and multiply with int8 dot products (faster where the CPU has VNNI; a little more drift).")
    var int8Activations = false

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
        if pairs != nil {
            guard source == nil, target == nil, grid == nil else {
                throw ValidationError("--pairs replaces --source, --target and --grid")
            }
            _ = try shardSpec()
            return
        }
        guard source != nil, target != nil else { throw ValidationError("give --source and --target, or --pairs") }
        guard shard == nil else { throw ValidationError("--shard needs --pairs") }
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

    /// (index, count) from "I/N", 0-based index.
    func shardSpec() throws -> (index: Int, count: Int) {
        guard let shard else { return (0, 1) }
        let parts = shard.split(separator: "/").map { Int($0) }
        guard parts.count == 2, let i = parts[0], let n = parts[1], n >= 1, (1...n).contains(i) else {
            throw ValidationError("--shard must be I/N with 1 <= I <= N, e.g. 2/4")
        }
        return (i - 1, n)
    }

    var modelFolder: String { models ?? ProcessInfo.processInfo.environment["MEGAFS_MODELS"] ?? "models" }

    func loadNetworks(_ progress: ProgressLine) throws -> (ModelBundle, SessionSwapNetworks, Double) {
        let bundle = try ModelBundle(directory: modelFolder, swapperType: swapperType.rawValue)
        progress.update("loading models from \(modelFolder)", force: true)
        let loadStart = Date()
        let networks = try SessionSwapNetworks(bundle: bundle,
                                               options: SessionOptions(threads: threads, int8Activations: int8Activations))
        return (bundle, networks, Date().timeIntervalSince(loadStart) * 1000)
    }

    func run() throws {
        if let pairs { return try runPairs(pairs) }
        guard let source, let target else { throw ValidationError("give --source and --target") }
        let progress = ProgressLine(enabled: !quiet)
        let started = Date()
        do {
            let decode = ImageDecodeOptions(maxPixels: maxPixels)
            progress.update("reading images", force: true)
            let sourceImage = try ImageIO.read(path: source, options: decode)
            let targetImage = try ImageIO.read(path: target, options: decode)
            let mask: MaskSource = try targetMask.map { .labels(try LabelMap.read(path: $0, options: decode)) } ?? .ellipse()
            let (bundle, networks, loadMs) = try loadNetworks(progress)

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

    struct PairsSummary: Encodable {
        struct Row: Encodable { var row: Int; var source: String; var target: String; var output: String?; var status: String; var error: String?; var milliseconds: Double?; var stages: [String: Double]? }
        var rows: [Row]
        var done: Int
        var skipped: Int
        var failed: Int
        var seconds: Double
    }

    func runPairs(_ csvPath: String) throws {
        let progress = ProgressLine(enabled: !quiet)
        let started = Date()
        guard let text = try? String(contentsOfFile: csvPath, encoding: .utf8) else {
            throw CLIError("cannot read \(csvPath)")
        }
        let base = (csvPath as NSString).deletingLastPathComponent
        func resolve(_ p: String) -> String { p.hasPrefix("/") || base.isEmpty ? p : (base as NSString).appendingPathComponent(p) }
        let list = PairList(csv: text)
        let (shardIndex, shardCount) = try shardSpec()
        let mine = list.shard(index: shardIndex, count: shardCount)
        try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
        let (_, networks, _) = try loadNetworks(progress)
        let pipeline = SwapPipeline(networks: networks)
        let decode = ImageDecodeOptions(maxPixels: maxPixels)
        var summary = PairsSummary(rows: [], done: 0, skipped: 0, failed: 0, seconds: 0)
        var swapSeconds = 0.0
        for (i, entry) in mine.enumerated() {
            let line = entry.line, fields = entry.fields
            let sourcePath = fields.count > 0 ? fields[0] : "", targetPath = fields.count > 1 ? fields[1] : ""
            let name = "\(line)-" + ((targetPath as NSString).lastPathComponent as NSString).deletingPathExtension + ".png"
            let outPath = (output as NSString).appendingPathComponent(name)
            var row = PairsSummary.Row(row: line, source: sourcePath, target: targetPath, output: outPath, status: "done")
            let remaining = Double(mine.count - i)
            let rate = summary.done > 0 ? Double(summary.done) / swapSeconds : 0
            let eta = rate > 0 ? String(format: ", %.0f s left", remaining / rate) : ""
            progress.update(String(format: "[%d/%d] %.2f swaps/s%@  row %d", i + 1, mine.count, rate, eta, line), force: false)
            if FileManager.default.fileExists(atPath: outPath) {
                row.status = "skipped (output exists)"
                summary.skipped += 1
                summary.rows.append(row)
                continue
            }
            let rowStart = Date()
            do {
                let paths = try entry.paths()
                let s = try ImageIO.read(path: resolve(paths.source), options: decode)
                let t = try ImageIO.read(path: resolve(paths.target), options: decode)
                let mask: MaskSource = try paths.mask.map { .labels(try LabelMap.read(path: resolve($0), options: decode)) } ?? .ellipse()
                let result = try pipeline.run(source: s, target: t, options: SwapOptions(mask: mask, refine: refine))
                let writeStart = DispatchTime.now().uptimeNanoseconds
                try ImageIO.write(result.refined ?? result.image, to: outPath)
                var stages = Dictionary(result.timings.map { ($0.stage, $0.milliseconds) }, uniquingKeysWith: +)
                stages["write"] = Double(DispatchTime.now().uptimeNanoseconds - writeStart) / 1e6
                row.stages = stages
                row.milliseconds = Date().timeIntervalSince(rowStart) * 1000
                swapSeconds += Date().timeIntervalSince(rowStart)
                summary.done += 1
            } catch {
                row.status = "failed"
                row.error = "\(error)"
                row.output = nil
                summary.failed += 1
                progress.finish()
                FileHandle.standardError.write(Data("row \(line): \(error)\n".utf8))
            }
            summary.rows.append(row)
        }
        progress.finish()
        summary.seconds = Date().timeIntervalSince(started)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try encoder.encode(summary).write(to: URL(fileURLWithPath: (output as NSString).appendingPathComponent("summary.json")), options: .atomic)
        if json { try printJSON(summary) } else {
            print("\(summary.done) swapped, \(summary.skipped) skipped, \(summary.failed) failed of \(mine.count) rows" +
                  (shardCount > 1 ? " (shard \(shardIndex + 1)/\(shardCount) of \(list.rows.count))" : "") +
                  String(format: " in %.1f s; summary in %@", summary.seconds, (output as NSString).appendingPathComponent("summary.json")))
        }
        if summary.failed > 0 && summary.done == 0 && summary.skipped == 0 { throw ExitCode(1) }
    }
}
