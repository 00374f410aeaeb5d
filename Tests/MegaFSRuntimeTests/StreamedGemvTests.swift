import CKernels
import Dispatch
import Foundation
import Testing
import MegaFSGraph
@testable import MegaFSRuntime

// The one-row product of the FTM's linears (CKernels/gemv.c): every path against float64 and
// bit for bit against each other, on one thread and on the pool, and with callers racing for
// the pool.

private func gemvReference(_ w: [Float], ldw: Int, _ x: [Float], k: Int, rows: Int) -> [(Double, Double)] {
    (0..<rows).map { r in
        var s = 0.0, magnitude = 0.0
        for i in 0..<k { let p = Double(w[r * ldw + i]) * Double(x[i]); s += p; magnitude += abs(p) }
        return (s, magnitude)
    }
}

@Test func streamedGemvPathsMatchFloat64AndEachOther() {
    var rng = Rng(5101)
    let paths = Conv3x3Path.allCases.filter(\.isAvailable)
    for trial in 0..<24 {
        // Row counts around the 4-row block and the thread split; k with and without a tail of 8;
        // large enough products (rows x k >= 16384) take the pool.
        let rows = [1, 3, 4, 7, 64, 513, 1024][trial % 7], k = [5, 8, 100, 512, 777][trial % 5]
        let ldw = k + trial % 3
        let w = (0..<(rows * ldw)).map { _ in rng.float() }, x = (0..<k).map { _ in rng.float() }
        let start = (0..<rows).map { _ in rng.float() }
        let alpha: Float = trial % 4 == 0 ? 0.5 : 1, beta: Float = trial % 2 == 0 ? 1 : 0
        let want = gemvReference(w, ldw: ldw, x, k: k, rows: rows)
        var outputs: [[Float]] = []
        for path in paths {
            for threads in [1, 2] {
                var y = start
                mfs_sgemv_rows(path.rawValue, w, ldw, x, Int32(k), Int32(rows), alpha, beta, &y, Int32(threads), nil)
                for r in 0..<rows {
                    let expected = Double(alpha) * want[r].0 + Double(beta) * Double(start[r])
                    let bound = 1e-6 * (want[r].1 + abs(Double(start[r]))) + 1e-30
                    #expect(abs(Double(y[r]) - expected) <= bound, "trial \(trial) \(path) \(threads) threads row \(r)")
                }
                outputs.append(y)
            }
        }
        for y in outputs.dropFirst() {
            #expect(zip(y, outputs[0]).allSatisfy { $0.bitPattern == $1.bitPattern }, "trial \(trial): paths or thread counts differ")
        }
    }
}

