import MegaFSGraph
import MegaFSFormat
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// How a session runs.
public struct SessionOptions: Sendable {
    /// Threads for our loops and for OpenBLAS (both cores of the target machines by default).
    public var threads: Int
    /// Run the fusion passes (conv epilogues, modulated convolutions, blur, gemm activations).
    public var enableFusion: Bool
    /// Use the fast kernels; when false every node runs its MegaFSGraph reference kernel
    /// (and fusion is off). For testing.
    public var fastKernels: Bool
    /// The GEMM implementation.
    public var gemm: any GemmBackend
    /// Dynamic int8 mode: convolutions whose weights are int8 (a model converted with
    /// `--quantize int8`) quantize their input per call (symmetric, per tensor) and multiply
    /// with int8 dot products (AVX-512 VNNI, AVX2 or portable C, chosen from the CPU). Off:
    /// int8 weights are dequantized just before use and multiplied in float32.
    public var int8Activations: Bool
    /// How 3x3 convolutions and stride-2 transposed ones are computed (see `ConvAlgorithm`);
    /// nil: `MEGAFS_CONV` or auto.
    public var convAlgorithm: ConvAlgorithm?
    /// Bytes of an im2col (or col2im) band; tests make it small so that tiny models take
    /// several bands.
    var bandBudgetBytes = im2colBudgetBytes
    /// Keep a float32 weight whose every reader runs Winograd on a transform made once (U) as
    /// well. By default the session gives it back after the first plan and holds U alone:
    /// later plans then run those convs with Winograd whatever their shape.
    public var keepsOriginalWeights = false
    /// An arena to share with other sessions that never need to run at the same time (see
    /// `SharedArena`); nil: the session has its own.
    public var sharedArena: SharedArena?
    /// Run independent one-row products side by side as one step (`GemvGroupKernel`, with the
    /// swappers' nodes ordered by depth); default: on unless `MEGAFS_GEMV_GROUPS` is `off`.
    public var groupsGemvs = GemvGroupKernel.enabled
    /// Run StyleGAN2's last block (upsampling conv, 3x3 conv, ToRGB) as one step in bands of
    /// rows (`UpsamplingTailKernel`: the 1024 generator's arena 206 -> about 100 MB); default:
    /// on unless `MEGAFS_BANDED_TAIL` is `off`.
    public var bandsUpsamplingTail = UpsamplingTailKernel.enabled

    public init(threads: Int? = nil, enableFusion: Bool = true, fastKernels: Bool = true,
                gemm: any GemmBackend = OpenBLASGemm(), int8Activations: Bool = false, convAlgorithm: ConvAlgorithm? = nil) {
        self.threads = max(1, threads ?? ProcessInfo.processInfo.activeProcessorCount)
        self.enableFusion = enableFusion
        self.fastKernels = fastKernels
        self.gemm = gemm
        self.int8Activations = int8Activations
        self.convAlgorithm = convAlgorithm
    }
}

/// Time and memory of one node in a profiled run.
public struct OperatorProfile: Sendable {
    public var node: String
    public var opType: String
    public var kernel: String
    public var milliseconds: Double
    /// Bytes of the values the node writes.
    public var outputBytes: Int
    /// Bytes of scratch memory (im2col bands, transposed-conv planes) the kernel uses.
    public var scratchBytes: Int
    /// Floating-point operations of the node (a multiply-add counts 2); 0 where not counted.
    public var flops: Double = 0
    public var gflopsPerSecond: Double? { flops > 0 && milliseconds > 0 ? flops / milliseconds / 1e6 : nil }
}

/// A profiled run: per node and in total.
public struct RunProfile: Sendable {
    public var totalMilliseconds: Double
    public var operators: [OperatorProfile]
    /// Size of the activation arena (the peak of intermediate values and scratch alive at once).
    public var arenaBytes: Int
    /// What the intermediate values and scratch would take without reuse.
    public var unsharedBytes: Int
    /// Bytes of the graph outputs (allocated per run, outside the arena).
    public var outputBytes: Int

