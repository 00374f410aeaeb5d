import Foundation
import MegaFSFormat
import MegaFSGraph

/// The converted encoder, swappers and generator that belong together, found in one folder.
///
/// The folder holds `models.json`:
/// `{"encoder": "encoder.mfs", "generator": "generator.mfs",
///   "swappers": {"ftm": "swapper-ftm.mfs", "injection": "...", "lcr": "..."}}`
/// (paths relative to the folder). Without it, those default file names are looked for.
/// Checking reads only the files' headers: their recorded kinds, and that latent sizes and the
/// structure tensor fit from encoder to swapper to generator.
public struct ModelBundle: Sendable {
    public static let manifestName = "models.json"

    public struct Manifest: Codable, Sendable {
        public var encoder: String
        public var generator: String
        public var swappers: [String: String]

        public static let defaults = Manifest(
            encoder: "encoder.mfs", generator: "generator.mfs",
            swappers: ["ftm": "swapper-ftm.mfs", "injection": "swapper-injection.mfs", "lcr": "swapper-lcr.mfs"])
    }

    public enum Error: Swift.Error, CustomStringConvertible {
        case missing(String)
        case mismatch(String)

        public var description: String {
            switch self {
            case .missing(let m): return m
            case .mismatch(let m): return "models do not fit together: \(m)"
            }
        }
    }

    public let directory: String
    public let encoderPath: String
    public let generatorPath: String
    public let swapperPath: String
    public let swapperType: String

    /// Finds and checks the bundle for swapper `type` (ftm, injection or lcr).
    public init(directory: String, swapperType type: String) throws {
        self.directory = directory
        self.swapperType = type
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw Error.missing("model folder \(directory) does not exist (run scripts/demo.sh to fill ./models from the bundled fixtures, or pass --models DIR)")
        }
        let manifestPath = (directory as NSString).appendingPathComponent(Self.manifestName)
        let manifest: Manifest
        if let data = FileManager.default.contents(atPath: manifestPath) {
            do { manifest = try JSONDecoder().decode(Manifest.self, from: data) } catch {
                throw Error.missing("\(manifestPath) is not a valid model manifest: \(error)")
            }
        } else {
            manifest = .defaults
        }
        func path(_ name: String, _ what: String) throws -> String {
            let p = name.hasPrefix("/") ? name : (directory as NSString).appendingPathComponent(name)
            guard FileManager.default.fileExists(atPath: p) else {
                throw Error.missing("the \(what) model \(p) is missing")
            }
            return p
        }
        guard let swapperName = manifest.swappers[type] else {
            throw Error.missing("no \(type) swapper in \(directory) (it has: \(manifest.swappers.keys.sorted().joined(separator: ", ")))")
        }
        encoderPath = try path(manifest.encoder, "encoder")
        generatorPath = try path(manifest.generator, "generator")
        swapperPath = try path(swapperName, "\(type) swapper")
        try check()
    }

    /// Kinds recorded by the converter, and shapes: encoder latents (N,L,D) and struct (N,C,h,w),
    /// swapper idd/att (1,L,D), generator struct (1,C,h,w) and latents (1,L,D).
    private func check() throws {
        let encoder = try ModelFileReader.inspect(encoderPath)
        let swapper = try ModelFileReader.inspect(swapperPath)
        let generator = try ModelFileReader.inspect(generatorPath)
        let expectations = [(encoder, "encoder", encoderPath), (swapper, "swapper.\(swapperType)", swapperPath),
                            (generator, "generator", generatorPath)]
        for (summary, kind, path) in expectations {
            let recorded = summary.metadata[ModelMetadataKey.modelKind] ?? "unrecognised"
            guard recorded == kind else {
                throw Error.mismatch("\(path) is a \(recorded) model, expected \(kind)")
            }
        }
        func dims(_ v: ValueInfo?) -> [Int?] { v?.type.shape?.map(\.value) ?? [] }
        let latents = dims(encoder.outputs.first { $0.name == "latents" } ?? encoder.outputs.first)
        let structure = dims(encoder.outputs.first { $0.name == "struct" } ?? encoder.outputs.last)
        let idd = dims(swapper.inputs.first)
        let genStruct = dims(generator.inputs.first { $0.name == "struct" } ?? generator.inputs.first)
        let genLatents = dims(generator.inputs.first { $0.name == "latents" } ?? generator.inputs.last)
        func tail(_ d: [Int?]) -> [Int?] { Array(d.dropFirst()) }
        if tail(latents) != tail(idd) {
            throw Error.mismatch("encoder latents \(latents.map(show)) vs swapper input \(idd.map(show))")
        }
        if tail(latents) != tail(genLatents) {
            throw Error.mismatch("encoder latents \(latents.map(show)) vs generator latents \(genLatents.map(show))")
        }
        if tail(structure) != tail(genStruct) {
            throw Error.mismatch("encoder struct \(structure.map(show)) vs generator struct \(genStruct.map(show))")
        }
    }

    private func show(_ d: Int?) -> String { d.map(String.init) ?? "?" }
}
