import MegaFSGraph
import Foundation

/// Where a value's bytes live during a run.
enum Location {
    case arena(offset: Int)
    case constant(Tensor)
    case input(Int)       // graph input index
    case output(Int)      // graph output storage index
}

struct PlannedValue {
    let name: String
    let dtype: DType
    let shape: [Int]
    var byteCount: Int { shape.reduce(1, *) * dtype.byteSize }
    var location: Location
}

struct PlannedStep {
    let node: Node
    let kernel: RuntimeKernel
    let scratchOffset: Int
    let outputSlots: [Int]
    let outputBytes: Int
}

/// A static schedule for one set of input shapes: every value's shape and place, one kernel
/// per node, and the arena that holds the intermediate values.
final class ExecutionPlan {
    let inputShapes: [[Int]]
    let values: [PlannedValue]
    let steps: [PlannedStep]
    let arenaBytes: Int
    /// Sum of the bytes of all intermediate values and scratch, as if nothing were reused.
    let unsharedBytes: Int
    let outputStorageBytes: [Int]
    /// Per graph output: the slot holding it.
    let outputSlots: [Int]
    let fusions: [(name: String, count: Int)]
    let graph: Graph

    init(inputShapes: [[Int]], values: [PlannedValue], steps: [PlannedStep], arenaBytes: Int, unsharedBytes: Int,
         outputStorageBytes: [Int], outputSlots: [Int], fusions: [(name: String, count: Int)], graph: Graph) {
        self.inputShapes = inputShapes; self.values = values; self.steps = steps
        self.arenaBytes = arenaBytes; self.unsharedBytes = unsharedBytes
        self.outputStorageBytes = outputStorageBytes; self.outputSlots = outputSlots
        self.fusions = fusions; self.graph = graph
    }
}

/// Builds plans: resolves shapes for concrete inputs, fuses, picks kernels, plans the arena.
enum Planner {
    static let alignment = 64

    @inline(__always) static func align(_ n: Int) -> Int { (n + alignment - 1) / alignment * alignment }

    /// The graph with concrete input types, shape computations folded, fused (when asked) and
    /// every value's type inferred.
    static func specialize(_ base: Graph, inputs: [Tensor], fusion: Bool, groupsGemvs: Bool = false) throws -> Graph {
        var g = base
        for (i, t) in inputs.enumerated() { g.inputs[i].type = t.type }
        g.valueTypes = [:]
        do {
            try PassPipeline([ConstantFolding(keep: ["DequantizeLinear"]), IdentityElimination(), DeadNodeElimination(), ShapeInference()]).run(&g)
        } catch let e as RuntimeError {
            throw e
        } catch {
            throw RuntimeError.planning("\(error)")
        }
        if fusion {
            do { try PassPipeline(FusionPasses.all).run(&g) } catch {
                throw RuntimeError.planning("fusion failed: \(error)")
            }
        }
        scheduleConstantNodesLate(&g)
        if groupsGemvs && scheduleByLevel(&g) { scheduleConstantNodesLate(&g) }
        return g
    }

    /// In a graph of one-row products only (the swappers: no convolution, at least 8 Gemm
    /// nodes), orders the nodes by their depth from the inputs (stable), so that independent
    /// products sit next to each other and the planner can run them as one group
    /// (`GemvGroupKernel`): the FTM's 14 latents then go through their rounds side by side.
    /// Returns whether it reordered. (Its values are a few kB each, so having more of them
    /// alive at once costs nothing worth counting.)
    @discardableResult
    static func scheduleByLevel(_ g: inout Graph) -> Bool {
        let convs: Set<String> = ["Conv", "FusedConv", "ConvTranspose"]
        guard !g.nodes.contains(where: { convs.contains($0.opType) }),
              g.nodes.filter({ $0.opType == "Gemm" || $0.opType == "FusedGemm" }).count >= 8 else { return false }
        var depthOf: [String: Int] = [:]
        var depths: [Int] = []
        depths.reserveCapacity(g.nodes.count)
        for node in g.nodes {
            // Nodes that read only constants (int8 weights' DequantizeLinear) do not count as a level.
            let d = node.inputs.filter { !$0.isEmpty }.map { depthOf[$0] ?? -1 }.max() ?? -1
            let depth = node.inputs.allSatisfy({ $0.isEmpty || g.initializers[$0] != nil }) ? d : d + 1
            depths.append(depth)
            for o in node.outputs where !o.isEmpty { depthOf[o] = depth }
        }
        let order = g.nodes.indices.sorted { depths[$0] != depths[$1] ? depths[$0] < depths[$1] : $0 < $1 }
        guard order != Array(g.nodes.indices) else { return false }
        g.nodes = order.map { g.nodes[$0] }
        return true
    }

