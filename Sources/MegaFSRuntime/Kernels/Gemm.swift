import CKernels
import MegaFSGraph
#if canImport(Glibc)
import Glibc
#endif

/// ONNX Gemm: Y = alpha * op(A) op(B) + beta * C (C broadcast to [M, N]), then an optional
/// fused activation (FusedGemm). One row (M = 1) runs as a matrix-vector product.
final class GemmKernel: RuntimeKernel {
    let a: Int, b: Int, c: Int?, y: Int
    let m: Int, n: Int, k: Int
    let transA: Bool, transB: Bool
    let alpha: Float, beta: Float
    let cLayout: BroadcastLayout?
    let activation: Activation
    let gain: Float
    /// One row times a weight stored [n, k] (a PyTorch Linear): our own streaming GEMV
    /// (CKernels/gemv.c) unless `MEGAFS_GEMV=openblas`.
    var streamsRows: Bool { m == 1 && transB && Self.ownGemv }
    var kernelName: String { m == 1 ? (streamsRows ? (int8Weight != nil ? "gemv(streamed)+int8" : "gemv(streamed)") : "gemv") : "gemm" }
    /// An int8 weight (DequantizeLinear of constants, one scale per row or one for all) that the
    /// streamed GEMV reads directly: a quarter of the bytes, and no dequantization per run.
    let int8Weight: QuantizedConstant?
    var skipsFloatWeight: Int? { int8Weight == nil ? nil : b }
    /// The int8 weight's scales at a fixed address (for the GEMV and a group's item, `groupItem`).
    private let int8Scales: UnsafeMutableBufferPointer<Float>?
    static let ownGemv: Bool = getenv("MEGAFS_GEMV").map { String(cString: $0) != "openblas" } ?? true
    /// Whether the streamed GEMV (float32 or int8 weight) runs this product, activation included.
    var streamsOwnGemv: Bool { m == 1 && (int8Weight != nil || streamsRows) }
    /// The weight of the streamed GEMV that runs next in the plan (set by the planner): this one
    /// prefetches its start as it finishes.
    var nextStreamedWeight: (pointer: UnsafeRawPointer, bytes: Int)?
    /// The streamed GEMV's activation (the weight to prefetch is added per run).
    private let gemvEpilogue: mfs_gemv_epilogue
    /// The bytes this product's streamed GEMV reads, when fixed at planning (a constant weight).
    func streamedWeight(constant: (Int) -> Tensor?) -> (pointer: UnsafeRawPointer, bytes: Int)? {
        guard streamsOwnGemv else { return nil }
        if let q = int8Weight { return (UnsafeRawPointer(q.values.storage.pointer), q.values.byteCount) }
        guard let t = constant(b) else { return nil }
        return (UnsafeRawPointer(t.storage.pointer), t.byteCount)
    }
    var flops: Double { 2 * Double(m) * Double(n) * Double(k) }

    init(a: ValueDesc, b: ValueDesc, c: ValueDesc?, y: ValueDesc, transA: Bool, transB: Bool,
         alpha: Float, beta: Float, activation: Activation, gain: Float) {
        self.a = a.slot; self.b = b.slot; self.c = c?.slot; self.y = y.slot
        int8Weight = Self.int8RowWeight(a: a, b: b, transA: transA, transB: transB)
        int8Scales = int8Weight.map { q in
            let buffer = UnsafeMutableBufferPointer<Float>.allocate(capacity: max(1, q.scales.count))
            _ = buffer.initialize(from: q.scales)
            return buffer
        }
        self.transA = transA; self.transB = transB; self.alpha = alpha; self.beta = beta
        let m = transA ? a.shape[1] : a.shape[0]
        let n = transB ? b.shape[0] : b.shape[1]
        self.m = m; self.n = n
        k = transA ? a.shape[0] : a.shape[1]
        cLayout = c.map { BroadcastLayout(a: [m, n], b: $0.shape, out: [m, n]) }
        self.activation = activation
        self.gain = gain
        let (code, slope) = activation.kernelCode
        gemvEpilogue = mfs_gemv_epilogue(activation: code, slope: slope, gain: gain, next_weight: nil, next_weight_bytes: 0)
    }

    deinit { int8Scales?.deallocate() }

    /// The quantized weight of a one-row product the streamed GEMV can take as int8.
    static func int8RowWeight(a: ValueDesc, b: ValueDesc, transA: Bool, transB: Bool) -> QuantizedConstant? {
        guard ownGemv, transB, let q = b.quantized, b.shape.count == 2, q.values.shape == b.shape,
              a.shape.count == 2, (transA ? a.shape[1] : a.shape[0]) == 1,
              q.scalesRows(b.shape[0], rowLength: b.shape[1]) else { return nil }
        return q
    }