/// A group of independent products (float32 and int8 weights, row counts off the 4-row blocks,
/// activations) gives each row the bits of its own product, on 1-3 threads.
@Test func streamedGemvGroupGivesEachProductsBits() {
    var rng = Rng(5103)
    let path = Conv3x3Path.best.rawValue
    let shapes: [(rows: Int, k: Int)] = [(256, 1024), (7, 100), (513, 256), (64, 777), (1, 5), (300, 256), (33, 64)]
    var ws: [[Float]] = [], w8s: [[Int8]] = [], scales: [[Float]] = [], xs: [[Float]] = [], starts: [[Float]] = []
    for s in shapes {
        ws.append((0..<(s.rows * s.k)).map { _ in rng.float() })
        w8s.append((0..<(s.rows * s.k)).map { _ in Int8(truncatingIfNeeded: Int(rng.float() * 127)) })
        scales.append((0..<s.rows).map { _ in abs(rng.float()) / 64 + 0.001 })
        xs.append((0..<s.k).map { _ in rng.float() })
        starts.append((0..<s.rows).map { _ in rng.float() })
    }
    func epilogue(_ i: Int) -> mfs_gemv_epilogue {
        mfs_gemv_epilogue(activation: Int32([MFS_ACT_NONE, MFS_ACT_RELU, MFS_ACT_SIGMOID, MFS_ACT_TANH][i % 4]), slope: 0,
                          gain: i % 3 == 0 ? 1 : 1.5, next_weight: nil, next_weight_bytes: 0)
    }
    // Each product alone.
    var single: [[Float]] = []
    for (i, s) in shapes.enumerated() {
        var y = starts[i], e = epilogue(i)
        let beta: Float = i % 2 == 0 ? 1 : 0
        if i % 3 == 1 {
            mfs_sgemv_rows_i8(path, w8s[i], s.k, scales[i], 1, xs[i], Int32(s.k), Int32(s.rows), 1, beta, &y, 2, &e)
        } else {
            mfs_sgemv_rows(path, ws[i], s.k, xs[i], Int32(s.k), Int32(s.rows), 0.75, beta, &y, 2, &e)
        }
        single.append(y)
    }
    for threads in [1, 2, 3] {
        let outs = shapes.indices.map { UnsafeMutablePointer<Float>.allocate(capacity: shapes[$0].rows) }
        defer { outs.forEach { $0.deallocate() } }
        for i in shapes.indices { outs[i].initialize(from: starts[i], count: shapes[i].rows) }
        var items: [mfs_gemv_item] = []
        var keep: [Any] = []
        for (i, s) in shapes.enumerated() {
            let w = UnsafeMutablePointer<Float>.allocate(capacity: ws[i].count); w.initialize(from: ws[i], count: ws[i].count)
            let w8 = UnsafeMutablePointer<Int8>.allocate(capacity: w8s[i].count); w8.initialize(from: w8s[i], count: w8s[i].count)
            let sc = UnsafeMutablePointer<Float>.allocate(capacity: scales[i].count); sc.initialize(from: scales[i], count: scales[i].count)
            let x = UnsafeMutablePointer<Float>.allocate(capacity: xs[i].count); x.initialize(from: xs[i], count: xs[i].count)
            keep.append(contentsOf: [w, w8, sc, x] as [Any])
            let int8 = i % 3 == 1
            items.append(mfs_gemv_item(w: int8 ? nil : UnsafePointer(w), w8: int8 ? UnsafePointer(w8) : nil, scale: UnsafePointer(sc),
                                       per_row_scale: 1, ldw: s.k, x: UnsafePointer(x), k: Int32(s.k), rows: Int32(s.rows),
                                       alpha: int8 ? 1 : 0.75, beta: i % 2 == 0 ? 1 : 0, y: outs[i], epilogue: epilogue(i)))
        }
        items.withUnsafeBufferPointer { mfs_sgemv_group(path, $0.baseAddress, Int32($0.count), Int32(threads)) }
        for (i, s) in shapes.enumerated() {
            let same = (0..<s.rows).allSatisfy { outs[i][$0].bitPattern == single[i][$0].bitPattern }
            #expect(same, "product \(i) (\(s.rows)x\(s.k)) on \(threads) threads")
        }
        for case let p as UnsafeMutablePointer<Float> in keep { p.deallocate() }
        for case let p as UnsafeMutablePointer<Int8> in keep { p.deallocate() }
    }
}

/// Four callers at once: one holds the pool, the others compute on their own threads; all right.
@Test func streamedGemvCallersRacingForThePoolAllGetTheirProduct() {
    var rng = Rng(5102)
    let rows = 256, k = 300
    let w = (0..<(rows * k)).map { _ in rng.float() }
    let xs = (0..<4).map { _ in (0..<k).map { _ in rng.float() } }
    let wants = xs.map { gemvReference(w, ldw: k, $0, k: k, rows: rows) }
    var before = (0, 0)
    mfs_pool_stats(&before.0, &before.1)
    let results = UnsafeMutablePointer<Float>.allocate(capacity: 4 * rows)
    defer { results.deallocate() }
    let shared = UncheckedBox(results)
    DispatchQueue.concurrentPerform(iterations: 4) { caller in
        for _ in 0..<200 {
            mfs_sgemv_rows(Conv3x3Path.best.rawValue, w, k, xs[caller], Int32(k), Int32(rows), 1, 0,
                           shared.value + caller * rows, 2, nil)
        }
    }
    for caller in 0..<4 {
        for r in 0..<rows {
            #expect(abs(Double(results[caller * rows + r]) - wants[caller][r].0) <= 1e-6 * wants[caller][r].1 + 1e-30)
        }
    }
    var after = (0, 0)
    mfs_pool_stats(&after.0, &after.1)
    #expect(after.0 + after.1 - before.0 - before.1 == 800)
    #expect(after.0 > before.0)
}