    /// Moves every node that reads only initializers (the DequantizeLinear of an int8 weight)
    /// to just before its first consumer, so that its float result is alive only while needed
    /// and not from the start of the run.
    static func scheduleConstantNodesLate(_ g: inout Graph) {
        let outputs = Set(g.outputs.map(\.name))
        var firstConsumer: [String: Int] = [:]
        for (i, node) in g.nodes.enumerated() {
            for input in node.inputs where !input.isEmpty && firstConsumer[input] == nil { firstConsumer[input] = i }
        }
        var deferred: [Int: [Node]] = [:]
        var order: [Node?] = g.nodes
        for (i, node) in g.nodes.enumerated() {
            guard !node.inputs.isEmpty, node.inputs.allSatisfy({ $0.isEmpty || g.initializers[$0] != nil }),
                  !node.outputs.contains(where: outputs.contains) else { continue }
            let consumers = node.outputs.compactMap { firstConsumer[$0] }
            guard let first = consumers.min(), first > i + 1 else { continue }
            deferred[first, default: []].append(node)
            order[i] = nil
        }
        guard !deferred.isEmpty else { return }
        var nodes: [Node] = []
        nodes.reserveCapacity(g.nodes.count)
        for (i, node) in order.enumerated() {
            nodes += deferred[i] ?? []
            if let node { nodes.append(node) }
        }
        g.nodes = nodes
    }