    /// Y = beta * C broadcast, when there is a C: returns the beta the product then accumulates with.
    func prefillBias(_ ctx: KernelContext) -> Float {
        let py = ctx.f32(y)
        var betaRun: Float = 0
        if let c, let layout = cLayout, beta != 0 {
            let pc = UnsafePointer(ctx.f32(c))
            // Y = beta * C broadcast, then accumulate the product into it.
            let bt = beta
            for o in 0..<layout.outerCount {
                let (_, ob) = layout.offsets(outer: o)
                let inner = layout.inner, sb = layout.innerStrideB
                let dst = py + o * inner, src = pc + ob
                if sb == 1 { for i in 0..<inner { dst[i] = bt * src[i] } }
                else { let v = bt * src[0]; for i in 0..<inner { dst[i] = v } }
            }
            betaRun = 1
        }
        return betaRun
    }

    /// This product as one item of a streamed-GEMV group (`streamsOwnGemv`), C already in Y.
    func groupItem(_ ctx: KernelContext, beta betaRun: Float) -> mfs_gemv_item {
        let q = int8Weight
        return mfs_gemv_item(w: q == nil ? UnsafePointer(ctx.f32(b)) : nil,
                             w8: q.map { UnsafePointer($0.values.storage.pointer.assumingMemoryBound(to: Int8.self)) },
                             scale: int8Scales.map { UnsafePointer($0.baseAddress!) }, per_row_scale: q?.axis == nil ? 0 : 1,
                             ldw: k, x: UnsafePointer(ctx.f32(a)), k: Int32(k), rows: Int32(n), alpha: alpha, beta: betaRun,
                             y: ctx.f32(y), epilogue: gemvEpilogue)
    }

    func run(_ ctx: KernelContext) throws {
        let pa = UnsafePointer(ctx.f32(a)), py = ctx.f32(y)
        // Not read (nor written: its DequantizeLinear is dropped) when the GEMV takes the int8 weight.
        let pb = UnsafePointer(ctx.f32(b))
        let betaRun = prefillBias(ctx)
        if streamsOwnGemv {
            // y[n] = alpha * op(B)^T a, activation applied by each part to its rows.
            var epilogue = gemvEpilogue
            if let next = nextStreamedWeight { epilogue.next_weight = next.pointer; epilogue.next_weight_bytes = next.bytes }
            if let q = int8Weight, let scales = int8Scales {
                let w8 = UnsafePointer(q.values.storage.pointer.assumingMemoryBound(to: Int8.self))
                mfs_sgemv_rows_i8(Conv3x3Path.best.rawValue, w8, k, scales.baseAddress!, q.axis == nil ? 0 : 1, pa,
                                  Int32(k), Int32(n), alpha, betaRun, py, Int32(ctx.threads.threads), &epilogue)
            } else {
                mfs_sgemv_rows(Conv3x3Path.best.rawValue, pb, k, pa, Int32(k), Int32(n), alpha, betaRun, py,
                               Int32(ctx.threads.threads), &epilogue)
            }
            return
        }
        if m == 1 {
            // y[n] = alpha * op(B)^T a
            if transB {
                ctx.gemm.sgemv(transA: false, rows: n, cols: k, alpha: alpha, a: pb, lda: k, x: pa, beta: betaRun, y: py)
            } else {
                ctx.gemm.sgemv(transA: true, rows: k, cols: n, alpha: alpha, a: pb, lda: n, x: pa, beta: betaRun, y: py)
            }
        } else {
            ctx.gemm.sgemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha,
                           a: pa, lda: transA ? m : k, b: pb, ldb: transB ? k : n, beta: betaRun, c: py, ldc: n)
        }
        if activation != .none || gain != 1 {
            let act = activation, gain = self.gain
            ctx.threads.forRanges(m * n, minPerThread: 16384) { r in
                let p = py + r.lowerBound
                switch act {
                case .none: for i in 0..<r.count { p[i] *= gain }
                case .relu: for i in 0..<r.count { let v = p[i]; p[i] = (v > 0 ? v : (v.isNaN ? v : 0)) * gain }
                case .leakyRelu(let al): for i in 0..<r.count { let v = p[i]; p[i] = (v >= 0 ? v : v * al) * gain }
                case .sigmoid: for i in 0..<r.count { p[i] = sigmoid(p[i]) * gain }
                case .tanh: for i in 0..<r.count { p[i] = tanhf(p[i]) * gain }
                }
            }
        }
    }
}