/// A one-row Linear in a model runs the streamed GEMV (and `MEGAFS_GEMV=openblas` semantics
/// are the plain gemv kernel), matching the reference.
@Test func oneRowLinearRunsTheStreamedGemv() throws {
    var rng = Rng(5103)
    var b = GraphBuilder()
    let x = b.input("x", rng.tensor([1, 300]))
    var y = b.node("Gemm", [x, b.constant(rng.tensor([520, 300]), "w1"), b.constant(rng.tensor([520]), "b1")], ["transB": .int(1)])
    y = b.node("LeakyRelu", [y], ["alpha": .float(0.2)])
    y = b.node("Gemm", [y, b.constant(rng.tensor([64, 520]), "w2")], ["transB": .int(1), "alpha": .float(0.5)])
    b.output(y)
    let s = try expectMatchesReference(b, "two one-row linears")
    let names = s.lastPlanSteps.map(\.kernel.kernelName)
    #expect(names.filter { $0 == "gemv(streamed)" }.count == 2, "\(names)")
}

private func int8Tensor(_ values: [Int8], shape: [Int]) throws -> Tensor {
    try values.withUnsafeBytes { try Tensor(dtype: .int8, shape: shape, bytes: $0) }
}

@Test func int8GemvPathsMatchFloat64AndEachOther() {
    var rng = Rng(5104)
    let paths = Conv3x3Path.allCases.filter(\.isAvailable)
    for trial in 0..<20 {
        let rows = [1, 4, 6, 64, 300][trial % 5], k = [3, 8, 77, 512][trial % 4]
        let ldw = k + trial % 2
        let w = (0..<(rows * ldw)).map { _ in Int8(rng.int(-128...127)) }
        let x = (0..<k).map { _ in rng.float() }
        let perRow = trial % 3 != 0
        let scales = (0..<(perRow ? rows : 1)).map { _ in rng.float() * 0.01 + 0.001 }
        let start = (0..<rows).map { _ in rng.float() }
        let alpha: Float = trial % 4 == 1 ? 2 : 1, beta: Float = trial % 2 == 0 ? 0 : 1
        var outputs: [[Float]] = []
        for path in paths {
            for threads in [1, 2] {
                var y = start
                mfs_sgemv_rows_i8(path.rawValue, w, ldw, scales, perRow ? 1 : 0, x, Int32(k), Int32(rows), alpha, beta,
                                  &y, Int32(threads), nil)
                for r in 0..<rows {
                    var dot = 0.0, magnitude = 0.0
                    for i in 0..<k { let p = Double(w[r * ldw + i]) * Double(x[i]); dot += p; magnitude += abs(p) }
                    let s = Double(scales[perRow ? r : 0])
                    let want = Double(alpha) * s * dot + Double(beta) * Double(start[r])
                    let bound = 1e-6 * (Double(alpha) * abs(s) * magnitude + abs(Double(start[r]))) + 1e-30
                    #expect(abs(Double(y[r]) - want) <= bound, "trial \(trial) \(path) \(threads) threads row \(r)")
                }
                outputs.append(y)
            }
        }
        for y in outputs.dropFirst() {
            #expect(zip(y, outputs[0]).allSatisfy { $0.bitPattern == $1.bitPattern }, "trial \(trial): paths or thread counts differ")
        }
    }
}