    /// With `held` (the session's), a float32 weight whose only reader is a conv that made its
    /// Winograd U here is given back as soon as U exists: `base`, the plan and its graph then
    /// hold an unreadable placeholder in its place (so its memory goes before the next U is
    /// made, unless the caller keeps the graph it gave the session), and U is kept in `held`
    /// for later plans.
    static func plan(base: inout Graph, inputs: [Tensor], options: SessionOptions, held: HeldWeights? = nil) throws -> ExecutionPlan {
        let fusion = options.enableFusion && options.fastKernels
        var g = try specialize(base, inputs: inputs, fusion: fusion, groupsGemvs: options.groupsGemvs && fusion)
        var reads: [String: Int] = [:]
        for node in g.nodes { for name in node.inputs where !name.isEmpty { reads[name, default: 0] += 1 } }
        for o in g.outputs { reads[o.name, default: 0] += 1 }
        // Names per storage: a constant folded into a view of another shares its bytes.
        var namesOfStorage: [ObjectIdentifier: Set<String>] = [:]
        if held != nil && !options.keepsOriginalWeights {
            for graph in [base, g] {
                for (name, t) in graph.initializers { namesOfStorage[ObjectIdentifier(t.storage), default: []].insert(name) }
            }
        }

        var values: [PlannedValue] = []
        var slotOf: [String: Int] = [:]
        let outputIndex: [String: Int] = {
            var m: [String: Int] = [:]
            for (i, o) in g.outputs.enumerated() where m[o.name] == nil { m[o.name] = i }
            return m
        }()

        // Roots: groups of values sharing memory (views, in-place).
        struct Root { var kind: Int; var bytes: Int; var first: Int; var last: Int; var members: [Int] }
        // kind: 0 arena, 1 constant, 2 input, 3 output, 4 scratch
        var roots: [Root] = []
        var rootOf: [Int] = []

        func addValue(_ v: PlannedValue, root: Int?) -> Int {
            let slot = values.count
            values.append(v)
            slotOf[v.name] = slot
            if let root { rootOf.append(root); roots[root].members.append(slot) } else { rootOf.append(-1) }
            return slot
        }
        for (i, input) in g.inputs.enumerated() {
            roots.append(Root(kind: 2, bytes: inputs[i].byteCount, first: -1, last: Int.max, members: []))
            _ = addValue(PlannedValue(name: input.name, dtype: inputs[i].dtype, shape: inputs[i].shape, location: .input(i)),
                         root: roots.count - 1)
        }
        func constantSlot(_ name: String) -> Int? {
            if let s = slotOf[name] { return s }
            guard let t = g.initializers[name] else { return nil }
            roots.append(Root(kind: 1, bytes: t.byteCount, first: -1, last: Int.max, members: []))
            return addValue(PlannedValue(name: name, dtype: t.dtype, shape: t.shape, location: .constant(t)), root: roots.count - 1)
        }

        // Last use of every value name (graph outputs live to the end).
        var lastUse: [String: Int] = [:]
        for (i, node) in g.nodes.enumerated() { for input in node.inputs where !input.isEmpty { lastUse[input] = i } }
        for o in g.outputs { lastUse[o.name] = Int.max }

        // Gives back the bytes of constant `slot` (read under `names`): every name of them in
        // `base` and `g`, and the slot, get an unreadable placeholder, returned as the slot's.
        func giveBack(_ t: Tensor, names: Set<String>, slot: Int) throws -> Tensor {
            guard let storage = TensorStorage.released(byteCount: t.byteCount) else {
                throw RuntimeError.planning("cannot reserve address space for the placeholder of '\(values[slot].name)'")
            }
            for name in names {
                if let old = g.initializers[name] { g.initializers[name] = Tensor(dtype: old.dtype, shape: old.shape, storage: storage) }
                if let old = base.initializers[name] { base.initializers[name] = Tensor(dtype: old.dtype, shape: old.shape, storage: storage) }
            }
            let placeholder = Tensor(dtype: t.dtype, shape: t.shape, storage: storage)
            values[slot].location = .constant(placeholder)
            return placeholder
        }

        typealias Step = (node: Node, kernel: RuntimeKernel, outputs: [Int], scratchRoot: Int?)
        var steps: [Step] = []
        var nodeIndexOf: [ObjectIdentifier: Int] = [:]
        var quantizedValues: [String: QuantizedConstant] = [:]
        // Per dequantized value: its DequantizeLinear's step and int8 weight.
        var dequantizedFrom: [String: (step: Int, int8: String)] = [:]
        var unshared = 0
        for (i, node) in g.nodes.enumerated() {
            var inDescs: [ValueDesc?] = []
            for name in node.inputs {
                if name.isEmpty { inDescs.append(nil); continue }
                guard let slot = slotOf[name] ?? constantSlot(name) else {
                    throw RuntimeError.planning("value '\(name)' read by \(node.displayName) is never produced")
                }
                let v = values[slot]
                var constant: Tensor? = nil
                if case .constant(let t) = v.location { constant = t }
                inDescs.append(ValueDesc(slot: slot, dtype: v.dtype, shape: v.shape, constant: constant,
                                         quantized: quantizedValues[name]))
            }
            // Output types, concrete.
            var outDescs: [ValueDesc?] = []
            var outSlots: [Int] = []
            for name in node.outputs {
                if name.isEmpty { outDescs.append(nil); continue }
                guard let t = g.valueTypes[name] ?? g.outputs.first(where: { $0.name == name })?.type,
                      let shape = t.concreteShape else {
                    let inShapes = zip(g.inputs, inputs).map { "\($0.name)\($1.shape)" }.joined(separator: ", ")
                    throw RuntimeError.planning("the shape of '\(name)' (output of \(node.displayName), \(node.opType)) is not known for inputs \(inShapes)")
                }
                let slot = addValue(PlannedValue(name: name, dtype: t.dtype, shape: shape, location: .arena(offset: 0)), root: nil)
                outSlots.append(slot)
                outDescs.append(ValueDesc(slot: slot, dtype: t.dtype, shape: shape, constant: nil))
            }
            var req = KernelRequest(node: node, opset: g.opset, inputs: inDescs, outputs: outDescs)
            req.int8Activations = options.int8Activations
            req.convAlgorithm = options.convAlgorithm ?? .environment
            req.bandBudgetBytes = options.bandBudgetBytes
            req.threads = ThreadPartition(threads: options.threads)
            req.heldWeights = held
            var kernel = try KernelFactory.make(req, fast: options.fastKernels)
            if let held, !options.keepsOriginalWeights, node.inputs.count > 1, let u = (kernel as? ConvKernel)?.heldTransform,
               let w = inDescs[1], let t = w.constant, t.dtype == .float32, !t.storage.isReleased, reads[node.inputs[1]] == 1,
               let names = namesOfStorage[ObjectIdentifier(t.storage)],
               names.allSatisfy({ $0 == node.inputs[1] || reads[$0] == nil }) {
                // (Other names of these bytes, like the generator's 5-D weight this conv's is a
                // view of, are read by no node of this plan.)
                _ = try giveBack(t, names: names, slot: w.slot)
                held.winograd[node.inputs[1]] = u
            }
            if let dq = kernel as? DequantizeKernel, let out = node.outputs.first, !out.isEmpty {
                quantizedValues[out] = dq.weight
                dequantizedFrom[out] = (steps.count, node.inputs[0])
            }
            // A dynamic-int8 conv packed its int8 weight, which only its DequantizeLinear (not
            // run then) reads: hold the pack instead.
            if let held, !options.keepsOriginalWeights, node.inputs.count > 1, let conv = kernel as? ConvKernel,
               let packed = conv.int8Weights, conv.skipsFloatWeight == inDescs[1]?.slot, reads[node.inputs[1]] == 1,
               let source = dequantizedFrom[node.inputs[1]], reads[source.int8] == 1,
               let t = g.initializers[source.int8], t.dtype == .int8, !t.storage.isReleased, let slot = slotOf[source.int8],
               let names = namesOfStorage[ObjectIdentifier(t.storage)], names.allSatisfy({ $0 == source.int8 || reads[$0] == nil }),
               let dq = steps[source.step].kernel as? DequantizeKernel {
                let placeholder = try giveBack(t, names: names, slot: slot)
                held.int8[node.inputs[1]] = packed
                let q = QuantizedConstant(values: placeholder, scales: dq.weight.scales, axis: dq.weight.axis)
                quantizedValues[node.inputs[1]] = q
                let s = steps[source.step]
                steps[source.step] = (s.node, DequantizeKernel(weight: q, y: dq.y), s.outputs, s.scratchRoot)
            }

            // Memory of each output.
            for (k, desc) in outDescs.enumerated() {
                guard let desc else { continue }
                let slot = desc.slot
                let name = node.outputs[k]
                if let oi = outputIndex[name] {
                    if case .view(let vi) = kernel.aliasing, k == 0, let src = inDescs[vi] {
                        kernel = CopyKernel(src: src.slot, dst: slot, bytes: desc.byteCount)
                    }
                    values[slot].location = .output(oi)
                    roots.append(Root(kind: 3, bytes: desc.byteCount, first: i, last: Int.max, members: [slot]))
                    rootOf[slot] = roots.count - 1
                    continue
                }
                var joined: Int? = nil
                if k == 0 {
                    switch kernel.aliasing {
                    case .view(let vi):
                        if let src = inDescs[vi], src.byteCount == desc.byteCount { joined = rootOf[src.slot] }
                    case .inPlace(let vi):
                        if vi < inDescs.count, let src = inDescs[vi], src.byteCount == desc.byteCount, src.dtype == desc.dtype {
                            let r = rootOf[src.slot]
                            let deadAfter = roots[r].members.allSatisfy { (lastUse[values[$0].name] ?? -1) <= i }
                            if roots[r].kind == 0 && deadAfter { joined = r }
                        }
                    case .none: break
                    }
                }
                if case .view = kernel.aliasing, joined != nil {} else { unshared += align(desc.byteCount) }
                if let r = joined {
                    rootOf[slot] = r
                    roots[r].members.append(slot)
                } else {
                    roots.append(Root(kind: 0, bytes: align(desc.byteCount), first: i, last: i, members: [slot]))
                    rootOf[slot] = roots.count - 1
                }
            }
            var scratchRoot: Int? = nil
            if kernel.scratchBytes > 0 {
                roots.append(Root(kind: 4, bytes: align(kernel.scratchBytes), first: i, last: i, members: []))
                unshared += align(kernel.scratchBytes)
                scratchRoot = roots.count - 1
            }
            steps.append((node, kernel, outSlots, scratchRoot))
            nodeIndexOf[ObjectIdentifier(kernel)] = i
        }

        // Per slot: the steps that read it (in order).
        func readersBySlot() -> [Int: [Int]] {
            var readers: [Int: [Int]] = [:]
            for (i, step) in steps.enumerated() {
                for name in step.node.inputs where !name.isEmpty { if let slot = slotOf[name] { readers[slot, default: []].append(i) } }
            }
            return readers
        }

        // A DequantizeLinear whose every reader uses the int8 weight directly (dynamic int8
        // convs, the int8 GEMV) does not run (its buffer stays
        // planned, but nothing writes or reads it).
        do {
            let readers = readersBySlot()
            var drop = Set<Int>()
            for (i, step) in steps.enumerated() where step.node.opType == "DequantizeLinear" && step.outputs.count == 1 {
                let slot = step.outputs[0]
                guard case .arena = values[slot].location, let r = readers[slot], !r.isEmpty else { continue }
                if r.allSatisfy({ steps[$0].kernel.skipsFloatWeight == slot }) { drop.insert(i) }
            }
            steps = steps.enumerated().filter { !drop.contains($0.offset) }.map(\.element)
        }

        // A weight the session gave back may only reach the conv that holds its U (an int8 one,
        // only a DequantizeLinear that does not run).
        for step in steps {
            for (k, name) in step.node.inputs.enumerated() where !name.isEmpty {
                guard let t = g.initializers[name], t.storage.isReleased else { continue }
                guard k == 1, let mine = (step.kernel as? ConvKernel)?.heldTransform, let kept = held?.winograd[name],
                      mine.u === kept.u else {
                    throw RuntimeError.planning("the weight '\(name)' is held only in a transformed form, but "
                        + "\(step.node.displayName) (\(step.kernel.kernelName)) would read it as it was "
                        + "(SessionOptions.keepsOriginalWeights keeps it)")
                }
            }
        }

        // StyleGAN2's last block (upsampling conv, 3x3 conv, ToRGB) runs as one step in bands of
        // rows (UpsamplingTailKernel) where the two intermediate values have no other reader:
        // they then take no arena space. The step runs at the ToRGB's place; the inputs of the
        // first two nodes stay alive until then.
        var tails = 0
        if options.bandsUpsamplingTail {
            let readersOf = readersBySlot()
            func soleReader(_ step: Step) -> Int? {
                guard step.outputs.count == 1, case .arena = values[step.outputs[0]].location,
                      let r = readersOf[step.outputs[0]], r.count == 1 else { return nil }
                return r[0]
            }
            var replaced: [Int: Step] = [:]
            var dropped = Set<Int>()
            for (ai, a) in steps.enumerated() where a.kernel is ConvTransposeKernel && !dropped.contains(ai) {
                guard let bi = soleReader(a), let ci = soleReader(steps[bi]), replaced[ci] == nil,
                      let tail = UpsamplingTailKernel(up: a.kernel, conv: steps[bi].kernel, toRGB: steps[ci].kernel) else { continue }
                let b = steps[bi], c = steps[ci]
                let at = nodeIndexOf[ObjectIdentifier(c.kernel)]!
                for name in a.node.inputs + b.node.inputs where !name.isEmpty { lastUse[name] = max(lastUse[name] ?? at, at) }
                for slot in [a.outputs[0], b.outputs[0]] where roots[rootOf[slot]].kind == 0 {
                    unshared -= roots[rootOf[slot]].bytes
                    roots[rootOf[slot]].kind = 5   // never placed
                }
                for step in [a, b, c] {
                    if let r = step.scratchRoot { unshared -= roots[r].bytes; roots[r].kind = 5 }
                }
                roots.append(Root(kind: 4, bytes: align(tail.scratchBytes), first: at, last: at, members: []))
                unshared += align(tail.scratchBytes)
                let intermediates: Set<String> = [a.node.outputs[0], b.node.outputs[0]]
                let node = Node(name: "\(a.node.displayName) > \(b.node.displayName) > \(c.node.displayName)",
                                opType: c.node.opType, domain: c.node.domain,
                                inputs: (a.node.inputs + b.node.inputs + c.node.inputs).filter { !intermediates.contains($0) },
                                outputs: c.node.outputs, attributes: ["fusion": .string("upsampling-tail")])
                replaced[ci] = (node, tail, c.outputs, roots.count - 1)
                nodeIndexOf[ObjectIdentifier(tail)] = at
                dropped.formUnion([ai, bi])
            }
            tails = replaced.count
            if !replaced.isEmpty {
                steps = steps.indices.filter { !dropped.contains($0) }.map { replaced[$0] ?? steps[$0] }
            }
        }

        // Runs of independent streamed GEMVs become one step each (GemvGroupKernel). A member's
        // outputs are then written from the run's first node on and its inputs read until the
        // run's last node: their lifetimes are widened so that no arena placement overlaps them.
        if options.groupsGemvs {
            var grouped: [Step] = []
            var run: [Int] = []
            var produced = Set<Int>()
            func streams(_ step: Step) -> Bool {
                (step.kernel as? GemmKernel)?.streamsOwnGemv == true && step.scratchRoot == nil
            }
            func flush() {
                defer { run = []; produced = [] }
                guard run.count >= 2 else { for i in run { grouped.append(steps[i]) }; return }
                let first = nodeIndexOf[ObjectIdentifier(steps[run[0]].kernel)]!
                let last = nodeIndexOf[ObjectIdentifier(steps[run[run.count - 1]].kernel)]!
                for i in run {
                    for slot in steps[i].outputs { roots[rootOf[slot]].first = min(roots[rootOf[slot]].first, first) }
                    for name in steps[i].node.inputs where !name.isEmpty { lastUse[name] = max(lastUse[name] ?? last, last) }
                }
                grouped.append((steps[run[0]].node, GemvGroupKernel(members: run.map { steps[$0].kernel as! GemmKernel }),
                                run.flatMap { steps[$0].outputs }, nil))
            }
            for (i, step) in steps.enumerated() {
                let readsRun = step.node.inputs.contains { name in slotOf[name].map { produced.contains($0) } ?? false }
                if !streams(step) || readsRun { flush() }
                if streams(step) {
                    run.append(i)
                    produced.formUnion(step.outputs)
                } else {
                    grouped.append(step)
                }
            }
            flush()
            steps = grouped
        }

        // Each streamed GEMV prefetches the start of the next one's weight as it finishes.
        do {
            func constant(_ slot: Int) -> Tensor? {
                if case .constant(let t) = values[slot].location { return t } else { return nil }
            }
            var next: (pointer: UnsafeRawPointer, bytes: Int)?
            for step in steps.reversed() {
                guard let gemm = step.kernel as? GemmKernel, gemm.streamsOwnGemv else { continue }
                gemm.nextStreamedWeight = next
                next = gemm.streamedWeight(constant: constant)
            }
        }

        // Lifetimes of arena roots: from definition to the last use of any member.
        for r in roots.indices where roots[r].kind == 0 {
            var last = roots[r].first
            for m in roots[r].members { last = max(last, lastUse[values[m].name] ?? roots[r].first) }
            roots[r].last = last
        }
        // Greedy placement, largest first: lowest offset not overlapping any placed buffer live
        // at the same time.
        let arenaRoots = roots.indices.filter { roots[$0].kind == 0 || roots[$0].kind == 4 }
        let order = arenaRoots.sorted { roots[$0].bytes != roots[$1].bytes ? roots[$0].bytes > roots[$1].bytes : $0 < $1 }
        var offsets = [Int: Int]()
        var placed: [(first: Int, last: Int, offset: Int, end: Int)] = []
        var arenaBytes = 0
        for r in order {
            let root = roots[r]
            let conflicts = placed.filter { !($0.last < root.first || root.last < $0.first) }.sorted { $0.offset < $1.offset }
            var offset = 0
            for c in conflicts {
                if offset + root.bytes <= c.offset { break }
                offset = max(offset, c.end)
            }
            offsets[r] = offset
            placed.append((root.first, root.last, offset, offset + root.bytes))
            arenaBytes = max(arenaBytes, offset + root.bytes)
        }
        for r in arenaRoots where roots[r].kind == 0 {
            for m in roots[r].members { values[m].location = .arena(offset: offsets[r]!) }
        }
        // Views of inputs, constants and outputs share their root's location.
        for r in roots.indices where roots[r].kind != 0 && roots[r].kind != 4 {
            let members = roots[r].members
            guard let first = members.first else { continue }
            for m in members.dropFirst() { values[m].location = values[first].location }
        }

        var outputBytes = Array(repeating: 0, count: g.outputs.count)
        var outputSlots: [Int] = []
        for (i, o) in g.outputs.enumerated() {
            guard let slot = slotOf[o.name] ?? constantSlot(o.name) else {
                throw RuntimeError.planning("graph output '\(o.name)' is not produced")
            }
            outputSlots.append(slot)
            if case .output(let k) = values[slot].location, k == i { outputBytes[i] = values[slot].byteCount }
        }

        let planned = steps.map { s in
            PlannedStep(node: s.node, kernel: s.kernel, scratchOffset: s.scratchRoot.map { offsets[$0]! } ?? 0,
                        outputSlots: s.outputs, outputBytes: s.outputs.reduce(0) { $0 + values[$1].byteCount })
        }
        return ExecutionPlan(inputShapes: inputs.map(\.shape), values: values, steps: planned, arenaBytes: arenaBytes,
                             unsharedBytes: unshared, outputStorageBytes: outputBytes, outputSlots: outputSlots,
                             fusions: FusionPasses.report(g) + (tails > 0 ? [(name: "upsampling-tail (in bands)", count: tails)] : []),
                             graph: g)
    }
}
