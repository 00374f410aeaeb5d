import Testing
import MegaFSGraph
@testable import MegaFSRuntime

// StyleGAN2's last block (upsampling StyledConv, StyledConv, ToRGB with the upsampled skip)
// run as one step in bands of rows (UpsamplingTail.swift): against the reference evaluator,
// bit for bit against the three steps it replaces, and with less arena.

/// The block at `channels` channels on an h x w input (output 2h x 2w); `alsoOutputsConv`
/// makes the 3x3 conv's output a graph output too (then it must stay a value of its own).
private func lastBlock(seed: UInt64, channels: Int, h: Int, w: Int, alsoOutputsConv: Bool = false) -> GraphBuilder {
    var rng = Rng(seed)
    var b = GraphBuilder()
    let cin = 5, dim = 8, oh = 2 * h, ow = 2 * w
    let latents = b.input("latents", rng.tensor([1, 3, dim]))
    let x = b.input("x", rng.tensor([1, cin, h, w]))
    let skip = b.input("skip", rng.tensor([1, 3, h, w]))
    let l = (0..<3).map { b.node("Gather", [latents, b.constant(Tensor(scalar: Int64($0)))], ["axis": .int(1)]) }
    var u = modulatedConv(&b, &rng, x: x, latent: l[0], cin: cin, cout: channels, k: 3, styleDim: dim, demodulate: true,
                          upsample: true)
    u = upfirdn(&b, x: u, n: 1, c: channels, h: oh + 1, w: ow + 1, up: 1, pad: (1, 1))
    u = b.node("Add", [u, b.constant(rng.tensor([1, 1, oh, ow]))])
    u = b.node("Add", [u, b.constant(rng.tensor([1, channels, 1, 1]))])
    u = b.node("LeakyRelu", [u], ["alpha": .float(0.2)])
    u = b.node("Mul", [u, b.scalar(Float(2).squareRoot())])
    var y = modulatedConv(&b, &rng, x: u, latent: l[1], cin: channels, cout: channels, k: 3, styleDim: dim, demodulate: true,
                          upsample: false)
    y = b.node("Add", [y, b.constant(rng.tensor([1, 1, oh, ow]))])
    y = b.node("Add", [y, b.constant(rng.tensor([1, channels, 1, 1]))])
    y = b.node("LeakyRelu", [y], ["alpha": .float(0.2)])
    y = b.node("Mul", [y, b.scalar(Float(2).squareRoot())])
    var rgb = modulatedConv(&b, &rng, x: y, latent: l[2], cin: channels, cout: 3, k: 1, styleDim: dim, demodulate: false,
                            upsample: false)
    rgb = b.node("Add", [rgb, b.constant(rng.tensor([1, 3, 1, 1]))])
    rgb = b.node("Add", [rgb, upfirdn(&b, x: skip, n: 1, c: 3, h: h, w: w, up: 2, pad: (2, 1))])
    b.output(rgb)
    if alsoOutputsConv { b.output(y) }
    return b
}

private func session(_ b: GraphBuilder, budget: Int, tail: Bool) throws -> InferenceSession {
    var options = SessionOptions(threads: 2)
    options.bandBudgetBytes = budget
    options.bandsUpsamplingTail = tail
    return try InferenceSession(graph: b.graph, options: options)
}

private func runsTail(_ s: InferenceSession) -> Bool {
    (s.lastPlanSummary?.kernels ?? []).contains { $0.name.hasPrefix("upsampling-tail(") }
}

