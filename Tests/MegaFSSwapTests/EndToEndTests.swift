import Foundation
import MegaFSConverter
import MegaFSGraph
import MegaFSRuntime
import Testing
@testable import MegaFSSwap

/// The whole toolchain on the tiny fixture chain: ONNX -> converter -> model files -> runtime
/// sessions -> swap pipeline, compared with the PyTorch pipeline's golden outputs.
@Suite struct EndToEndTests {
    @Test func convertedModelsReproduceTheChain() throws {
        guard let fx = ChainFixture.load(), let u8 = fx.tensor("blended_u8"),
              let goldenLatents = fx.tensor("swapped_latents"), let goldenImage = fx.tensor("generated") else { return }
        let dir = NSTemporaryDirectory() + "megafs-e2e-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for name in ["encoder", "swapper-ftm", "generator"] {
            _ = try Converter.convert(onnxPath: "\(fx.root)/\(name)/model.onnx", outputPath: "\(dir)/\(name).mfs")
        }
        let bundle = try ModelBundle(directory: dir, swapperType: "ftm")
        let networks = try SessionSwapNetworks(encoderPath: bundle.encoderPath, swapperPath: bundle.swapperPath,
                                               generatorPath: bundle.generatorPath)
        let samples = swapRepoRoot + "/examples/samples/"
        let source = try ImageIO.read(path: samples + "synthetic_face.png")
        let target = try ImageIO.read(path: samples + "astronaut_face.png")
        let labels = try LabelMap.read(path: samples + "astronaut_face_labels.png")
        let result = try SwapPipeline(networks: networks).run(
            source: source, target: target, options: SwapOptions(mask: .labels(labels), outputSize: .generator))
        #expect(result.timings.map(\.stage) == ["preprocess", "encode", "swap", "generate", "mask", "blend"])

        let range = (goldenImage.floats.max() ?? 0) - (goldenImage.floats.min() ?? 0)
        #expect(maxAbsDiff(result.generated.floats, goldenImage.floats) <= 1e-4 * range)
        let reference = u8.elements(as: UInt8.self)
        #expect(result.image.pixels.count == reference.count)
        let worst = zip(reference, result.image.pixels).map { abs(Int($0) - Int($1)) }.max() ?? 255
        #expect(worst <= 1, "8-bit result differs from PyTorch's by up to \(worst)")
    }

    @Test func mismatchedBundleIsRefused() throws {
        guard let fx = ChainFixture.load() else { return }
        let dir = NSTemporaryDirectory() + "megafs-bundle-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // The generator's file where the encoder should be.
        _ = try Converter.convert(onnxPath: "\(fx.root)/generator/model.onnx", outputPath: "\(dir)/encoder.mfs")
        _ = try Converter.convert(onnxPath: "\(fx.root)/generator/model.onnx", outputPath: "\(dir)/generator.mfs")
        _ = try Converter.convert(onnxPath: "\(fx.root)/swapper-lcr/model.onnx", outputPath: "\(dir)/swapper-lcr.mfs")
        do {
            _ = try ModelBundle(directory: dir, swapperType: "lcr")
            Issue.record("a generator passed as encoder should be refused")
        } catch {
            #expect("\(error)".contains("expected encoder"))
        }
        #expect(throws: ModelBundle.Error.self) { try ModelBundle(directory: dir, swapperType: "ftm") }
        #expect(throws: ModelBundle.Error.self) { try ModelBundle(directory: dir + "/nowhere", swapperType: "ftm") }
    }
}
