import Foundation
import MegaFSGraph
import Testing
@testable import MegaFSSwap

/// Networks that check their inputs against the fixture chain and return its golden outputs.
final class ReplayNetworks: SwapNetworks, @unchecked Sendable {
    let encoderInput: Tensor, latents: Tensor, structure: Tensor, swapped: Tensor, generated: Tensor
    var calls: [String] = []

    init?(_ fx: ChainFixture) {
        guard let x = fx.tensor("encoder_input"), let l = fx.tensor("latents"), let s = fx.tensor("struct"),
              let sw = fx.tensor("swapped_latents"), let g = fx.tensor("generated") else { return nil }
        encoderInput = x; latents = l; structure = s; swapped = sw; generated = g
    }

    func encode(_ images: Tensor) throws -> (latents: Tensor, structure: Tensor) {
        calls.append("encode\(images.shape[0])")
        if images.shape[0] == 2 {
            #expect(images.shape == encoderInput.shape)
            #expect(maxAbsDiff(images.floats, encoderInput.floats) <= 1e-6)
            return (latents, structure)
        }
        #expect(images.shape == [1, 3, 256, 256])
        return (latents.batchItem(0), structure.batchItem(0))   // refine: any N=1 pair
    }

    func swap(identity: Tensor, attributes: Tensor) throws -> Tensor {
        calls.append("swap")
        #expect(identity.isIdentical(to: latents.batchItem(1)))    // idd = source = row 1
        #expect(attributes.isIdentical(to: latents.batchItem(0)))  // att = target = row 0
        return swapped
    }

    func generate(structure s: Tensor, latents l: Tensor) throws -> Tensor {
        calls.append("generate")
        if calls.count <= 3 {
            #expect(s.isIdentical(to: structure.batchItem(0)))     // the target's struct
            #expect(l.isIdentical(to: swapped))
        }
        return generated
    }
}

@Suite struct PipelineTests {
    @Test func chainWithReplayedNetworks() throws {
        guard let fx = ChainFixture.load(), let nets = ReplayNetworks(fx), let u8 = fx.tensor("blended_u8") else { return }
        let samples = swapRepoRoot + "/examples/samples/"
        let source = try ImageIO.read(path: samples + "synthetic_face.png")
        let target = try ImageIO.read(path: samples + "astronaut_face.png")
        let labels = try LabelMap.read(path: samples + "astronaut_face_labels.png")
        let pipeline = SwapPipeline(networks: nets)
        let r = try pipeline.run(source: source, target: target,
                                 options: SwapOptions(mask: .labels(labels), outputSize: .generator, refine: true))
        #expect(nets.calls == ["encode2", "swap", "generate", "encode1", "generate"])
        let ref = u8.elements(as: UInt8.self)
        #expect(r.image.width == u8.shape[1] && r.image.height == u8.shape[0])
        var off = 0
        for i in 0..<ref.count where ref[i] != r.image.pixels[i] {
            off += 1
            #expect(abs(Int(ref[i]) - Int(r.image.pixels[i])) <= 1)
        }
        #expect(off <= 4, "\(off) bytes differ from blended_u8")
        #expect(r.refined == r.image)   // the replay regenerates the same image
        if let mask = fx.tensor("mask") { #expect(maxAbsDiff(r.mask.values, mask.floats) <= 2e-5) }
        // delivered at the target's size
        let t = try SwapPipeline(networks: nets).run(source: source, target: target, options: SwapOptions(mask: .labels(labels)))
        #expect(t.image.width == target.width && t.image.height == target.height)
    }

    @Test func maskSources() throws {
        let target = gradientImage(width: 40, height: 20)
        let labels = try LabelMap(width: 4, height: 4, labels: [UInt8](repeating: 1, count: 16))
        #expect(throws: ImageError.self) { try SwapPipeline.mask(.labels(labels), target: target, width: 16, height: 16) }
        let wide = try LabelMap(width: 8, height: 4, labels: [UInt8](repeating: 1, count: 32))
        let m = try SwapPipeline.mask(.labels(wide), target: target, width: 16, height: 16)
        #expect(m.width == 16 && m[8, 8] == 1)
        let custom = try SwapPipeline.mask(.mask(FloatImage(width: 4, height: 4, channels: 1, repeating: 0.25)), target: target, width: 8, height: 8)
        #expect(custom.values.allSatisfy { $0 == 0.25 })
        let e = try SwapPipeline.mask(.ellipse(), target: target, width: 64, height: 64)
        #expect(e.values.max() == 1 && e.values.min() == 0)
    }

    @Test func batchItemSlices() {
        let t = Tensor((0..<24).map(Float.init), shape: [2, 3, 4])
        #expect(t.batchItem(1).shape == [1, 3, 4])
        #expect(t.batchItem(1).floats == (12..<24).map(Float.init))
    }
}

@Suite struct PairListTests {
    let csv = """
        source,target,mask
        a.png, b.png ,b_labels.png

        # a comment
        c.png,d.png
        e.png
        f.png,g.png,
        """

    @Test func rowsKeepLineNumbersAndSkipHeaderCommentsAndBlanks() throws {
        let list = PairList(csv: csv)
        #expect(list.rows.map(\.line) == [2, 5, 6, 7])
        let first = try list.rows[0].paths()
        #expect(first.source == "a.png" && first.target == "b.png" && first.mask == "b_labels.png")
        #expect(try list.rows[1].paths().mask == nil)
        #expect(try list.rows[3].paths().mask == nil, "an empty mask field means no mask")
        do {
            _ = try list.rows[2].paths()
            Issue.record("a row with one field must be refused")
        } catch {
            #expect("\(error)".contains("line 6"))
        }
    }

    @Test func shardsPartitionTheRows() {
        let list = PairList(csv: (1...10).map { "s\($0).png,t\($0).png" }.joined(separator: "\n"))
        let shards = (0..<3).map { list.shard(index: $0, count: 3).map(\.line) }
        #expect(shards[0] == [1, 4, 7, 10] && shards[1] == [2, 5, 8] && shards[2] == [3, 6, 9])
        #expect(Set(shards.flatMap { $0 }).count == 10)
        #expect(list.shard(index: 0, count: 1).count == 10)
    }
}