    /// Totals per operator type and kernel: (op type [kernel], nodes, milliseconds, output
    /// bytes, flops), slowest first.
    public var byOperatorType: [(opType: String, count: Int, milliseconds: Double, outputBytes: Int, flops: Double)] {
        var table: [String: (Int, Double, Int, Double)] = [:]
        for op in operators {
            let key = "\(op.opType) [\(op.kernel)]"
            let e = table[key] ?? (0, 0, 0, 0)
            table[key] = (e.0 + 1, e.1 + op.milliseconds, e.2 + op.outputBytes, e.3 + op.flops)
        }
        return table.map { ($0.key, $0.value.0, $0.value.1, $0.value.2, $0.value.3) }.sorted { $0.milliseconds > $1.milliseconds }
    }

    /// Counted floating-point operations of the whole run.
    public var totalFlops: Double { operators.reduce(0) { $0 + $1.flops } }
}

/// What a plan for a set of input shapes looks like.
public struct PlanSummary: Sendable {
    public var inputShapes: [String: [Int]]
    public var nodeCount: Int
    public var arenaBytes: Int
    public var unsharedBytes: Int
    public var fusions: [(name: String, count: Int)]
    /// Nodes per kernel name ("conv(im2col)", "reference", ...).
    public var kernels: [(name: String, count: Int)]
}

/// Runs a model on the CPU: loads it, checks every operator and attribute is supported, plans
/// a static schedule and memory arena per set of input shapes (cached), and runs it.
///
/// Runs of one session are serialized (the arena is shared); use one session per thread for
/// concurrent runs.
public final class InferenceSession: @unchecked Sendable {
    /// The model's graph. After the first plan, a weight the session holds only in its
    /// Winograd form is a placeholder there (`storage.isReleased`, unreadable).
    public var graph: Graph {
        lock.lock(); defer { lock.unlock() }
        return baseGraph
    }
    private var baseGraph: Graph
    public let options: SessionOptions
    public let inputs: [ValueInfo]
    public let outputs: [ValueInfo]
    private let heldWeights = HeldWeights()

    private let lock = NSLock()
    private var plans: [[[Int]]: ExecutionPlan] = [:]
    private var lastPlan: ExecutionPlan?
    /// The arena of a session not given a shared one.
    private let ownArena = SharedArena()

    /// Reads a `.mfs` model file.
    public convenience init(modelPath: String, options: SessionOptions = SessionOptions()) throws {
        let graph: Graph
        do {
            graph = try ModelFileReader(path: modelPath).readGraph()
        } catch let e as RuntimeError {
            throw e
        } catch {
            throw RuntimeError.modelFile("cannot load \(modelPath): \(error)")
        }
        try self.init(graph: graph, options: options)
    }

    /// Takes a graph (after the converter's passes, or straight from the ONNX importer).
    public init(graph: Graph, options: SessionOptions = SessionOptions()) throws {
        var g = graph
        let problems = Validation.problems(in: g)
        if !problems.isEmpty { throw RuntimeError.unsupportedModel(problems) }
        do { try g.sortTopologically() } catch { throw RuntimeError.planning("\(error)") }
        self.baseGraph = g
        self.inputs = g.inputs
        self.outputs = g.outputs
        self.options = options
        options.gemm.setThreads(options.threads)
        // Fixed-shape models are planned right away.
        let shapes = g.inputs.compactMap { $0.type.concreteShape }
        if shapes.count == g.inputs.count {
            let probes = zip(g.inputs, shapes).map { Tensor(zeros: $0.type.dtype, shape: $1) }
            _ = try? plan(for: probes)
        }
    }

    /// Runs the model. `inputs` maps every graph input name to a tensor of its type.
    public func run(_ inputs: [String: Tensor]) throws -> [String: Tensor] {
        try run(inputs, profile: false).outputs
    }