@Test func upsamplingTailInBandsMatchesReferenceAndTheThreeSteps() throws {
    // Channels where auto takes Winograd for the 3x3 conv (32 with AVX-512, 128 otherwise);
    // a tiny band budget gives bands of 2 rows and a window that has to move up (120 rows
    // against its 44), the default one bands of 12-16 rows.
    let channels = WinogradConvPlan.autoMinChannels
    for (seed, h, w, budget) in [(UInt64(2701), 60, 16, 1), (2702, 13, 19, im2colBudgetBytes)] {
        let b = lastBlock(seed: seed, channels: channels, h: h, w: w)
        let banded = try session(b, budget: budget, tail: true)
        let got = try banded.run(b.feeds)
        #expect(runsTail(banded), "\(banded.lastPlanSummary?.kernels ?? [])")
        let want = try referenceValues(b.graph, b.feeds)
        let name = b.graph.outputs[0].name
        expectClose(try #require(got[name]), try #require(want[name]), relative: 1e-4, "tail \(h)x\(w), budget \(budget)")

        let steps = try session(b, budget: budget, tail: false)
        let plain = try steps.run(b.feeds)
        #expect(!runsTail(steps))
        #expect(try #require(got[name]).floats == (try #require(plain[name])).floats,
                "tail \(h)x\(w), budget \(budget): the banded step differs from the three steps in bits")
        // Taller than its window, the block needs less arena than its two 2h x 2w intermediates.
        if budget == 1 {
            let arena = try #require(banded.lastPlanSummary?.arenaBytes), stepsArena = try #require(steps.lastPlanSummary?.arenaBytes)
            #expect(arena < stepsArena, "arena \(arena) against \(stepsArena) for the three steps")
        }
    }
}

@Test func upsamplingTailNotWhereAnIntermediateIsReadElsewhere() throws {
    let b = lastBlock(seed: 2703, channels: WinogradConvPlan.autoMinChannels, h: 9, w: 16, alsoOutputsConv: true)
    let s = try session(b, budget: im2colBudgetBytes, tail: true)
    let got = try s.run(b.feeds)
    #expect(!runsTail(s), "\(s.lastPlanSummary?.kernels ?? [])")
    let want = try referenceValues(b.graph, b.feeds)
    for o in b.graph.outputs {
        expectClose(try #require(got[o.name]), try #require(want[o.name]), relative: 1e-4, "no tail [\(o.name)]")
    }
}

/// The same block with constant weights, two samples and a plain residual: the tail loops over
/// the samples with the same band schedule.
@Test func upsamplingTailOfConstantWeightsOverTwoSamples() throws {
    var rng = Rng(2704)
    var b = GraphBuilder()
    let channels = WinogradConvPlan.autoMinChannels, h = 21, w = 16
    let x = b.input("x", rng.tensor([2, 4, h, w]))
    let t = b.node("ConvTranspose", [x, b.constant(rng.tensor([4, channels, 3, 3], -0.3, 0.3))], ["strides": .ints([2, 2])])
    var u = upfirdn(&b, x: t, n: 2, c: channels, h: 2 * h + 1, w: 2 * w + 1, up: 1, pad: (1, 1))
    u = b.node("Add", [u, b.constant(rng.tensor([1, channels, 1, 1]))])
    u = b.node("LeakyRelu", [u], ["alpha": .float(0.2)])
    let k = 1 / Float(channels * 9).squareRoot()
    var y = b.node("Conv", [u, b.constant(rng.tensor([channels, channels, 3, 3], -k, k)), b.constant(rng.tensor([channels]))],
                   ["pads": .ints([1, 1, 1, 1]), "kernel_shape": .ints([3, 3])])
    y = b.node("Relu", [y])
    var rgb = b.node("Conv", [y, b.constant(rng.tensor([3, channels, 1, 1])), b.constant(rng.tensor([3]))], ["kernel_shape": .ints([1, 1])])
    rgb = b.node("Add", [rgb, b.input("residual", rng.tensor([2, 3, 2 * h, 2 * w]))])
    b.output(rgb)
    let banded = try session(b, budget: 1, tail: true)
    let got = try banded.run(b.feeds)
    #expect(runsTail(banded), "\(banded.lastPlanSummary?.kernels ?? [])")
    let want = try referenceValues(b.graph, b.feeds)
    expectClose(try #require(got[rgb]), try #require(want[rgb]), relative: 1e-4, "constant-weight tail, batch 2")
    let plain = try session(b, budget: 1, tail: false).run(b.feeds)
    #expect(try #require(got[rgb]).floats == (try #require(plain[rgb])).floats, "constant-weight tail differs from the three steps in bits")
}