/// Independent one-row products run as one parallel loop (`mfs_sgemv_group`): the FTM's
/// 14 latents go through their rounds side by side, so each of its six levels of products is
/// one handoff between threads instead of 56. Each output gets the bits its own GEMV gives.
final class GemvGroupKernel: RuntimeKernel {
    let members: [GemmKernel]
    var kernelName: String { members.contains { $0.int8Weight != nil } ? "gemv(group)+int8" : "gemv(group)" }
    var flops: Double { members.reduce(0) { $0 + $1.flops } }

    /// The members' items, rebuilt in place every run (inputs and outputs may live elsewhere each run).
    private let items: UnsafeMutableBufferPointer<mfs_gemv_item>

    init(members: [GemmKernel]) {
        precondition(members.allSatisfy(\.streamsOwnGemv))
        self.members = members
        items = .allocate(capacity: members.count)
    }

    deinit { items.deallocate() }

    /// Whether `MEGAFS_GEMV_GROUPS=off` keeps every product a step of its own.
    static let enabled: Bool = getenv("MEGAFS_GEMV_GROUPS").map { let v = String(cString: $0); return v != "off" && v != "0" } ?? true

    func run(_ ctx: KernelContext) throws {
        for (i, m) in members.enumerated() { (items.baseAddress! + i).initialize(to: m.groupItem(ctx, beta: m.prefillBias(ctx))) }
        mfs_sgemv_group(Conv3x3Path.best.rawValue, items.baseAddress, Int32(items.count), Int32(ctx.threads.threads))
    }
}

/// NumPy matmul with batch broadcasting: one GEMM per batch entry, or a single GEMM when B
/// has no batch and A's batch folds into its rows.
final class MatMulKernel: RuntimeKernel {
    let a: Int, b: Int, y: Int
    let m: Int, n: Int, k: Int
    let batch: Int
    let offsetsA: [Int], offsetsB: [Int]
    let foldBatch: Bool
    var kernelName: String { "matmul" }
    var flops: Double { 2 * Double(batch) * Double(m) * Double(n) * Double(k) }

    init?(a: ValueDesc, b: ValueDesc, y: ValueDesc) {
        var sa = a.shape, sb = b.shape
        guard !sa.isEmpty, !sb.isEmpty else { return nil }
        if sa.count == 1 { sa = [1, sa[0]] }
        if sb.count == 1 { sb = [sb[0], 1] }
        m = sa[sa.count - 2]; k = sa[sa.count - 1]
        guard sb[sb.count - 2] == k else { return nil }
        n = sb[sb.count - 1]
        let ba = Array(sa.dropLast(2)), bb = Array(sb.dropLast(2))
        guard let bo = try? OperatorSupport.broadcast(ba, bb) else { return nil }
        batch = bo.reduce(1, *)
        guard batch * m * n == y.elementCount else { return nil }
        self.a = a.slot; self.b = b.slot; self.y = y.slot
        foldBatch = bb.reduce(1, *) == 1 && ba.count == bo.count
        if foldBatch {
            offsetsA = []; offsetsB = []
        } else {
            let layout = BroadcastLayout(a: ba.isEmpty ? [1] : ba, b: bb.isEmpty ? [1] : bb, out: bo.isEmpty ? [1] : bo)
            var oa: [Int] = [], ob: [Int] = []
            // Walk every batch index of the output with the collapsed layout.
            let inner = layout.inner
            for o in 0..<layout.outerCount {
                let (xa, xb) = layout.offsets(outer: o)
                for i in 0..<inner {
                    oa.append((xa + i * layout.innerStrideA) * m * k)
                    ob.append((xb + i * layout.innerStrideB) * k * n)
                }
            }
            offsetsA = oa; offsetsB = ob
        }
    }

    func run(_ ctx: KernelContext) throws {
        let pa = UnsafePointer(ctx.f32(a)), pb = UnsafePointer(ctx.f32(b)), py = ctx.f32(y)
        if foldBatch {
            let rows = batch * m
            if rows == 1 {
                ctx.gemm.sgemv(transA: true, rows: k, cols: n, alpha: 1, a: pb, lda: n, x: pa, beta: 0, y: py)
            } else {
                ctx.gemm.sgemm(transA: false, transB: false, m: rows, n: n, k: k, alpha: 1, a: pa, lda: k,
                               b: pb, ldb: n, beta: 0, c: py, ldc: n)
            }
            return
        }
        for i in 0..<batch {
            ctx.gemm.sgemm(transA: false, transB: false, m: m, n: n, k: k, alpha: 1, a: pa + offsetsA[i], lda: k,
                           b: pb + offsetsB[i], ldb: n, beta: 0, c: py + i * m * n, ldc: n)
        }
    }
}