    /// Runs the model; with `profile`, times every node.
    public func run(_ inputs: [String: Tensor], profile: Bool) throws -> (outputs: [String: Tensor], profile: RunProfile?) {
        let ordered = try orderedInputs(inputs)
        lock.lock()
        defer { lock.unlock() }
        let plan = try planLocked(ordered)
        return try execute(plan, inputs: ordered, profile: profile)
    }

    /// Plans (or returns the cached plan) for these input shapes without running.
    public func prepare(inputShapes: [String: [Int]]) throws -> PlanSummary {
        var tensors: [String: Tensor] = [:]
        for input in inputs {
            guard let shape = inputShapes[input.name] else { throw RuntimeError.missingInput(name: input.name) }
            tensors[input.name] = Tensor(zeros: input.type.dtype, shape: shape)
        }
        let ordered = try orderedInputs(tensors)
        let plan = try self.plan(for: ordered)
        return summary(plan)
    }

    /// The fusions of the most recent plan (none before a model is planned).
    public var fusions: [(name: String, count: Int)] {
        lock.lock(); defer { lock.unlock() }
        return lastPlan?.fusions ?? []
    }

    /// The summary of the most recent plan.
    public var lastPlanSummary: PlanSummary? {
        lock.lock(); defer { lock.unlock() }
        return lastPlan.map(summary)
    }

    /// The specialised graph of the most recent plan (fused nodes in domain `runtimeDomain`).
    public var plannedGraph: Graph? {
        lock.lock(); defer { lock.unlock() }
        return lastPlan?.graph
    }

    /// For tests: the steps of the most recent plan, each with whether its first output was
    /// placed over its first input's memory.
    var lastPlanSteps: [(node: Node, kernel: RuntimeKernel, overFirstInput: Bool)] {
        lock.lock(); defer { lock.unlock() }
        guard let plan = lastPlan else { return [] }
        var slotOf: [String: Int] = [:]
        for (i, v) in plan.values.enumerated() { slotOf[v.name] = i }
        return plan.steps.map { step in
            var shared = false
            if let name = step.node.inputs.first, let i = slotOf[name], let o = step.outputSlots.first,
               case .arena(let a) = plan.values[i].location, case .arena(let b) = plan.values[o].location {
                shared = a == b
            }
            return (step.node, step.kernel, shared)
        }
    }

    // MARK: - internals

    private func summary(_ plan: ExecutionPlan) -> PlanSummary {
        var shapes: [String: [Int]] = [:]
        for (i, input) in inputs.enumerated() { shapes[input.name] = plan.inputShapes[i] }
        let kernels = plan.steps.reduce(into: [String: Int]()) { $0[$1.kernel.kernelName, default: 0] += 1 }
            .sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.map { (name: $0.key, count: $0.value) }
        return PlanSummary(inputShapes: shapes, nodeCount: plan.steps.count, arenaBytes: plan.arenaBytes,
                           unsharedBytes: plan.unsharedBytes, fusions: plan.fusions, kernels: kernels)
    }

    private func orderedInputs(_ inputs: [String: Tensor]) throws -> [Tensor] {
        let names = self.inputs.map(\.name)
        for name in inputs.keys.sorted() where !names.contains(name) {
            throw RuntimeError.unknownInput(name: name, expected: names)
        }
        return try self.inputs.map { info in
            guard let t = inputs[info.name] else { throw RuntimeError.missingInput(name: info.name) }
            guard t.dtype == info.type.dtype else {
                throw RuntimeError.wrongInputType(name: info.name, expected: info.type.dtype.name, got: t.dtype.name)
            }
            if let declared = info.type.shape {
                let ok = declared.count == t.shape.count &&
                    zip(declared, t.shape).allSatisfy { d, v in d.value == nil || d.value == v }
                if !ok {
                    throw RuntimeError.wrongInputShape(name: info.name,
                        expected: "[\(declared.map(\.description).joined(separator: ", "))]", got: t.shape)
                }
            }
            return t
        }
    }

