import Foundation
import MegaFSGraph
import MegaFSRuntime

/// `SwapNetworks` backed by three runtime sessions (converted model files).
///
/// Inputs and outputs are found by the names the exporter gives them (encoder input: the only
/// input; outputs `latents` and `struct`; swapper inputs `idd` and `att`; generator inputs
/// `struct` and `latents`), falling back to declaration order when a name is absent (the
/// exporter may rename an output, e.g. `image` -> `image.1`).
public final class SessionSwapNetworks: SwapNetworks, @unchecked Sendable {
    public let encoder: InferenceSession
    public let swapper: InferenceSession
    public let generator: InferenceSession

    public init(encoder: InferenceSession, swapper: InferenceSession, generator: InferenceSession) {
        self.encoder = encoder
        self.swapper = swapper
        self.generator = generator
    }

    /// The three sessions share one activation arena (`SharedArena`: a swap runs them one after
    /// another) unless `options` names one.
    public convenience init(encoderPath: String, swapperPath: String, generatorPath: String,
                            options: SessionOptions = SessionOptions()) throws {
        var options = options
        if options.sharedArena == nil { options.sharedArena = SharedArena() }
        try self.init(encoder: InferenceSession(modelPath: encoderPath, options: options),
                      swapper: InferenceSession(modelPath: swapperPath, options: options),
                      generator: InferenceSession(modelPath: generatorPath, options: options))
    }

    /// The three models of a checked bundle.
    public convenience init(bundle: ModelBundle, options: SessionOptions = SessionOptions()) throws {
        try self.init(encoderPath: bundle.encoderPath, swapperPath: bundle.swapperPath,
                      generatorPath: bundle.generatorPath, options: options)
    }

    private static func name(_ wanted: String, in values: [ValueInfo], index: Int, model: String) throws -> String {
        if values.contains(where: { $0.name == wanted }) { return wanted }
        guard index < values.count else {
            throw ImageError.invalidArgument("the \(model) model has no \(wanted) (it has \(values.map(\.name)))")
        }
        return values[index].name
    }

    private static func output(_ outputs: [String: Tensor], _ name: String, model: String) throws -> Tensor {
        guard let t = outputs[name] else { throw ImageError.invalidArgument("the \(model) model produced no \(name)") }
        return t
    }

    public func encode(_ images: Tensor) throws -> (latents: Tensor, structure: Tensor) {
        let input = try Self.name("image", in: encoder.inputs, index: 0, model: "encoder")
        let out = try encoder.run([input: images])
        let l = try Self.name("latents", in: encoder.outputs, index: 0, model: "encoder")
        let s = try Self.name("struct", in: encoder.outputs, index: 1, model: "encoder")
        return (try Self.output(out, l, model: "encoder"), try Self.output(out, s, model: "encoder"))
    }

    public func swap(identity: Tensor, attributes: Tensor) throws -> Tensor {
        let idd = try Self.name("idd", in: swapper.inputs, index: 0, model: "swapper")
        let att = try Self.name("att", in: swapper.inputs, index: 1, model: "swapper")
        let out = try swapper.run([idd: identity, att: attributes])
        return try Self.output(out, try Self.name("swapped_latents", in: swapper.outputs, index: 0, model: "swapper"), model: "swapper")
    }

    public func generate(structure: Tensor, latents: Tensor) throws -> Tensor {
        let s = try Self.name("struct", in: generator.inputs, index: 0, model: "generator")
        let l = try Self.name("latents", in: generator.inputs, index: 1, model: "generator")
        let out = try generator.run([s: structure, l: latents])
        return try Self.output(out, try Self.name("image", in: generator.outputs, index: 0, model: "generator"), model: "generator")
    }
}
