import Testing
import MegaFSGraph
@testable import MegaFSRuntime

// The two memory savers of the band loops, forced onto tiny graphs by a small band budget:
// the transposed conv whose blur reads a sliding window of rows instead of whole planes, and
// the im2col and direct convs that write their output over their input. All against the
// reference evaluator.

/// Runs `b` with bands of `budget` bytes and checks every output against the reference.
private func runInBands(_ b: GraphBuilder, budget: Int, conv: ConvAlgorithm = .im2col, _ what: String,
                        sourceLocation: SourceLocation = #_sourceLocation) throws -> InferenceSession {
    var options = SessionOptions(threads: 2, convAlgorithm: conv)
    options.bandBudgetBytes = budget
    let session = try InferenceSession(graph: b.graph, options: options)
    let got = try session.run(b.feeds)
    let want = try referenceValues(b.graph, b.feeds)
    for o in b.graph.outputs {
        let g = try #require(got[o.name], sourceLocation: sourceLocation)
        let w = try #require(want[o.name], sourceLocation: sourceLocation)
        expectClose(g, w, relative: 1e-4, "\(what) [\(o.name)]", sourceLocation: sourceLocation)
    }
    return session
}

@Test func transposedConvBlurredThroughARowWindowMatchesReference() throws {
    var rng = Rng(2611)
    // (input rows, columns, transposed-conv padding, blur padding top/left and bottom/right,
    // input rows per band, modulated, batch)
    let cases: [(h: Int, w: Int, pad: Int, blur: (Int, Int), bandRows: Int, modulated: Bool, n: Int)] = [
        (9, 7, 0, (1, 1), 1, true, 1),    // StyleGAN2's upsampling conv, one input row per band
        (10, 5, 0, (1, 1), 2, true, 1),
        (11, 6, 0, (1, 1), 3, false, 2),  // constant weight, two samples
        (8, 9, 1, (1, 1), 1, false, 1),   // padded transposed conv: rows start above the plane
        (12, 4, 0, (2, 1), 2, false, 1),  // a blur that reads further back
        (7, 3, 0, (0, 3), 1, true, 1),    // and further ahead
    ]
    for (i, c) in cases.enumerated() {
        var b = GraphBuilder()
        let cin = 3, cout = 4
        let x = b.input("x", rng.tensor([c.n, cin, c.h, c.w]))
        var t: String
        if c.modulated {
            let latent = b.input("latent", rng.tensor([1, 8]))
            t = modulatedConv(&b, &rng, x: x, latent: latent, cin: cin, cout: cout, k: 3, styleDim: 8,
                              demodulate: true, upsample: true)
        } else {
            t = b.node("ConvTranspose", [x, b.constant(rng.tensor([cin, cout, 3, 3]))],
                       ["strides": .ints([2, 2]), "pads": .ints([c.pad, c.pad, c.pad, c.pad])])
        }
        let th = 2 * c.h + 1 - 2 * c.pad, tw = 2 * c.w + 1 - 2 * c.pad
        var u = upfirdn(&b, x: t, n: c.n, c: cout, h: th, w: tw, up: 1, pad: c.blur)
        u = b.node("Add", [u, b.constant(rng.tensor([1, cout, 1, 1]))])
        u = b.node("LeakyRelu", [u], ["alpha": .float(0.2)])
        b.output(u)
        let budget = cout * 9 * c.w * 4 * c.bandRows
        let session = try runInBands(b, budget: budget, "case \(i)")
        let kernels = session.lastPlanSteps.compactMap { $0.kernel as? ConvTransposeKernel }
        #expect(kernels.count == 1, "case \(i): \(session.lastPlanSteps.map(\.kernel.kernelName))")
        for k in kernels {
            #expect(k.blur != nil && k.bandRows == c.bandRows, "case \(i)")
            let window = try #require(k.windowRows, "case \(i): no row window")
            #expect(window < th, "case \(i)")
        }
    }
}

@Test func convWritingOverItsInputMatchesReference() throws {
    var rng = Rng(2612)
    for (i, bandRows) in [1, 2, 3, 7].enumerated() {
        let c = 5, h = 7, w = 6, n = i == 2 ? 2 : 1
        let b = convChain(&rng, n: n, c: c, h: h, w: w)
        let session = try runInBands(b, budget: c * 9 * w * 4 * bandRows, "\(bandRows) rows per band")
        let convs = session.lastPlanSteps.filter { $0.kernel is ConvKernel }
        #expect(convs.count == (n == 1 ? 4 : 3), "\(session.lastPlanSteps.map(\.kernel.kernelName))")
        // Every conv but the first (its input is the graph's) writes over its input.
        #expect(convs.map(\.overFirstInput) == [false] + Array(repeating: true, count: convs.count - 1),
                "\(bandRows) rows: \(convs.map { ($0.node.name, $0.overFirstInput) })")
        #expect(convs.allSatisfy { ($0.kernel as! ConvKernel).bandRows == min(bandRows, h) })
    }
}