    private func plan(for inputs: [Tensor]) throws -> ExecutionPlan {
        lock.lock(); defer { lock.unlock() }
        return try planLocked(inputs)
    }

    private func planLocked(_ inputs: [Tensor]) throws -> ExecutionPlan {
        let key = inputs.map(\.shape)
        if let p = plans[key] { lastPlan = p; return p }
        let p = try Planner.plan(base: &baseGraph, inputs: inputs, options: options, held: heldWeights)
        HeapTrim.releaseFreePages()
        plans[key] = p
        lastPlan = p
        return p
    }

    /// A value the run just computed, as `run(_:observing:)` shows it: its bytes are valid only
    /// during the call (copy what you keep).
    public struct ObservedValue {
        public let name: String
        public let node: String
        public let opType: String
        public let dtype: DType
        public let shape: [Int]
        public let bytes: UnsafeRawBufferPointer

        /// A copy of the value as a tensor.
        public func copy() -> Tensor {
            (try? Tensor(dtype: dtype, shape: shape, bytes: bytes)) ?? Tensor(zeros: dtype, shape: shape)
        }
    }

    /// Runs the model and shows every computed value to `observer` right after the node
    /// producing it ran (fused nodes show their fused output only): for measuring drift layer
    /// by layer. Run with fusion off to see every node of the graph.
    public func run(_ inputs: [String: Tensor], observing observer: (ObservedValue) -> Void) throws -> [String: Tensor] {
        let ordered = try orderedInputs(inputs)
        lock.lock()
        defer { lock.unlock() }
        let plan = try planLocked(ordered)
        var stepIndex = [Int: Int]()
        for (i, step) in plan.steps.enumerated() { for slot in step.outputSlots { stepIndex[slot] = i } }
        return try withoutActuallyEscaping(observer) { observer in
            try execute(plan, inputs: ordered, profile: false) { slot, address in
                let v = plan.values[slot]
                let node = stepIndex[slot].map { plan.steps[$0].node }
                observer(ObservedValue(name: v.name, node: node?.displayName ?? "", opType: node?.opType ?? "",
                                       dtype: v.dtype, shape: v.shape,
                                       bytes: UnsafeRawBufferPointer(start: address, count: v.byteCount)))
            }.outputs
        }
    }

    /// Runs and returns, besides the outputs, a copy of every value taken right after the node
    /// producing it ran (for tests of the memory plan against a reference, node by node).
    func runCapturingValues(_ inputs: [String: Tensor]) throws -> (outputs: [String: Tensor], values: [String: Tensor]) {
        let ordered = try orderedInputs(inputs)
        lock.lock()
        defer { lock.unlock() }
        let plan = try planLocked(ordered)
        var values: [String: Tensor] = [:]
        let r = try execute(plan, inputs: ordered, profile: false) { slot, address in
            let v = plan.values[slot]
            values[v.name] = try? Tensor(dtype: v.dtype, shape: v.shape, bytes: UnsafeRawBufferPointer(start: address, count: v.byteCount))
        }
        return (r.outputs, values)
    }

    /// The current plan's arena layout: (value name, offset, bytes) of every arena value.
    var arenaLayout: [(name: String, offset: Int, bytes: Int)] {
        lock.lock(); defer { lock.unlock() }
        guard let p = lastPlan else { return [] }
        return p.values.compactMap { v in
            if case .arena(let o) = v.location { return (v.name, o, v.byteCount) } else { return nil }
        }
    }

    /// The previous run's output buffers. One the caller has let go of is reused (every kernel
    /// writes all of its output, as it does in the arena), which spares a fresh allocation its
    /// page faults and zeroing: 134 MB per call for a conv at 1024 x 1024 x 32.
    private var spareOutputs: [TensorStorage] = []