/// A one-row Linear whose weight is DequantizeLinear(int8, scales): the GEMV reads the int8
/// values and the DequantizeLinear does not run; with scales along the other axis the weight is
/// dequantized as before, and a second reader of the float weight keeps the DequantizeLinear
/// running for itself. All match the reference.
@Test func oneRowLinearReadsItsInt8WeightDirectly() throws {
    var rng = Rng(5105)
    let n = 96, k = 200
    for (i, variant) in ["per row", "per tensor", "per column", "second reader"].enumerated() {
        var b = GraphBuilder()
        let x = b.input("x", rng.tensor([1, k]))
        let q = b.constant(try int8Tensor((0..<(n * k)).map { _ in Int8(rng.int(-127...127)) }, shape: [n, k]), "q")
        let scaleCount = variant == "per tensor" ? 0 : variant == "per column" ? k : n
        let scales = (0..<max(1, scaleCount)).map { _ in rng.float() * 0.01 + 0.001 }
        let s = b.constant(Tensor(scales, shape: scaleCount == 0 ? [] : [scaleCount]), "scale")
        let w = b.node("DequantizeLinear", [q, s], ["axis": .int(variant == "per column" ? 1 : 0)])
        var y = b.node("Gemm", [x, w, b.constant(rng.tensor([n]), "bias")], ["transB": .int(1)])
        y = b.node("LeakyRelu", [y], ["alpha": .float(0.2)])
        b.output(y)
        if variant == "second reader" { b.output(b.node("ReduceSum", [w], ["keepdims": .int(0)])) }
        let session = try expectMatchesReference(b, "case \(i) \(variant)")
        let names = session.lastPlanSteps.map(\.kernel.kernelName)
        // The GEMV takes the int8 weight unless the scales run along k; the DequantizeLinear
        // runs only when some reader needs the float weight.
        #expect(names.contains(variant == "per column" ? "gemv(streamed)" : "gemv(streamed)+int8"), "\(variant): \(names)")
        let dequantizes = variant == "per column" || variant == "second reader"
        #expect(session.lastPlanSteps.contains { $0.node.opType == "DequantizeLinear" } == dequantizes, "\(variant): \(names)")
    }
}

/// The streamed GEMV applies a fused activation in each part, with the same formulas as the
/// separate activation kernels: the same bits as the unfused graph, for every activation and
/// both weight types. Consecutive GEMVs learn the next one's weight, for the prefetch.
@Test func streamedGemvActivationsMatchTheUnfusedGraphBitForBit() throws {
    var rng = Rng(5105)
    for (activation, attrs) in [("Relu", [String: Attribute]()), ("Sigmoid", [:]), ("Tanh", [:]),
                                ("LeakyRelu", ["alpha": .float(0.2)])] {
        var b = GraphBuilder()
        let x = b.input("x", rng.tensor([1, 300], -3, 3))
        var y = b.node("Gemm", [x, b.constant(rng.tensor([520, 300]), "w1"), b.constant(rng.tensor([520]), "b1")], ["transB": .int(1)])
        y = b.node(activation, [y], attrs)
        y = b.node("Gemm", [y, b.constant(rng.tensor([130, 520]), "w2")], ["transB": .int(1), "alpha": .float(0.5)])
        y = b.node(activation, [y], attrs)
        b.output(y)
        let fused = try InferenceSession(graph: b.graph, options: SessionOptions(threads: 2))
        let plain = try InferenceSession(graph: b.graph, options: SessionOptions(threads: 2, enableFusion: false))
        let got = try fused.run(b.feeds), want = try plain.run(b.feeds)
        for (name, t) in want {
            #expect(got[name]!.floats.map(\.bitPattern) == t.floats.map(\.bitPattern), "\(activation)")
        }
        #expect(!fused.lastPlanSteps.contains { $0.node.opType == activation }, "\(activation) fused into the GEMVs")
        let gemvs = fused.lastPlanSteps.compactMap { $0.kernel as? GemmKernel }
        #expect(gemvs.count == 2 && gemvs.allSatisfy(\.streamsOwnGemv), "\(activation): \(fused.lastPlanSteps.map(\.kernel.kernelName))")
        #expect(gemvs.first?.nextStreamedWeight?.bytes == 130 * 520 * 4 && gemvs.last?.nextStreamedWeight == nil)
    }
}