/// The graph of the tests above and below: a conv on the graph's input, a conv + bias whose residual is
/// its own input, then (batch 1) a modulated conv + leaky relu, and a last conv.
private func convChain(_ rng: inout Rng, n: Int, c: Int, h: Int, w: Int) -> GraphBuilder {
    var b = GraphBuilder()
    let x = b.input("x", rng.tensor([n, c, h, w]))
    var y = b.node("Conv", [x, b.constant(rng.tensor([c, c, 3, 3], -0.3, 0.3))], ["pads": .ints([1, 1, 1, 1])])
    let r = b.node("Conv", [y, b.constant(rng.tensor([c, c, 3, 3], -0.3, 0.3)), b.constant(rng.tensor([c]))],
                   ["pads": .ints([1, 1, 1, 1])])
    y = b.node("Relu", [b.node("Add", [r, y])])
    if n == 1 {
        let latent = b.input("latent", rng.tensor([1, 8]))
        y = modulatedConv(&b, &rng, x: y, latent: latent, cin: c, cout: c, k: 3, styleDim: 8,
                          demodulate: true, upsample: false)
        y = b.node("LeakyRelu", [y], ["alpha": .float(0.2)])
    }
    y = b.node("Conv", [y, b.constant(rng.tensor([c, c, 3, 3], -0.3, 0.3))], ["pads": .ints([1, 1, 1, 1])])
    b.output(b.node("Sigmoid", [y]))
    return b
}

@Test func directConvWritingOverItsInputMatchesReference() throws {
    var rng = Rng(2613)
    for (i, bandRows) in [1, 2, 3, 7].enumerated() {
        let c = 5, h = 7, w = 6, n = i == 2 ? 2 : 1
        let b = convChain(&rng, n: n, c: c, h: h, w: w)
        // The direct band holds rows + 2 padded rows of c x (w + 2) floats in a quarter of the budget.
        let session = try runInBands(b, budget: 4 * c * (w + 2) * 4 * (bandRows + 2), conv: .direct,
                                     "direct, \(bandRows) rows per band")
        let convs = session.lastPlanSteps.filter { $0.kernel is ConvKernel }
        #expect(convs.allSatisfy { $0.kernel.kernelName.contains("direct3x3") },
                "\(convs.map(\.kernel.kernelName))")
        // Not the first (its input is the graph's), nor the one whose residual is its own input:
        // the direct kernel stores each band straight away, before the epilogue reads the residual.
        #expect(convs.map(\.overFirstInput) == [false, false] + Array(repeating: true, count: convs.count - 2),
                "\(bandRows) rows: \(convs.map { ($0.node.name, $0.overFirstInput) })")
        #expect(convs.allSatisfy { ($0.kernel as! ConvKernel).bandRows == min(bandRows, h) })
    }
}

@Test func winogradConvWritingOverItsInputMatchesReference() throws {
    var rng = Rng(2614)
    for (algorithm, tile) in [(ConvAlgorithm.winograd, 2), (.winogradF4, 4)] {
        let c = 5, h = 9, w = 6
        let tileRowsTotal = (h + tile - 1) / tile
        for (i, tileRows) in [1, 2, 3].enumerated() {
            let n = i == 2 ? 2 : 1
            let b = convChain(&rng, n: n, c: c, h: h, w: w)
            // A band of tile rows takes (tile + 2)^2 x (cin + cout) floats per tile of V and M, in
            // twice the budget.
            let tilesWide = (w + tile - 1) / tile, products = (tile + 2) * (tile + 2)
            let session = try runInBands(b, budget: tileRows * products * 2 * c * 4 * tilesWide / 2, conv: algorithm,
                                         "Winograd F\(tile), \(tileRows) tile rows per band")
            let convs = session.lastPlanSteps.filter { $0.kernel is ConvKernel }
            #expect(convs.allSatisfy { $0.kernel.kernelName.contains("winograd-f\(tile)") }, "\(convs.map(\.kernel.kernelName))")
            #expect(convs.map(\.overFirstInput) == [false, false] + Array(repeating: true, count: convs.count - 2),
                    "F\(tile), \(tileRows) tile rows: \(convs.map { ($0.node.name, $0.overFirstInput) })")
            // Bands made equal: the tile rows in bands of at most `tileRows`.
            let bands = (tileRowsTotal + tileRows - 1) / tileRows
            #expect(convs.allSatisfy { ($0.kernel as! ConvKernel).bandRows == tile * ((tileRowsTotal + bands - 1) / bands) })
        }
    }
}