    private func reusableOutput(byteCount: Int) -> TensorStorage {
        for i in spareOutputs.indices where spareOutputs[i].byteCount == byteCount {
            if isKnownUniquelyReferenced(&spareOutputs[i]) { return spareOutputs.remove(at: i) }
        }
        return TensorStorage(uninitializedByteCount: byteCount)
    }

    private func execute(_ plan: ExecutionPlan, inputs: [Tensor], profile: Bool,
                         capture: ((Int, UnsafeMutableRawPointer) -> Void)? = nil) throws -> (outputs: [String: Tensor], profile: RunProfile?) {
        return try (options.sharedArena ?? ownArena).withBuffer(atLeast: plan.arenaBytes) { base in
            try execute(plan, arena: base, inputs: inputs, profile: profile, capture: capture)
        }
    }

    private func execute(_ plan: ExecutionPlan, arena base: UnsafeMutableRawPointer, inputs: [Tensor], profile: Bool,
                         capture: ((Int, UnsafeMutableRawPointer) -> Void)?) throws -> (outputs: [String: Tensor], profile: RunProfile?) {
        let outputStorage: [TensorStorage?] = plan.outputStorageBytes.enumerated().map { i, bytes in
            if case .output(let k) = plan.values[plan.outputSlots[i]].location, k == i { return reusableOutput(byteCount: bytes) }
            return nil
        }
        defer { spareOutputs = outputStorage.compactMap { $0 } }
        let addresses = UnsafeMutablePointer<UnsafeMutableRawPointer>.allocate(capacity: max(1, plan.values.count))
        defer { addresses.deallocate() }
        for (i, v) in plan.values.enumerated() {
            switch v.location {
            case .arena(let offset): addresses[i] = base + offset
            case .constant(let t): addresses[i] = t.storage.pointer
            case .input(let k): addresses[i] = inputs[k].storage.pointer
            case .output(let k): addresses[i] = outputStorage[k]!.pointer
            }
        }
        options.gemm.setThreads(options.threads)
        let threads = ThreadPartition(threads: options.threads)
        var ops: [OperatorProfile] = []
        let start = DispatchTime.now().uptimeNanoseconds
        for step in plan.steps {
            let ctx = KernelContext(addresses: addresses, scratch: base + step.scratchOffset, threads: threads, gemm: options.gemm)
            if profile {
                let t0 = DispatchTime.now().uptimeNanoseconds
                try step.kernel.run(ctx)
                let t1 = DispatchTime.now().uptimeNanoseconds
                ops.append(OperatorProfile(node: step.node.displayName, opType: step.node.opType, kernel: step.kernel.kernelName,
                                           milliseconds: Double(t1 - t0) / 1e6, outputBytes: step.outputBytes,
                                           scratchBytes: step.kernel.scratchBytes, flops: step.kernel.flops))
            } else {
                try step.kernel.run(ctx)
            }
            if let capture { for slot in step.outputSlots { capture(slot, addresses[slot]) } }
        }
        let total = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6
        var outputs: [String: Tensor] = [:]
        for (i, o) in plan.graph.outputs.enumerated() {
            let slot = plan.outputSlots[i]
            let v = plan.values[slot]
            switch v.location {
            case .output(let k): outputs[o.name] = Tensor(dtype: v.dtype, shape: v.shape, storage: outputStorage[k]!)
            case .constant(let t): outputs[o.name] = t
            case .input(let k): outputs[o.name] = inputs[k].reshaped(v.shape)
            case .arena(let offset):
                outputs[o.name] = try Tensor(dtype: v.dtype, shape: v.shape, bytes: UnsafeRawBufferPointer(start: base + offset, count: v.byteCount))
            }
        }
        let prof = profile ? RunProfile(totalMilliseconds: total, operators: ops, arenaBytes: plan.arenaBytes,
                                        unsharedBytes: plan.unsharedBytes, outputBytes: plan.outputStorageBytes.reduce(0, +)) : nil
        return (outputs, prof)
    }
}
